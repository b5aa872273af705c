"""CLI: `wan export` / `wan import` (passphrase from stdin, never argv) and `backup PATH`, with the
README's restore procedure carried out."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from flask import Flask

from app.extensions import db
from app.models import Peer
from app.services import configs
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
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # PostgreSQL runs write a pg_dump file; restoring it needs pg_restore into a fresh database.
        result = runner.invoke(args=["backup", str(tmp_path / "b")])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "b" / "wirewan.dump").stat().st_size > 0
        return
    wan = make_wan(api, preshared_keys=True)
    make_peer(api, wan["id"], "a", endpoint="203.0.113.1")
    make_peer(api, wan["id"], "r", kind="mikrotik", mikrotik={"host": "192.168.88.1", "password": "secret-pass"})
    before = all_configs(app)

    result = runner.invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    db_copy, secrets = tmp_path / "backup" / "wirewan.db", tmp_path / "backup" / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert runner.invoke(args=["backup", str(tmp_path / "backup")]).exit_code != 0  # never overwrites

    # README restore: put the database copy in place, use the saved secrets, start the app.
    restored_db = tmp_path / "restored" / "wirewan.db"
    restored_db.parent.mkdir()
    os.replace(db_copy, restored_db)
    saved = {k: v for k, v in dotenv_values(secrets).items() if v}
    restored = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{restored_db}", **saved)
    assert all_configs(restored) == before
