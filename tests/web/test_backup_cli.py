"""CLI: `wan export` / `wan import` (passphrase from stdin, never argv) and `backup PATH`, with the
README's restore procedure carried out."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from flask import Flask
from sqlalchemy import URL, make_url, text

from app.extensions import db
from app.models import Peer
from app.services import configs
from tests.conftest import close_app
from tests.web.test_api_network import make_peer, make_wan

PASSPHRASE = "a long enough passphrase"


def all_configs(app: Flask) -> dict[str, str]:
    with app.app_context():
        return {p.name: configs.peer_config(p).text for p in db.session.query(Peer).order_by(Peer.name)}


def test_wan_export_and_import_on_the_command_line(app: Flask, api: Any, runner: Any, tmp_path: Path) -> None:
    wan = make_wan(api, preshared_keys=True)
    make_peer(api, wan["id"], "a", endpoint="203.0.113.1")
    make_peer(api, wan["id"], "b", kind="client")
    out = tmp_path / "corp.json"
    result = runner.invoke(args=["wan", "export", "corp", "--out", str(out)], input=PASSPHRASE + "\n")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "PrivateKey" not in out.read_text()
    result = runner.invoke(args=["wan", "import", str(out)], input="wrong passphrase!!\n")
    assert result.exit_code != 0 and "Wrong passphrase" in result.output
    result = runner.invoke(args=["wan", "import", str(out)], input=PASSPHRASE + "\n")
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(args=["wan", "import", str(out), "--name", "corp-copy"], input=PASSPHRASE + "\n")
    assert result.exit_code == 0, result.output
    assert "imported WAN 'corp-copy'" in result.output


def test_backup_and_the_readme_restore_procedure(
    app: Flask, api: Any, runner: Any, make_app: Any, tmp_path: Path
) -> None:
    wan = make_wan(api, preshared_keys=True)
    make_peer(api, wan["id"], "a", endpoint="203.0.113.1")
    make_peer(api, wan["id"], "r", kind="mikrotik", mikrotik={"host": "192.168.88.1", "password": "secret-pass"})
    before = all_configs(app)
    postgres = not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")

    result = runner.invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    db_copy = tmp_path / "backup" / ("wirewan.dump" if postgres else "wirewan.db")
    secrets = tmp_path / "backup" / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert runner.invoke(args=["backup", str(tmp_path / "backup")]).exit_code != 0  # never overwrites
    saved = {k: v for k, v in dotenv_values(secrets).items() if v}

    # README restore: put the database copy in place, use the saved secrets, start the app.
    if postgres:
        with _empty_database(app) as (url, engine_options):
            done = subprocess.run(  # noqa: S603 — the README's command, fixed arguments
                ["pg_restore", "--clean", "--if-exists", "-d", url.render_as_string(hide_password=False),
                 str(db_copy)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            restored = make_app(
                SQLALCHEMY_DATABASE_URI=url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
                SQLALCHEMY_ENGINE_OPTIONS=engine_options,
                **saved,
            )
            try:
                assert all_configs(restored) == before
            finally:
                close_app(restored)
        return
    restored_db = tmp_path / "restored" / "wirewan.db"
    restored_db.parent.mkdir()
    os.replace(db_copy, restored_db)
    restored = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{restored_db}", **saved)
    assert all_configs(restored) == before


@contextmanager
def _empty_database(app: Flask) -> Iterator[tuple[URL, dict[str, Any]]]:
    """A new PostgreSQL database beside the test one (its libpq URL), dropped afterwards. The engine
    options carry the test's schema (search_path), which the dump keeps."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with app.app_context():
        admin = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql", database=name)
        try:
            yield url, app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
