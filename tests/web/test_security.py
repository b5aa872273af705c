"""Issue 11: sessions that end, users that can be disabled, tokens that expire, the first-admin race,
ids that never 500, Redis down as a 503, and the deployment defaults (files, compose, CLI, router form)."""

from __future__ import annotations

import stat
import threading
from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiToken, Job, User
from app.models.base import utcnow
from tests.conftest import Browser, make_token, make_user

ROOT = Path(__file__).resolve().parents[2]


def _logged_in(app, email, role="operator"):
    make_user(app, "admin@example.com", "admin")
    make_user(app, email, role)
    browser = Browser(app.test_client())
    assert browser.login(email, "correct-horse").status_code == 303
    return browser


def _user_id(app, email):
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == email))


def _is_logged_in(browser):
    return browser.client.get("/account").status_code == 200


# --- sessions ----------------------------------------------------------------------------------


def test_logout_ends_every_session_of_the_user_and_the_old_cookie_is_dead(app):
    laptop = _logged_in(app, "op@example.com")
    phone = _logged_in(app, "op@example.com")
    stolen = laptop.client.get_cookie("session").value
    assert _is_logged_in(laptop) and _is_logged_in(phone)
    assert laptop.post("/logout").status_code == 303
    assert not _is_logged_in(laptop) and not _is_logged_in(phone)
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/account").status_code == 302


def test_password_change_ends_other_sessions_and_keeps_this_one(app):
    here = _logged_in(app, "op@example.com")
    elsewhere = _logged_in(app, "op@example.com")
    here.get("/account")
    resp = here.post(
        "/account/password",
        {"pw-current_password": "correct-horse", "pw-new_password": "new-secret-1", "pw-confirm": "new-secret-1"},
    )
    assert resp.status_code == 303
    assert _is_logged_in(here) and not _is_logged_in(elsewhere)


def test_role_change_ends_that_users_sessions(app):
    admin = _logged_in(app, "admin@example.com", "admin")
    op = _logged_in(app, "op@example.com")
    admin.get("/users/")
    assert admin.post(f"/users/{_user_id(app, 'op@example.com')}/role", {"role": "viewer"}).status_code == 303
    assert not _is_logged_in(op)
    assert _is_logged_in(admin)


def test_deactivation_ends_sessions_and_tokens_and_reactivation_keeps_tokens_dead(app):
    admin = _logged_in(app, "admin@example.com", "admin")
    op = _logged_in(app, "op@example.com")
    token = make_token(app, "op@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get("/api/wan", headers=auth).status_code == 200
    op_id = _user_id(app, "op@example.com")
    admin.get("/users/")
    assert admin.post(f"/users/{op_id}/deactivate").status_code == 303
    assert not _is_logged_in(op)
    assert client.get("/api/wan", headers=auth).status_code == 401
    assert Browser(app.test_client()).login("op@example.com", "correct-horse").status_code == 401
    assert admin.post(f"/users/{op_id}/activate").status_code == 303
    assert Browser(app.test_client()).login("op@example.com", "correct-horse").status_code == 303
    assert client.get("/api/wan", headers=auth).status_code == 401  # revoked, not merely suspended


def test_admin_deletes_a_user_but_not_themselves(app):
    admin = _logged_in(app, "admin@example.com", "admin")
    make_user(app, "gone@example.com", "viewer")
    admin.get("/users/")
    assert admin.post(f"/users/{_user_id(app, 'gone@example.com')}/delete").status_code == 303
    assert _user_id(app, "gone@example.com") is None
    admin.post(f"/users/{_user_id(app, 'admin@example.com')}/delete")
    assert _user_id(app, "admin@example.com") is not None
    assert "You cannot delete yourself." in admin.get("/users/").get_data(as_text=True)


def test_csrf_token_from_before_login_is_worthless_after_it(app):
    make_user(app, "admin@example.com", "admin")
    browser = Browser(app.test_client())
    browser.get("/login")
    before = browser.csrf
    assert browser.login("admin@example.com", "correct-horse").status_code == 303
    assert browser.csrf and browser.csrf != before
    resp = browser.client.post("/account/tokens", data={"tok-name": "x"}, headers={"X-CSRFToken": before})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)


# --- the accounts API ----------------------------------------------------------------------------


