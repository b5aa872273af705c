"""Who may call what, for every route of the app, by construction (issue 11).

`MATRIX` has one row per (endpoint, method) of `app.url_map`: the outcome for an anonymous caller, a
viewer, an operator and an admin. A route added without a row fails `test_every_route_has_one_row`,
so nobody can add a page or an API operation without deciding who may use it. Each row is then
checked with real requests: pages with a logged-in session posting forms (with the CSRF token), API
operations both with a session (plus the CSRF header) and with a bearer token; a page must ignore a
bearer token.

Outcomes:
- OK: the role passed authorization (any answer but 401, 403 or the login redirect; a 400/422 for the
  deliberately empty form or body still means "allowed").
- LOGIN: not logged in: pages redirect to the login page, the API answers 401.
- DENIED: 403.
- HIDDEN: 404 although the object exists (another user's API token is not revealed to non-admins).

Also here: no GET changes anything, every HTML page carries the security headers, and no template
has inline script, style or on*= handlers (the Content-Security-Policy would block them).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import inspect, select, text

from app.extensions import db
from app.models import ApiToken, Job, Peer, User, Wan, Webhook
from app.security import CSP
from tests.conftest import Browser, make_token, make_user

OK, LOGIN, DENIED, HIDDEN = "ok", "login", "denied", "hidden"
ROLES = ("anonymous", "viewer", "operator", "admin")
PUBLIC = (OK, OK, OK, OK)
READ = (LOGIN, OK, OK, OK)
EDIT = (LOGIN, DENIED, OK, OK)
ADMIN = (LOGIN, DENIED, DENIED, OK)
# Sessions are refused (401) whatever the role; any role's bearer token is accepted.
TOKEN_ONLY = (LOGIN, LOGIN, LOGIN, LOGIN)
# Outside /api/ but authenticated by bearer token: the token outcome of their role differs.
TOKEN_ENDPOINTS = {"ops.prometheus_metrics": (LOGIN, OK, OK, OK)}

MATRIX: dict[tuple[str, str], tuple[str, str, str, str]] = {
    # --- pages ---
    ("static", "GET"): PUBLIC,
    ("main.healthz", "GET"): PUBLIC,
    ("main.index", "GET"): READ,
    ("auth.login", "GET"): PUBLIC,
    ("auth.login", "POST"): PUBLIC,
    ("auth.register", "GET"): PUBLIC,
    ("auth.register", "POST"): PUBLIC,
    ("auth.logout", "POST"): READ,
    ("auth.account", "GET"): READ,
    ("auth.change_password", "POST"): READ,
    ("auth.create_token", "POST"): READ,
    ("auth.revoke_token", "POST"): READ,  # the view checks the owner (flash + redirect for others')
    ("admin.users", "GET"): ADMIN,
    ("admin.users", "POST"): ADMIN,
    ("admin.set_role", "POST"): ADMIN,
    ("admin.set_active", "POST"): ADMIN,
    ("admin.delete_user", "POST"): ADMIN,
    ("wans.list_wans", "GET"): READ,
    ("wans.create_wan", "GET"): EDIT,
    ("wans.create_wan", "POST"): EDIT,
    ("wans.detail", "GET"): READ,
    ("wans.edit_wan", "GET"): EDIT,
    ("wans.edit_wan", "POST"): EDIT,
    ("wans.delete_wan", "POST"): EDIT,
    ("wans.audit", "GET"): READ,
    ("wans.topology", "GET"): READ,
    ("wans.check_cidr", "GET"): READ,
    ("wans.check_endpoint", "GET"): READ,
    ("wans.check_mgmt_host", "GET"): READ,
    ("wans.configs_zip", "POST"): EDIT,
    ("wans.mark_all_applied", "POST"): EDIT,
    ("wans.export_wan", "POST"): EDIT,
    ("wans.import_wan", "GET"): EDIT,
    ("wans.import_wan", "POST"): EDIT,
    ("wans.import_peers", "GET"): EDIT,
    ("wans.import_peers", "POST"): EDIT,
    ("peers.kind_help", "GET"): READ,
    ("peers.create_peer", "GET"): EDIT,
    ("peers.create_peer", "POST"): EDIT,
    ("peers.detail", "GET"): READ,
    ("peers.state", "GET"): READ,  # issue 15: the header badges and stale banner, refreshed in place
    ("peers.edit_peer", "GET"): EDIT,
    ("peers.edit_peer", "POST"): EDIT,
    ("peers.delete_peer", "POST"): EDIT,
    ("peers.download_config", "POST"): EDIT,
    ("peers.show_qr", "POST"): EDIT,
    ("peers.mark_applied", "POST"): EDIT,
    ("peers.rotate_keys", "POST"): EDIT,
    ("peers.add_subnet", "POST"): EDIT,
    ("peers.update_subnet", "POST"): EDIT,
    ("peers.delete_subnet", "POST"): EDIT,
    ("peers.add_service", "POST"): EDIT,
    ("peers.delete_service", "POST"): EDIT,
    ("jobs.list_jobs", "GET"): READ,
    ("jobs.detail", "GET"): READ,
    ("jobs.log", "GET"): READ,
    ("jobs.result", "GET"): READ,
    ("jobs.status", "GET"): READ,
    ("jobs.deployments", "GET"): READ,
    ("jobs.router_section", "GET"): READ,
    ("jobs.router_action", "POST"): EDIT,
    ("jobs.router_deploy", "POST"): EDIT,
    # --- JSON API ---
    ("api.docs", "GET"): PUBLIC,
    ("api.openapi_json", "GET"): PUBLIC,
    ("api.me", "GET"): READ,
    ("api.list_wans", "GET"): READ,
    ("api.create_wan", "POST"): EDIT,
    ("api.get_wan", "GET"): READ,
    ("api.wan_audit", "GET"): READ,  # issue 15: the audit log, paged
    ("api.update_wan", "PATCH"): EDIT,
    ("api.delete_wan", "DELETE"): EDIT,
    ("api.wan_conflicts", "GET"): READ,
    ("api.wan_topology", "GET"): READ,
    ("api.wan_configs_zip", "GET"): EDIT,
    ("api.export_wan", "POST"): EDIT,
    ("api.import_wan", "POST"): EDIT,
    ("api.rotate_psks", "POST"): EDIT,
    ("api.rotate_peer_key", "POST"): EDIT,
    ("api.import_peers_csv", "POST"): EDIT,
    ("api.list_peers", "GET"): READ,
    ("api.create_peer", "POST"): EDIT,
    ("api.get_peer", "GET"): READ,
    ("api.update_peer", "PATCH"): EDIT,
    ("api.delete_peer", "DELETE"): EDIT,
    ("api.peer_config", "GET"): EDIT,
    ("api.peer_config_applied", "POST"): EDIT,
    ("api.add_subnet", "POST"): EDIT,
    ("api.update_subnet", "PUT"): EDIT,
    ("api.delete_subnet", "DELETE"): EDIT,
    ("api.add_service", "POST"): EDIT,
    ("api.delete_service", "DELETE"): EDIT,
    ("api.mikrotik_test_connection", "POST"): EDIT,
    ("api.mikrotik_preflight", "GET"): EDIT,
    ("api.mikrotik_preflight", "POST"): EDIT,
    ("api.mikrotik_deploy", "POST"): EDIT,
    ("api.mikrotik_revert", "POST"): EDIT,
    ("api.mikrotik_clear", "POST"): EDIT,
    ("api.mikrotik_verify", "GET"): EDIT,
    ("api.mikrotik_verify", "POST"): EDIT,
    ("api.list_jobs", "GET"): READ,
    ("api.get_job", "GET"): READ,
    ("api.list_users", "GET"): ADMIN,
    ("api.update_user", "PATCH"): ADMIN,
    ("api.delete_user", "DELETE"): ADMIN,
    ("api.list_tokens", "GET"): READ,
    # The target token is another user's: only an admin may revoke it; others do not learn it exists.
    ("api.revoke_token", "DELETE"): (LOGIN, HIDDEN, HIDDEN, OK),
    # --- operations (issue 12) ---
    ("api.wan_status", "GET"): READ,
    ("api.peer_status", "GET"): READ,
    # Only the peer's own report token (wwr_…) is accepted: sessions and API tokens are not.
    ("api.peer_report", "POST"): (LOGIN, LOGIN, LOGIN, LOGIN),
    ("api.list_webhooks", "GET"): ADMIN,
    ("api.create_webhook", "POST"): ADMIN,
    ("api.delete_webhook", "DELETE"): ADMIN,
    ("api.webhook_deliveries", "GET"): ADMIN,
    ("ops.webhook_settings", "GET"): ADMIN,
    ("ops.add_webhook", "POST"): ADMIN,
    ("ops.delete_webhook", "POST"): ADMIN,
    ("ops.issue_report_token", "POST"): EDIT,
    ("ops.revoke_report_token", "POST"): EDIT,
    ("ops.peer_status_fragment", "GET"): READ,
    # A scraper's URL: a bearer token (any role's API token, or METRICS_TOKEN), never a session.
    ("ops.prometheus_metrics", "GET"): TOKEN_ONLY,
}

# Path values for converters that are not ids of the world below.
ACTIONS = {
    "jobs.router_action": {"action": "verify"},
    "peers.update_subnet": {"action": "routed"},
    "admin.set_active": {"action": "deactivate"},
    "static": {"filename": "app.css"},
}
ROUTER_ENDPOINTS = re.compile(r"mikrotik|router|deployments")


def _rules(app: Flask) -> list[tuple[str, str, Any]]:
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, rule))
    return out


def test_every_route_has_exactly_one_row(app):
    routes = {(endpoint, method) for endpoint, method, _ in _rules(app)}
    missing = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not missing, f"routes without a row in MATRIX (decide who may call them): {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


# --- the world every request acts on --------------------------------------------------------------


def _world(app: Flask) -> dict[str, int]:
    """A WAN with a server peer (a LAN and a published service), a MikroTik, a finished job and a
    spare user with a token: every id a route can name. Built afresh for each changing request."""
    from app.services import accounts, published, subnets, wans
    from app.services import peers as peer_service
    from app.services.tx import commit_with_retry

    tag = uuid.uuid4().hex[:6]
    with app.app_context():
        wan = commit_with_retry(lambda: wans.create_wan({"name": f"w-{tag}"}))
        srv = commit_with_retry(
            lambda: peer_service.create_peer(
                db.session.get(Wan, wan.id), {"name": "srv", "kind": "server", "endpoint": "203.0.113.1"}
            )
        )
        rtr = commit_with_retry(
            lambda: peer_service.create_peer(
                db.session.get(Wan, wan.id),
                {"name": "rtr", "kind": "mikrotik", "mikrotik_host": "192.0.2.1", "mikrotik_password": "pw"},
            )
        )
        subnet = commit_with_retry(lambda: subnets.add_subnet(db.session.get(Peer, srv.id), "192.168.50.0/24"))
        service = commit_with_retry(
            lambda: published.add_service(
                db.session.get(Peer, srv.id), {"name": "web", "local_ip": "192.168.50.10", "local_port": "80"}
            )
        )
        job = Job(kind="verify", status="succeeded", wan_id=wan.id, peer_id=rtr.id, peer_name="rtr", result={})
        db.session.add(job)
        hook = Webhook(url="http://127.0.0.1:9/hook", events=["peer.down"])
        db.session.add(hook)
        spare = accounts.create_user(f"spare-{tag}@example.com", "correct-horse", "viewer")
        db.session.commit()
        ids = {
            "wan_id": wan.id,
            "peer_id": srv.id,
            "router_id": rtr.id,
            "subnet_id": subnet.id,
            "service_id": service.id,
            "job_id": job.id,
            "user_id": spare.id,
            "webhook_id": hook.id,
        }
    ids["token_value"] = make_token(app, spare.email)  # type: ignore[assignment]
    with app.app_context():
        ids["token_id"] = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == spare.id))
    return ids


def _url(app: Flask, endpoint: str, rule: Any, world: dict[str, int]) -> str:
    values: dict[str, Any] = dict(ACTIONS.get(endpoint, {}))
    for name in rule.arguments:
        if name in values:
            continue
        if name == "peer_id" and ROUTER_ENDPOINTS.search(endpoint):
            values[name] = world["router_id"]
        else:
            values[name] = world[name]
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **values)


def _session(app: Flask, role: str) -> Browser:
    browser = Browser(app.test_client())
    if role == "anonymous":
        browser.get("/login")  # a valid CSRF token, so that only the missing login is refused
    else:
        assert browser.login(f"{role}@example.com", "correct-horse").status_code == 303
        browser.refresh_csrf()
    return browser


def _users(app: Flask) -> dict[str, str]:
    tokens = {}
    for role in ("admin", "operator", "viewer"):
        make_user(app, f"{role}@example.com", role)
        tokens[role] = make_token(app, f"{role}@example.com", f"matrix-{role}")
    return tokens


def _outcome(resp: Any, api: bool) -> str:
    if resp.status_code == 401 or (
        not api and resp.status_code in (302, 303) and "/login?next=" in resp.headers.get("Location", "")
    ):
        return LOGIN
    if resp.status_code == 403:
        return DENIED
    if resp.status_code == 404:
        return HIDDEN
    return OK


def _send(browser_or_client: Any, method: str, url: str, api: bool, headers: dict[str, str]) -> Any:
    client = browser_or_client.client if isinstance(browser_or_client, Browser) else browser_or_client
    kw: dict[str, Any] = {"headers": headers}
    if method != "GET":
        if api:
            kw["json"] = {}
        else:
            kw["data"] = {}
    resp = client.open(url, method=method, **kw)
    resp.close()  # static files are streamed
    return resp


@pytest.mark.parametrize("endpoint,method", sorted(MATRIX), ids=lambda v: str(v))
def test_route_outcome_per_role(app, endpoint, method):
    expected = dict(zip(ROLES, MATRIX[(endpoint, method)], strict=True))
    rule = next(r for e, m, r in _rules(app) if e == endpoint and m == method)
    api = rule.rule.startswith("/api/") or endpoint in TOKEN_ENDPOINTS
    tokens = _users(app)
    shared = _world(app) if method == "GET" else None
    seen = {}
    for role in ROLES:
        world = shared or _world(app)
        url = _url(app, endpoint, rule, world)
        browser = _session(app, role)
        headers = {"X-CSRFToken": browser.csrf} if browser.csrf else {}
        seen[(role, "session")] = _outcome(_send(browser, method, url, api, headers), api)
        if api and role != "anonymous":
            world = shared or _world(app)
            url = _url(app, endpoint, rule, world)
            auth = {"Authorization": f"Bearer {tokens[role]}"}
            seen[(role, "token")] = _outcome(_send(app.test_client(), method, url, api, auth), api)
        if not api and role == "anonymous" and expected["anonymous"] == LOGIN:
            # A page ignores bearer tokens: an admin's token alone is still "not logged in" (with a
            # valid CSRF token, so that only the missing login can refuse it).
            world = shared or _world(app)
            url = _url(app, endpoint, rule, world)
            anonymous = _session(app, "anonymous")
            auth = {"Authorization": f"Bearer {tokens['admin']}", "X-CSRFToken": anonymous.csrf or ""}
            seen[(role, "token")] = _outcome(_send(anonymous, method, url, api, auth), api)
    by_token = dict(zip(ROLES, TOKEN_ENDPOINTS.get(endpoint, MATRIX[(endpoint, method)]), strict=True))
    wrong = {k: v for k, v in seen.items() if v != (by_token if k[1] == "token" else expected)[k[0]]}
    assert not wrong, f"{method} {endpoint}: expected {expected}, got {wrong}"


# --- no GET changes anything ------------------------------------------------------------------------

# Audit entries (a download of secrets is audited) and job rows (the lead's reaper) may change.
NOT_COMPARED = {"audit_entry", "job", "alembic_version"}


def _dump(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with app.app_context():
        names = [t for t in inspect(db.engine).get_table_names() if t not in NOT_COMPARED]
        out = {}
        with db.engine.connect() as conn:
            for name in sorted(names):
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()  # noqa: S608 (names from the schema)
                out[name] = sorted(tuple(map(repr, row)) for row in rows)
        return out


def test_no_get_changes_anything(app):
    _users(app)
    world = _world(app)
    gets = [(e, r) for e, m, r in _rules(app) if m == "GET"]
    browsers = {role: _session(app, role) for role in ROLES}

    def walk() -> None:
        for role, browser in browsers.items():
            headers = {"X-CSRFToken": browser.csrf} if browser.csrf else {}
            for endpoint, rule in gets:
                resp = browser.client.get(_url(app, endpoint, rule, world), headers=headers)
                resp.close()
                assert resp.status_code < 500, (role, endpoint, resp.status_code)

    walk()  # derived caches (config hashes) are filled by the first views; they are not state
    before = _dump(app)
    walk()
    after = _dump(app)
    changed = {name for name in before if before[name] != after.get(name)}
    assert not changed, f"GET requests changed these tables: {sorted(changed)}"


def test_no_get_marks_a_peer_applied(app):
    """The cross-site case of issue 11: config GETs used to mark peers applied."""
    tokens = _users(app)
    world = _world(app)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {tokens['operator']}"}
    for url in (
        f"/api/peers/{world['peer_id']}/config",
        f"/api/peers/{world['router_id']}/config?config_type=mikrotik-script",
        f"/api/wan/{world['wan_id']}/configs.zip",
    ):
        assert client.get(url, headers=auth).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(Peer.applied_config_hash)).all() == [None, None]


# --- headers -------------------------------------------------------------------------------------


def test_every_html_page_carries_the_security_headers(app):
    _users(app)
    world = _world(app)
    admin = _session(app, "admin")
    checked = 0
    for endpoint, method, rule in _rules(app):
        if method != "GET":
            continue
        resp = admin.client.get(_url(app, endpoint, rule, world), headers={"X-CSRFToken": admin.csrf})
        resp.close()
        if resp.mimetype != "text/html":
            continue
        checked += 1
        assert resp.headers["Content-Security-Policy"] == CSP, endpoint
        assert resp.headers["X-Content-Type-Options"] == "nosniff", endpoint
        assert resp.headers["Referrer-Policy"] == "same-origin", endpoint
        assert "Strict-Transport-Security" not in resp.headers, endpoint  # plain HTTP here
    assert checked >= 20
    assert CSP == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def test_hsts_only_when_cookies_are_secure(make_app, app):
    secure = make_app(SESSION_COOKIE_SECURE=True)
    assert secure.test_client().get("/login").headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers


def test_responses_with_secrets_are_never_cached(app):
    tokens = _users(app)
    world = _world(app)
    auth = {"Authorization": f"Bearer {tokens['operator']}"}
    client = app.test_client()
    for method, url in (
        ("GET", f"/api/peers/{world['peer_id']}/config"),
        ("POST", f"/api/peers/{world['peer_id']}/config"),
        ("GET", f"/api/wan/{world['wan_id']}/configs.zip"),
    ):
        resp = client.open(url, method=method, headers=auth)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store", url
    browser = _session(app, "operator")
    for url in (
        f"/peers/{world['peer_id']}/config",
        f"/peers/{world['peer_id']}/qr",
        f"/peers/{world['router_id']}/config",
        f"/wans/{world['wan_id']}/configs.zip",
    ):
        resp = browser.post(url)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store", url


TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    # Attributes inside a tag (text such as a systemd unit's "OnBootSec=" is not a handler).
    (re.compile(r"<[^>]*\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"<[^>]*\son[a-z]+\s*=", re.I), "on*= handler"),
    (re.compile(r"hx-on", re.I), "hx-on handler (needs eval)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_has_inline_script_style_or_handlers():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(source):
                found.append(f"{path.relative_to(TEMPLATES)}: {what}: {match.group(0)!r}")
    assert not found, "\n".join(found)


def test_htmx_is_configured_without_eval_script_tags_or_indicator_styles(admin_browser):
    page = admin_browser.get("/").get_data(as_text=True)
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert config is not None
    import json

    settings = json.loads(config.group(1))
    assert settings["allowEval"] is False
    assert settings["allowScriptTags"] is False
    assert settings["includeIndicatorStyles"] is False


def test_the_users_page_lists_users_and_every_token(app, admin_browser):
    world = _world(app)
    page = admin_browser.get("/users/").get_data(as_text=True)
    with app.app_context():
        spare = db.session.get(User, world["user_id"])
        assert spare.email in page and "Deactivate" in page and f"/users/{spare.id}/delete" in page
    assert "API tokens of every user" in page
