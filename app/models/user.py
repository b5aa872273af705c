from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime

import bcrypt
from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

ROLES = ("admin", "operator", "viewer")
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
TOKEN_PREFIX = "ww_"


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes; a SHA-256 pre-hash keeps long passphrases fully significant.
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Part of the id every session cookie carries (get_id): raising it ends every session of this
    # user at once, on every web worker, without a session table (logout, password or role change,
    # deactivation).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        # 12 rounds in production; the test suite lowers it (it hashes hundreds of passwords).
        rounds = int(current_app.config.get("BCRYPT_ROUNDS", 12)) if has_app_context() else 12
        self.password_hash = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()

    def check_password(self, password: str) -> bool:
        return bcrypt.checkpw(_prehash(password), self.password_hash.encode())

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        # flask-login stores this in the session (and the remember cookie); see load_user.
        return f"{self.id}:{self.session_generation}"

    def end_sessions(self) -> None:
        """Every session cookie issued so far stops working at its next request."""
        self.session_generation = (self.session_generation or 0) + 1

    def has_role(self, needed: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]

    @property
    def can_edit(self) -> bool:
        return self.has_role("operator")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """A bearer token: only its SHA-256 is stored, the value is shown once when created."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")

    @staticmethod
    def digest(value: str) -> str:
        # Tokens carry 256 random bits, so a fast hash is enough (no offline guessing to slow down).
        return hashlib.sha256(value.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        value = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls(user=user, name=name, token_hash=cls.digest(value), hint=value[:7] + "…")
        return token, value

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()


class Bootstrap(db.Model):  # type: ignore[name-defined,misc]
    """One row, written with the first account: the database, not a count read a moment earlier,
    decides which of several simultaneous first registrations becomes the admin (the primary key
    admits only id 1)."""

    __tablename__ = "bootstrap"
    __table_args__ = (CheckConstraint("id = 1", name="singleton"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """Failed logins per account or client address; in the database so every web worker agrees."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
