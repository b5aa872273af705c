"""`flask --app wsgi user create …` and `flask --app wsgi token create …` for scripting."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import ROLES, User
from app.services import accounts
from app.services.tx import commit


def register_cli(app: Flask) -> None:
    register_secrets_cli(app)

    @app.cli.group("user")
    def user_group() -> None:
        """Manage users."""

    @user_group.command("create")
    @click.option("--email", required=True)
    @click.option(
        "--password",
        default=None,
        help="Avoid: it ends up in the shell history and `ps`. Without it the password is asked for "
        "(hidden), or read as one line from standard input when that is not a terminal.",
    )
    @click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
    def user_create(email: str, password: str | None, role: str) -> None:
        if password is None:
            password = _read_password()
        try:
            user = accounts.create_user(email, password, role)
        except accounts.AccountError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
        commit()
        click.echo(f"created {user.email} ({user.role})")

    @app.cli.group("token")
    def token_group() -> None:
        """Manage API tokens."""

    @token_group.command("create")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--expires-days", type=int, default=None, help="Stop working after this many days (default: never).")
    def token_create(email: str, name: str, expires_days: int | None) -> None:
        user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        try:
            value = accounts.create_token(user, name, expires_days)
        except accounts.AccountError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
        commit()
        click.echo(f"token '{name}' for {user.email} (shown once; store it now):")
        click.echo(value)

    register_lifecycle_cli(app)

    from app.demo import demo_cli

    app.cli.add_command(demo_cli)


def _read_password() -> str:
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


def register_secrets_cli(app: Flask) -> None:
    @app.cli.group("secrets")
    def secrets_group() -> None:
        """Manage the encryption of stored secrets."""

    @secrets_group.command("rotate")
    def rotate() -> None:
        """Re-encrypt every stored private key and router password under the current ENCRYPTION_KEY.

        Put the previous key in ENCRYPTION_OLD_KEYS, set a new ENCRYPTION_KEY, run this, then drop
        the old key. Stops without writing anything if a secret cannot be read with any key.
        """
        from app import crypto
        from app.models import Deployment, Peer, Wan

        count = 0
        try:
            for peer in db.session.scalars(select(Peer)):
                if peer.private_key_enc:
                    peer.private_key_enc = crypto.rotate(peer.private_key_enc)
                    count += 1
                if peer.mt_password_enc:
                    peer.mt_password_enc = crypto.rotate(peer.mt_password_enc)
                    count += 1
            for wan in db.session.scalars(select(Wan)):
                if wan.psk_seed_enc:
                    wan.psk_seed_enc = crypto.rotate(wan.psk_seed_enc)
                    count += 1
            for deployment in db.session.scalars(select(Deployment)):
                if deployment.desired_enc:
                    deployment.desired_enc = crypto.rotate(deployment.desired_enc)
                    count += 1
        except Exception as exc:
            db.session.rollback()
            raise click.ClickException(f"nothing changed: {exc}") from exc
        commit()
        click.echo(f"re-encrypted {count} secrets under the current key")


def _passphrase(confirm: bool) -> str:
    """From the terminal (hidden, confirmed on export) or the first line of stdin; never argv."""
    stdin = sys.stdin
    if stdin.isatty():
        return str(click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))
    return str(stdin.readline()).rstrip("\r\n")


def register_lifecycle_cli(app: Flask) -> None:
    import json
    from pathlib import Path

    from app.domain.errors import DomainError
    from app.models import Wan
    from app.services import backup as backup_service
    from app.services import transfer

    @app.cli.group("wan")
    def wan_group() -> None:
        """Export and import WANs."""

    @wan_group.command("export")
    @click.argument("wan")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
    def wan_export(wan: str, out: str) -> None:
        """Write WAN (name or id) as a passphrase-protected document to OUT (mode 600)."""
        row = db.session.scalar(select(Wan).where(Wan.name == wan))
        if row is None and wan.isdigit():
            row = db.session.get(Wan, int(wan))
        if row is None:
            raise click.ClickException(f"no WAN named {wan}")
        try:
            document = transfer.export_wan(row.id, _passphrase(confirm=True))
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh, indent=1)
        commit()
        click.echo(f"exported WAN '{row.name}' ({len(document['peers'])} peers) to {out}")

    @wan_group.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", default=None, help="Import under this name.")
    def wan_import(file: str, name: str | None) -> None:
        """Recreate the WAN of an exported document."""
        try:
            document = json.loads(Path(file).read_text())
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read {file}: {exc}") from exc
        try:
            wan = transfer.import_wan(document, _passphrase(confirm=False), name)
            commit()
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
        click.echo(f"imported WAN '{wan.name}' (id {wan.id})")

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(file_okay=False))
    def backup_cmd(path: str) -> None:
        """A consistent copy of the database (taken while the app runs) and its secrets, into PATH."""
        try:
            written = backup_service.backup(Path(path))
        except backup_service.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        for f in written:
            click.echo(f"wrote {f}")
        click.echo("Keep secrets.env apart from the database copy: together they decrypt every key.")
