"""`flask --app wsgi user create …` and `flask --app wsgi token create …` for scripting."""

from __future__ import annotations

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
        from app.models import Deployment, Peer

        count = 0
        try:
            for peer in db.session.scalars(select(Peer)):
                if peer.private_key_enc:
                    peer.private_key_enc = crypto.rotate(peer.private_key_enc)
                    count += 1
                if peer.mt_password_enc:
                    peer.mt_password_enc = crypto.rotate(peer.mt_password_enc)
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
