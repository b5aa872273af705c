"""The factory, configuration, secrets generation, health and error pages."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.config import ensure_secrets, load_settings


def test_factory_applies_overrides(app):
    assert app.config["TESTING"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_secure_cookie_when_configured_for_https(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_secrets_generated_once_with_mode_600(tmp_path: Path, capsys):
    first = ensure_secrets(tmp_path)
    path = tmp_path / "secrets.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) == {"SECRET_KEY", "ENCRYPTION_KEY", "ENCRYPTION_SALT"}
    assert "unrecoverable" in capsys.readouterr().err
    before = path.read_text()
    second = ensure_secrets(tmp_path)
    assert second == first
    assert path.read_text() == before


def test_settings_use_generated_secrets_and_default_sqlite(tmp_path: Path, monkeypatch):
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "ENCRYPTION_SALT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WIREWAN_INSTANCE", str(tmp_path))
    settings = load_settings()
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'wirewan.db'}"
    saved = (tmp_path / "secrets.env").read_text()
    assert f"ENCRYPTION_KEY={settings['ENCRYPTION_KEY']}" in saved


def test_environment_beats_generated_secrets(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WIREWAN_INSTANCE", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("ENCRYPTION_KEY", "k")
    monkeypatch.setenv("ENCRYPTION_SALT", "s")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    settings = load_settings()
    assert settings["SECRET_KEY"] == "from-env"
    # psycopg 3 is the driver we ship, so plain postgresql:// URLs are pointed at it.
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    assert not (tmp_path / "secrets.env").exists()


def test_healthz_reports_database_and_redis(client):
    resp = client.get("/healthz")
    body = resp.get_json()
    assert body["database"] == "ok"
    if os.environ.get("REDIS_URL"):
        assert resp.status_code == 200
        assert body["redis"] == "ok"


def test_healthz_503_when_redis_unreachable(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["redis"].startswith("error")


def test_404_page_in_app_look(admin_browser):
    resp = admin_browser.get("/no/such/page")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert "Not found" in body and "WireWAN" in body


def test_api_404_is_json(api):
    resp = api.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.get_json()["error"] == "not_found"


def test_vary_header_on_pages(admin_browser):
    resp = admin_browser.get("/")
    assert "HX-Request" in resp.headers.get("Vary", "")


def test_htmx_is_vendored_with_its_version(client):
    resp = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert resp.status_code == 200
    assert b'version:"2.0.11"' in resp.data
    resp.close()
