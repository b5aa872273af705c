"""Whole-instance backup: a consistent copy of the database taken while the app runs, with the
secrets that decrypt it (README "Backup and restore")."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from flask import current_app
from sqlalchemy.engine import make_url

from app.extensions import db

SECRET_SETTINGS = ("SECRET_KEY", "ENCRYPTION_KEY", "ENCRYPTION_SALT", "ENCRYPTION_OLD_KEYS")


class BackupError(Exception):
    pass


def backup(target: Path) -> list[Path]:
    """Write `wirewan.db` (SQLite, by the online backup API) or `wirewan.dump` (PostgreSQL, by
    `pg_dump -Fc`) and `secrets.env` (mode 600) into the directory `target`; the files written."""
    target.mkdir(parents=True, exist_ok=True)
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        out = target / "wirewan.db"
        if out.exists():
            raise BackupError(f"{out} exists; back up into an empty directory.")
        raw = db.engine.raw_connection()
        try:
            source = raw.driver_connection
            assert isinstance(source, sqlite3.Connection)
            dest = sqlite3.connect(out)
            try:
                source.backup(dest)  # consistent even while other connections write
            finally:
                dest.close()
        finally:
            raw.close()
    elif url.get_backend_name() == "postgresql":
        out = target / "wirewan.dump"
        if out.exists():
            raise BackupError(f"{out} exists; back up into an empty directory.")
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is not installed (PostgreSQL client tools).")
        env = {**os.environ, "PGPASSWORD": url.password or ""}
        plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
        done = subprocess.run(  # noqa: S603  (fixed program, no shell)
            ["pg_dump", "-Fc", "-f", str(out), plain], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    else:
        raise BackupError(f"cannot back up a {url.get_backend_name()} database.")
    secrets = target / "secrets.env"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for name in SECRET_SETTINGS:
            value = current_app.config.get(name)
            if value:
                fh.write(f"{name}={value}\n")
    return [out, secrets]