def test_users_api_is_for_admins_and_patch_deactivates_at_once(app, client):
    make_user(app, "admin@example.com", "admin")
    make_user(app, "op@example.com", "operator")
    admin = {"Authorization": f"Bearer {make_token(app, 'admin@example.com')}"}
    op_token = make_token(app, "op@example.com")
    op = {"Authorization": f"Bearer {op_token}"}
    assert client.get("/api/users", headers=op).status_code == 403
    users = client.get("/api/users", headers=admin).get_json()
    assert {u["email"]: (u["role"], u["active"]) for u in users} == {
        "admin@example.com": ("admin", True),
        "op@example.com": ("operator", True),
    }
    assert set(users[0]) == {"id", "email", "role", "active", "last_login_at"}
    op_id = _user_id(app, "op@example.com")
    resp = client.patch(f"/api/users/{op_id}", json={"active": False}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["active"] is False
    assert client.get("/api/wan", headers=op).status_code == 401
    assert client.patch(f"/api/users/{op_id}", json={"role": "root"}, headers=admin).status_code == 422
    assert client.patch(f"/api/users/{op_id}", json={"colour": "red"}, headers=admin).status_code == 400
    assert client.patch("/api/users/99999", json={"active": True}, headers=admin).status_code == 404
    admin_id = _user_id(app, "admin@example.com")
    assert client.patch(f"/api/users/{admin_id}", json={"active": False}, headers=admin).status_code == 409
    assert client.delete(f"/api/users/{op_id}", headers=admin).status_code == 204
    assert client.delete(f"/api/users/{op_id}", headers=admin).status_code == 404


def test_tokens_api_lists_own_and_admin_all_and_revokes(app, client):
    make_user(app, "admin@example.com", "admin")
    make_user(app, "v@example.com", "viewer")
    admin = {"Authorization": f"Bearer {make_token(app, 'admin@example.com', 'adm')}"}
    viewer = {"Authorization": f"Bearer {make_token(app, 'v@example.com', 'mine')}"}
    spare = make_token(app, "v@example.com", "spare")
    own = client.get("/api/tokens", headers=viewer).get_json()
    assert sorted(t["name"] for t in own) == ["mine", "spare"]
    assert set(own[0]) >= {"id", "name", "user_id", "created_at", "last_used_at", "expires_at"}
    assert next(t for t in own if t["name"] == "mine")["last_used_at"] is not None
    assert client.get("/api/tokens?all=true", headers=viewer).status_code == 403
    every = client.get("/api/tokens?all=true", headers=admin).get_json()
    assert sorted(t["name"] for t in every) == ["adm", "mine", "spare"]
    adm_id = next(t["id"] for t in every if t["name"] == "adm")
    spare_id = next(t["id"] for t in every if t["name"] == "spare")
    assert client.delete(f"/api/tokens/{adm_id}", headers=viewer).status_code == 404  # not theirs
    assert client.delete(f"/api/tokens/{spare_id}", headers=viewer).status_code == 204  # a viewer may
    assert client.get("/api/wan", headers={"Authorization": f"Bearer {spare}"}).status_code == 401
    mine_id = next(t["id"] for t in every if t["name"] == "mine")
    assert client.delete(f"/api/tokens/{mine_id}", headers=admin).status_code == 204
    assert client.get("/api/wan", headers=viewer).status_code == 401


def test_an_expired_token_stops_working(app, admin_browser, client):
    admin_browser.get("/account")
    page = admin_browser.post("/account/tokens", {"tok-name": "short", "tok-expires_in_days": "1"})
    assert page.headers["Cache-Control"] == "no-store"
    token = page.get_data(as_text=True).split('<pre class="token">')[1].split("<")[0]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/wan", headers=auth).status_code == 200
    with app.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.name == "short"))
        assert timedelta(hours=23) < row.expires_at - utcnow() <= timedelta(days=1)
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    resp = client.get("/api/wan", headers=auth)
    assert resp.status_code == 401 and "expired" in resp.get_json()["message"]


# --- the first admin -----------------------------------------------------------------------------


def test_simultaneous_first_registrations_make_exactly_one_admin(app):
    """20 at once on a fresh instance used to make 5 admins; the bootstrap row admits one."""
    browsers = [Browser(app.test_client()) for _ in range(20)]
    for b in browsers:
        b.get("/register")
    barrier = threading.Barrier(len(browsers))
    codes: list[int] = []

    def register(i: int, browser: Browser) -> None:
        barrier.wait()
        data = {"email": f"u{i}@example.com", "password": "long-enough", "confirm": "long-enough"}
        codes.append(browser.post("/register", data).status_code)

    threads = [threading.Thread(target=register, args=(i, b)) for i, b in enumerate(browsers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id)).where(User.role == "admin")) == 1
        assert db.session.scalar(select(func.count(User.id))) == 1
    assert codes.count(303) == 1 and 500 not in codes


# --- ids and the queue ---------------------------------------------------------------------------


