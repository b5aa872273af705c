"""Accounts: first user becomes admin, closed registration, login, throttling, roles, CSRF, tokens."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, User
from tests.conftest import make_token, make_user


def test_new_install_sends_visitors_to_registration(client):
    resp = client.get("/login")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/register")


def test_first_user_becomes_admin_and_registration_closes(app, browser):
    browser.get("/register")
    resp = browser.post("/register", {"email": "Boss@Example.com", "password": "long-enough", "confirm": "long-enough"})
    assert resp.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User))
        assert (user.email, user.role) == ("boss@example.com", "admin")
    browser.post("/logout")
    resp = browser.get("/register")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    resp = browser.post("/register", {"email": "late@example.com", "password": "long-enough", "confirm": "long-enough"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(db.func.count(User.id))) == 1


def test_registration_rejects_mismatched_passwords(browser):
    browser.get("/register")
    resp = browser.post("/register", {"email": "a@example.com", "password": "long-enough", "confirm": "different1"})
    assert resp.status_code == 400
    assert "The passwords differ." in resp.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(app, browser):
    make_user(app, "a@example.com", "admin")
    resp = browser.login("a@example.com", "not-the-password")
    assert resp.status_code == 401
    assert "Wrong email or password." in resp.get_data(as_text=True)
    assert browser.get("/").status_code == 302  # still logged out


def test_login_redirects_to_safe_next_only(app, browser):
    make_user(app, "a@example.com", "admin")
    resp = browser.post("/login?next=//evil.example/x", {"email": "a@example.com", "password": "correct-horse"})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/"


def test_throttling_after_repeated_failures(app, browser):
    make_user(app, "a@example.com", "admin")
    app.config["LOGIN_MAX_FAILURES"] = 3
    for _ in range(3):
        assert browser.login("a@example.com", "nope-nope").status_code == 401
    resp = browser.login("a@example.com", "correct-horse")
    assert resp.status_code == 429
    assert "Too many failed logins. Try again in" in resp.get_data(as_text=True)


def _login_from(browser, address, email, password, **headers):
    return browser.post(
        "/login", {"email": email, "password": password}, environ_base={"REMOTE_ADDR": address}, headers=headers
    )


def test_a_guesser_locks_only_their_own_address_out(app, browser):
    """Five bad logins from one address used to lock the account for everyone, everywhere."""
    make_user(app, "a@example.com", "admin")
    app.config["LOGIN_MAX_FAILURES"] = 3
    for _ in range(3):
        assert _login_from(browser, "198.51.100.66", "a@example.com", "nope-nope").status_code == 401
    assert _login_from(browser, "198.51.100.66", "a@example.com", "correct-horse").status_code == 429
    assert _login_from(browser, "192.0.2.10", "a@example.com", "correct-horse").status_code == 303


def test_the_per_account_limit_is_higher_spans_addresses_and_decays(app, browser):
    from datetime import timedelta

    from app.models import LoginThrottle

    make_user(app, "a@example.com", "admin")
    app.config.update(LOGIN_MAX_FAILURES=3, LOGIN_ACCOUNT_MAX_FAILURES=6, LOGIN_ACCOUNT_LEAK_SECONDS=60)
    for i in range(6):  # each address stays under its own limit of 3
        assert _login_from(browser, f"198.51.100.{i}", "a@example.com", "nope-nope").status_code == 401
    resp = _login_from(browser, "192.0.2.10", "a@example.com", "correct-horse")
    assert resp.status_code == 429 and "Try again in 60 seconds" in resp.get_data(as_text=True)
    with app.app_context():  # a minute later one failure has leaked away
        row = db.session.get(LoginThrottle, "account:a@example.com")
        row.window_start -= timedelta(seconds=61)
        db.session.commit()
    assert _login_from(browser, "192.0.2.10", "a@example.com", "correct-horse").status_code == 303


def test_trusted_proxies_decides_whose_address_counts(app, make_app):
    """Behind a proxy every request comes from the proxy: without TRUSTED_PROXIES the header is
    ignored (anyone could send it), with it each client counts apart."""
    from app.models import LoginThrottle
    from tests.conftest import Browser

    make_user(app, "a@example.com", "admin")
    for hops, locked_elsewhere in ((0, True), (1, False)):
        proxied = make_app(TRUSTED_PROXIES=hops, LOGIN_MAX_FAILURES=2)
        browser = Browser(proxied.test_client())
        with proxied.app_context():
            db.session.execute(db.delete(LoginThrottle))
            db.session.commit()
        for _ in range(2):
            _login_from(browser, "10.0.0.2", "a@example.com", "nope-nope", **{"X-Forwarded-For": "198.51.100.66"})
        other = _login_from(browser, "10.0.0.2", "a@example.com", "correct-horse", **{"X-Forwarded-For": "192.0.2.10"})
        assert (other.status_code == 429) is locked_elsewhere, hops


def test_unknown_email_costs_the_same_bcrypt_work(app, browser, monkeypatch):
    """Timing must not tell which emails have an account: count the bcrypt checks instead of timing."""
    import bcrypt

    make_user(app, "a@example.com", "admin")
    browser.get("/login")
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, hashed: calls.append(hashed[:7]) or real(pw, hashed))
    assert browser.login("a@example.com", "nope-nope").status_code == 401
    assert browser.login("nobody@example.com", "nope-nope").status_code == 401
    assert len(calls) == 2 and calls[0] == calls[1]  # same cost prefix ($2b$04)


def test_post_without_csrf_token_is_rejected(app, client):
    make_user(app, "a@example.com", "admin")
    resp = client.post("/login", data={"email": "a@example.com", "password": "correct-horse"})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_htmx_csrf_token_travels_in_body_header(admin_browser):
    body = admin_browser.get("/account").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in body


def test_change_password(app, admin_browser):
    resp = admin_browser.post(
        "/account/password",
        {
            "pw-current_password": "correct-horse",
            "pw-new_password": "new-password-1",
            "pw-confirm": "new-password-1",
        },
    )
    assert resp.status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.check_password("new-password-1")


def test_change_password_needs_the_current_one(admin_browser):
    resp = admin_browser.post(
        "/account/password",
        {
            "pw-current_password": "wrong-one",
            "pw-new_password": "new-password-1",
            "pw-confirm": "new-password-1",
        },
    )
    assert resp.status_code == 400
    assert "Current password is wrong." in resp.get_data(as_text=True)


def test_admin_creates_users_with_roles(app, admin_browser):
    resp = admin_browser.post("/users/", {"email": "v@example.com", "password": "viewer-pass", "role": "viewer"})
    assert resp.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.email == "v@example.com")) == "viewer"


def test_duplicate_user_gets_a_field_message(app, admin_browser):
    resp = admin_browser.post("/users/", {"email": "admin@example.com", "password": "whatever1", "role": "viewer"})
    assert resp.status_code == 409
    assert "already exists" in resp.get_data(as_text=True)


def test_non_admins_cannot_manage_users(operator_browser):
    assert operator_browser.get("/users/").status_code == 403
    resp = operator_browser.post("/users/", {"email": "x@example.com", "password": "whatever1", "role": "admin"})
    assert resp.status_code == 403


def test_users_link_only_for_admins(admin_browser, app):
    assert "/users/" in admin_browser.get("/").get_data(as_text=True)


def test_token_shown_once_and_works(app, admin_browser, client):
    resp = admin_browser.post("/account/tokens", {"tok-name": "ci"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    token = body.split('<pre class="token">')[1].split("</pre>")[0]
    assert token.startswith("ww_")
    api = app.test_client()
    me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["email"] == "admin@example.com"
    # The account page later shows only the hint, never the token.
    assert token not in admin_browser.get("/account").get_data(as_text=True)


def test_revoked_token_stops_working(app, admin_browser):
    token = make_token(app, "admin@example.com", "script")
    api = app.test_client()
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with app.app_context():
        from app.models import ApiToken

        token_id = db.session.scalar(select(ApiToken.id))
    assert admin_browser.post(f"/account/tokens/{token_id}/revoke").status_code == 303
    resp = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.get_json()["error"] == "unauthorized"


def test_api_without_credentials_is_401_json(client):
    resp = client.get("/api/me")
    assert resp.status_code == 401
    assert resp.get_json() == {
        "error": "unauthorized",
        "message": "Log in or send 'Authorization: Bearer <token>'.",
        "field": None,
    }


def test_bearer_token_only_counts_on_api(app, client):
    make_user(app, "a@example.com", "admin")
    token = make_token(app, "a@example.com")
    resp = client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 302  # pages need a session


def test_audit_never_contains_secrets(app, admin_browser):
    admin_browser.post("/account/tokens", {"tok-name": "ci"})
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry)).all()
        text = " ".join(f"{e.summary} {e.details}" for e in entries)
    assert "correct-horse" not in text and "ww_" not in text


def test_cli_creates_users_and_tokens(app, runner):
    result = runner.invoke(
        args=["user", "create", "--email", "cli@example.com", "--password", "cli-password", "--role", "admin"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["token", "create", "--email", "cli@example.com", "--name", "deploy-bot"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    resp = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.get_json()["role"] == "admin"


def test_cli_refuses_bad_role(runner):
    result = runner.invoke(
        args=["user", "create", "--email", "x@example.com", "--password", "pw-long-enough", "--role", "root"]
    )
    assert result.exit_code != 0
