"""Settings from the environment, `.env`, and the generated `instance/secrets.env`.

The three secrets are generated once on first start: a newcomer runs one command and gets a working,
encrypted-at-rest install. They are never overwritten, because losing them makes every stored private
key and router password unrecoverable.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"
SECRET_NAMES = ("SECRET_KEY", "ENCRYPTION_KEY", "ENCRYPTION_SALT")


def instance_path() -> Path:
    return Path(os.environ.get("WIREWAN_INSTANCE", DEFAULT_INSTANCE)).resolve()


def ensure_secrets(folder: Path, announce: bool = True) -> dict[str, str]:
    """Return the generated secrets, creating `secrets.env` (mode 600) when it does not exist yet."""
    path = folder / "secrets.env"
    if path.exists():
        return {k: v for k, v in dotenv_values(path).items() if v}
    folder.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_SALT": secrets.token_urlsafe(16),
    }
    body = "".join(f"{k}={v}\n" for k, v in values.items())
    # O_EXCL: two processes starting at once must not both write (and disagree on) the keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return {k: v for k, v in dotenv_values(path).items() if v}
    with os.fdopen(fd, "w") as fh:
        fh.write(body)
    if announce:
        print(
            f"WireWAN: generated SECRET_KEY, ENCRYPTION_KEY and ENCRYPTION_SALT into {path}.\n"
            "WireWAN: back this file up with the database — losing it makes stored private keys "
            "and router passwords unrecoverable.",
            file=sys.stderr,
        )
    return values


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge, lowest priority first: defaults, secrets.env, .env, the process environment, overrides."""
    folder = instance_path()
    env: dict[str, Any] = {}
    dotenv_file = ROOT / ".env"
    if dotenv_file.exists():
        env.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    env.update(os.environ)
    overrides = dict(overrides or {})

    def pick(name: str, default: Any = None) -> Any:
        if name in overrides:
            return overrides[name]
        return env.get(name, default)

    missing = [n for n in SECRET_NAMES if not pick(n)]
    generated = ensure_secrets(folder) if missing else {}

    database_url = normalize_database_url(pick("DATABASE_URL") or f"sqlite:///{folder / 'wirewan.db'}")
    settings: dict[str, Any] = {
        "INSTANCE_PATH": str(folder),
        "SECRET_KEY": pick("SECRET_KEY") or generated.get("SECRET_KEY"),
        "ENCRYPTION_KEY": pick("ENCRYPTION_KEY") or generated.get("ENCRYPTION_KEY"),
        "ENCRYPTION_SALT": pick("ENCRYPTION_SALT") or generated.get("ENCRYPTION_SALT"),
        # Older keys kept only to decrypt (MultiFernet): rotate by moving the key here.
        "ENCRYPTION_OLD_KEYS": pick("ENCRYPTION_OLD_KEYS", ""),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": pick("REDIS_URL"),
        "HOST": pick("HOST", "127.0.0.1"),
        "PORT": int(pick("PORT", 8000)),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _truthy(pick("SESSION_COOKIE_SECURE", "false")),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "LOGIN_MAX_FAILURES": int(pick("LOGIN_MAX_FAILURES", 5)),
        "LOGIN_LOCKOUT_SECONDS": int(pick("LOGIN_LOCKOUT_SECONDS", 300)),
        # Per account, over every address: far higher, and one failure leaks away per interval.
        "LOGIN_ACCOUNT_MAX_FAILURES": int(pick("LOGIN_ACCOUNT_MAX_FAILURES", 100)),
        "LOGIN_ACCOUNT_LEAK_SECONDS": int(pick("LOGIN_ACCOUNT_LEAK_SECONDS", 36)),
        # How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: trust none).
        "TRUSTED_PROXIES": int(pick("TRUSTED_PROXIES", 0)),
        "RQ_QUEUE": pick("RQ_QUEUE", "wirewan"),
        # Operations (issue 12): the status poll and the scheduled verify, in seconds; how long the
        # status history is kept; who may scrape /metrics besides API tokens; webhook retry backoff.
        "STATUS_INTERVAL": int(pick("STATUS_INTERVAL", 60)),
        "VERIFY_INTERVAL": int(pick("VERIFY_INTERVAL", 900)),
        "STATUS_HISTORY_SECONDS": int(pick("STATUS_HISTORY_SECONDS", 86400)),
        "METRICS_TOKEN": pick("METRICS_TOKEN", ""),
        "WEBHOOK_RETRY_INTERVALS": pick("WEBHOOK_RETRY_INTERVALS", "10,60,300"),
        "TESTING": False,
    }
    if database_url.startswith("sqlite"):
        # WAL + busy timeout: the web app and the worker write the same file at once.
        settings["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15}}
    else:
        settings["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    for key, value in overrides.items():
        settings[key] = value
    return settings


def normalize_database_url(url: str) -> str:
    """Plain `postgresql://` URLs use psycopg 3, the driver we ship (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
