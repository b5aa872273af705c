"""Accounts, login throttling and API tokens."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import ROLES, ApiToken, LoginThrottle, User
from app.models.base import utcnow
from app.models.user import TOKEN_PREFIX
from app.services import audit

EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\"<>]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}$")
MIN_PASSWORD = 8


class AccountError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class Throttled(Exception):
    def __init__(self, seconds: int):
        super().__init__(f"Too many failed logins. Try again in {seconds} seconds.")
        self.seconds = seconds


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email):
        raise AccountError("Enter a valid email address.", "email")
    return email


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Use at least {MIN_PASSWORD} characters.", field)
    if len(password) > 256:
        raise AccountError("Use at most 256 characters.", field)
    if any(ord(c) < 32 for c in password):
        raise AccountError("Control characters are not allowed in passwords.", field)


def registration_open() -> bool:
    return db.session.scalar(select(func.count(User.id))) == 0


def create_user(email: str, password: str, role: str) -> User:
    email = normalize_email(email)
    check_password_strength(password)
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.", "role")
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError("A user with this email already exists.", "email", status=409)
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("create", "user", user.id, summary=f"user {email} ({role})")
    return user


def register_first_user(email: str, password: str) -> User:
    """The first account becomes admin; after it, registration is closed."""
    if not registration_open():
        raise AccountError("Registration is closed. Ask an admin for an account.", status=403)
    user = create_user(email, password, "admin")
    audit.record(
        "register",
        "user",
        user.id,
        summary=f"first user {user.email} became admin",
        actor=(user.id, user.email),
    )
    return user


def _throttle_keys(email: str, client: str) -> list[str]:
    return [f"account:{email.strip().lower()[:254]}", f"client:{client[:64]}"]


def _locked_for(keys: list[str]) -> int:
    now = utcnow()
    rows = db.session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all()
    waits = [int((r.locked_until - now).total_seconds()) + 1 for r in rows if r.locked_until and r.locked_until > now]
    return max(waits, default=0)


def authenticate(email: str, password: str, client: str) -> User | None:
    """Return the user, None for a wrong email/password; raise Throttled while locked out."""
    keys = _throttle_keys(email, client)
    wait = _locked_for(keys)
    if wait:
        raise Throttled(wait)
    user: User | None = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is not None and user.active and user.check_password(password or ""):
        for row in db.session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
            if row.key.startswith("account:"):
                db.session.delete(row)
        return user
    _note_failure(keys)
    return None


def _note_failure(keys: list[str]) -> None:
    cfg = current_app.config
    now = utcnow()
    window = timedelta(seconds=cfg["LOGIN_LOCKOUT_SECONDS"])
    for key in keys:
        row = db.session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_start=now)
            db.session.add(row)
        if now - row.window_start > window:
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= cfg["LOGIN_MAX_FAILURES"]:
            row.locked_until = now + window


def change_password(user: User, current: str, new: str) -> None:
    if not user.check_password(current or ""):
        raise AccountError("Current password is wrong.", "current_password")
    check_password_strength(new, "new_password")
    user.set_password(new)
    audit.record("change-password", "user", user.id, summary=f"password changed for {user.email}")


def create_token(user: User, name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or any(ord(c) < 32 for c in name):
        raise AccountError("Give the token a name of 1–64 characters.", "name")
    token, value = ApiToken.issue(user, name)
    db.session.add(token)
    db.session.flush()
    audit.record("create", "api_token", token.id, summary=f"token '{name}' for {user.email}")
    return value


def revoke_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and not user.is_admin):
        raise AccountError("No such token.", status=404)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record("revoke", "api_token", token.id, summary=f"token '{token.name}' revoked")
    return token


def user_for_token(value: str) -> User | None:
    if not value or not value.startswith(TOKEN_PREFIX):
        return None
    token: ApiToken | None = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.digest(value)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    # Throttled so that a busy script does not turn every read into a database write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.user


def set_role(admin: User, user_id: int, role: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountError("No such user.", status=404)
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.", "role")
    if user.id == admin.id and role != "admin":
        raise AccountError("You cannot remove your own admin role.", "role", status=409)
    old, user.role = user.role, role
    audit.record("update", "user", user.id, summary=f"role of {user.email}: {old} → {role}")
    return user