def test_ids_in_query_strings_never_500(admin_browser, api):
    huge = "99999999999999999999"
    assert admin_browser.get(f"/jobs/?wan_id={huge}").status_code == 404
    assert admin_browser.get(f"/jobs/?peer_id={huge}").status_code == 404
    assert admin_browser.get("/jobs/?wan_id=-3").status_code == 404
    assert admin_browser.get("/jobs/?wan_id=abc").status_code == 422
    assert admin_browser.get("/jobs/?wan_id=").status_code == 200
    assert api.get(f"/api/jobs?wan_id={huge}").status_code == 404
    assert api.get("/api/jobs?peer_id=x").status_code == 422
    assert api.get("/api/jobs?peer_id=1").status_code == 200


def _router(api):
    wan = api.post("/api/wan", json={"name": "acme"}).get_json()
    body = {"name": "gw", "kind": "mikrotik", "mikrotik": {"host": "192.0.2.1", "password": "pw"}}
    resp = api.post(f"/api/peers/wan/{wan['id']}", json=body)
    assert resp.status_code == 201
    return resp.get_json()


def test_a_job_asked_for_while_redis_is_down_is_a_503_and_saves_nothing(app, make_app, api):
    peer = _router(api)
    down = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    client = down.test_client()
    resp = client.post(
        f"/api/peers/{peer['id']}/mikrotik/test-connection", headers={"Authorization": api.headers["Authorization"]}
    )
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "unavailable" and "Redis" in resp.get_json()["message"]
    browser = Browser(down.test_client())
    assert browser.login("op@example.com", "correct-horse").status_code == 303
    page = browser.post(f"/peers/{peer['id']}/router/test-connection", htmx=True)
    assert page.status_code == 503 and "Redis" in page.get_data(as_text=True)
    page = browser.post(f"/peers/{peer['id']}/router/test-connection")
    assert page.status_code == 503 and "unreachable" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0


# --- router link defaults ------------------------------------------------------------------------


def test_router_form_warns_about_the_plaintext_api_and_unverified_tls(app, operator_browser, api):
    wan = api.post("/api/wan", json={"name": "acme"}).get_json()
    page = operator_browser.get(f"/wans/{wan['id']}/peers/new?kind=mikrotik").get_data(as_text=True)
    assert "router password crosses the network in plain text" in page
    assert "accepts any certificate" in page
    tls = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={"name": "gw", "kind": "mikrotik", "mikrotik": {"host": "192.0.2.1", "password": "pw", "use_tls": True}},
    ).get_json()
    assert tls["mikrotik"]["port"] == 8729
    plain = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={"name": "gw2", "kind": "mikrotik", "mikrotik": {"host": "192.0.2.2", "password": "pw"}},
    ).get_json()
    assert plain["mikrotik"]["port"] == 8728
    chosen = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={"name": "gw3", "kind": "mikrotik", "mikrotik": {"host": "192.0.2.3", "port": 9000, "use_tls": True}},
    ).get_json()
    assert chosen["mikrotik"]["port"] == 9000


# --- files, compose, CLI -------------------------------------------------------------------------


def test_instance_folder_and_sqlite_files_are_owner_only(make_app, tmp_path):
    folder = tmp_path / "fresh-instance"
    app = make_app(
        INSTANCE_PATH=str(folder),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'wirewan.db'}",
        SQLALCHEMY_ENGINE_OPTIONS={},
    )
    with app.app_context():
        db.create_all()
        db.session.add(User(email="x@example.com", password_hash="x", role="viewer"))
        db.session.commit()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("wirewan.db", "wirewan.db-wal", "wirewan.db-shm"):
        if (folder / name).exists():
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert (folder / "wirewan.db-wal").exists()


def test_docker_compose_has_no_default_passwords_and_publishes_on_loopback():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert all(p.startswith("127.0.0.1:") for p in services["web"]["ports"])
    assert "REDIS_PASSWORD:?" in services["web"]["environment"]["REDIS_URL"]
    assert "--url" not in services["worker"]["command"]
    assert "requirepass" in " ".join(services["redis"]["command"])
    assert "--requirepass" not in " ".join(services["redis"]["command"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-}"
    assert "wirewan:wirewan" not in text


def test_cli_reads_the_password_from_stdin_when_not_given(app, runner):
    result = runner.invoke(
        args=["user", "create", "--email", "cli@example.com", "--role", "viewer"], input="from-stdin-pw\n"
    )
    assert result.exit_code == 0, result.output
    browser = Browser(app.test_client())
    assert browser.login("cli@example.com", "from-stdin-pw").status_code == 303


def test_cli_token_with_an_expiry(app, runner):
    make_user(app, "admin@example.com", "admin")
    result = runner.invoke(
        args=["token", "create", "--email", "admin@example.com", "--name", "ci", "--expires-days", "7"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.name == "ci"))
        assert timedelta(days=6) < row.expires_at - utcnow() <= timedelta(days=7)
    bad = runner.invoke(args=["token", "create", "--email", "admin@example.com", "--name", "x", "--expires-days", "0"])
    assert bad.exit_code != 0 and "1–3650 days" in bad.output
