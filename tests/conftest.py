"""Shared fixtures: a fresh app and database per test, a real Redis when one is configured.

SQLite (a file, so threads share it) by default; `TEST_DATABASE_URL=postgresql://…` runs every test
on PostgreSQL instead, each test in a schema of its own that is dropped afterwards.

Under CI=true a skipped test fails the run (tests/ci_skips.py, whose hooks this file imports).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

os.environ.setdefault("WIREWAN_INSTANCE", "/tmp/wirewan-test-instance")

from app import create_app  # noqa: E402
from app.config import normalize_database_url  # noqa: E402
from app.extensions import db  # noqa: E402
from tests.ci_skips import pytest_sessionfinish, pytest_terminal_summary  # noqa: E402, F401  (pytest hooks)

CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
DOCS_CSRF_RE = re.compile(r'data-csrf-token="([^"]*)"')
# The CSRF token changes whenever who is logged in changes (login, logout, a password change).
SESSION_CHANGES = {"/login", "/register", "/logout", "/account/password"}
TEST_SECRETS = {
    "SECRET_KEY": "test-secret-key",
    "ENCRYPTION_KEY": "test-encryption-key",
    "ENCRYPTION_SALT": "test-salt",
}


def on_postgresql() -> bool:
    return normalize_database_url(os.environ.get("TEST_DATABASE_URL") or "sqlite://").startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgresql` are left out of a SQLite run (deselected, and said so), rather than
    skipped: CI's PostgreSQL pass runs them, and a skip fails a CI run."""
    if on_postgresql():
        return
    left_out = [item for item in items if item.get_closest_marker("postgresql")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]
        print(f"\n{len(left_out)} PostgreSQL-only test(s) left out of this SQLite run (set TEST_DATABASE_URL)")


def _database(tmp_path: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalize_database_url(url)
    else:
        yield f"sqlite:///{tmp_path / 'test.db'}", {"connect_args": {"timeout": 15}}
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, {"connect_args": {"options": f"-csearch_path={schema}"}, "pool_pre_ping": True}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def app_config(tmp_path: Any) -> Iterator[dict[str, Any]]:
    for url, engine_options in _database(tmp_path):
        yield {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "REDIS_URL": os.environ.get("REDIS_URL"),
            "RQ_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "BCRYPT_ROUNDS": 4,
            **TEST_SECRETS,
        }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(app_config)
    with application.app_context():
        db.create_all()
    yield application
    close_app(application)


def close_app(application: Flask) -> None:
    """Close what an app opened: its database pool and its Redis client. Left to the garbage
    collector, their sockets raise ResourceWarnings in whatever later test happens to collect them."""
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    redis = application.extensions.pop("wirewan_redis", None)
    if redis is not None:
        redis.close()


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Iterator[Any]:
    """Build more apps on the test database (other keys, other Redis); their pools are closed after,
    so no connection is left for the garbage collector (psycopg warns about those)."""
    made: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        application = create_app({**app_config, **overrides})
        made.append(application)
        return application

    yield build
    for application in made:
        close_app(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


class Browser:
    """A test client that behaves like the browser: it keeps the CSRF token the page gave it."""

    def __init__(self, client: FlaskClient):
        self.client = client
        self.csrf: str | None = None

    def get(self, url: str, **kw: Any) -> Any:
        resp = self.client.get(url, **kw)
        match = CSRF_RE.search(resp.get_data(as_text=True))
        if match:
            self.csrf = match.group(1)
        return resp

    def _ensure_csrf(self) -> str:
        if self.csrf is None:
            self.get("/login")
        assert self.csrf, "no CSRF token found in the page"
        return self.csrf

    def post(self, url: str, data: dict[str, Any] | None = None, htmx: bool = False, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        headers["X-CSRFToken"] = self._ensure_csrf()
        if htmx:
            headers["HX-Request"] = "true"
        resp = self.client.post(url, data=data or {}, headers=headers, **kw)
        if url.split("?")[0] in SESSION_CHANGES and resp.status_code in (302, 303):
            self.refresh_csrf()
        return resp

    def refresh_csrf(self) -> None:
        """Take the new token, as a browser does from the page it is redirected to. The API docs page
        holds it without showing (and so consuming) the flashed messages."""
        match = DOCS_CSRF_RE.search(self.client.get("/api/docs").get_data(as_text=True))
        self.csrf = match.group(1) if match and match.group(1) else None

    def login(self, email: str, password: str) -> Any:
        return self.post("/login", {"email": email, "password": password})


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


def make_user(app: Flask, email: str, role: str, password: str = "correct-horse") -> int:
    from sqlalchemy import select

    from app.models import User
    from app.services import accounts

    with app.app_context():
        existing = db.session.scalar(select(User).where(User.email == email))
        if existing is not None:
            return existing.id
        user = accounts.create_user(email, password, role)
        db.session.commit()
        return user.id


def make_token(app: Flask, email: str, name: str = "t") -> str:
    from sqlalchemy import select

    from app.models import User
    from app.services import accounts

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        value = accounts.create_token(user, name)
        db.session.commit()
        return value


def logged_in(app: Flask, browser: Browser, email: str, role: str) -> Browser:
    """The browser logged in as a user of `role` (the first account, an admin, exists too)."""
    make_user(app, "admin@example.com", "admin")
    make_user(app, email, role)
    assert browser.login(email, "correct-horse").status_code == 303
    browser.get("/")
    return browser


@pytest.fixture
def admin_browser(app: Flask, browser: Browser) -> Browser:
    return logged_in(app, browser, "admin@example.com", "admin")


@pytest.fixture
def operator_browser(app: Flask, browser: Browser) -> Browser:
    return logged_in(app, browser, "op@example.com", "operator")


@pytest.fixture
def viewer_browser(app: Flask, browser: Browser) -> Browser:
    return logged_in(app, browser, "viewer@example.com", "viewer")


@pytest.fixture
def operator_token(app: Flask) -> str:
    make_user(app, "admin@example.com", "admin")
    make_user(app, "op@example.com", "operator")
    return make_token(app, "op@example.com")


@pytest.fixture
def api(client: FlaskClient, operator_token: str) -> Any:
    """A JSON API client authenticated with an operator's bearer token."""

    class Api:
        def __init__(self) -> None:
            self.headers = {"Authorization": f"Bearer {operator_token}"}

        def __getattr__(self, method: str) -> Any:
            call = getattr(client, method)

            def send(url: str, **kw: Any) -> Any:
                headers = {**self.headers, **kw.pop("headers", {})}
                return call(url, headers=headers, **kw)

            return send

    return Api()
