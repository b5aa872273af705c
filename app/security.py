"""HTTP hardening in one place: response headers, the reverse-proxy trust, and file modes."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, current_app
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

# Nothing inline: scripts and styles come from /static only, so an injected <script> or on*= does
# not run. Swagger UI and htmx are vendored there; htmx is configured not to eval (base.html).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000"


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    # Only when cookies are Secure, i.e. the site is served over TLS: HSTS on plain HTTP would
    # be ignored at best, and at worst pin a name to HTTPS that has none.
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def no_store(response: Response) -> Response:
    """For every response that carries a secret (config, QR code, script, zip, a new token)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def trust_proxies(app: Flask) -> None:
    """With TRUSTED_PROXIES=n, the client address and scheme come from the X-Forwarded-* headers
    set by the n proxies in front (the login throttle counts per client address). Without it those
    headers are ignored: anyone could send them."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def secure_instance_files(app: Flask) -> None:
    """The instance folder (secrets, database) is the owner's only: 0700, and a SQLite database with
    its WAL and shared-memory files 0600. SQLite gives the files it creates the database's mode, so
    creating the database 0600 first is enough for new installs; older ones are tightened here."""
    folder = Path(app.config["INSTANCE_PATH"])
    _tighten(folder, 0o700, make=True)
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            return
    for suffix in ("", "-wal", "-shm"):
        _tighten(Path(f"{path}{suffix}"), 0o600)


def _tighten(path: Path, mode: int, make: bool = False) -> None:
    try:
        if make:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
        if path.exists() and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError:
        pass  # a read-only or foreign-owned folder is the operator's choice; starting matters more
