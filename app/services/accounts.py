"""Accounts, login throttling and API tokens."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.models import ROLES, ApiToken, Bootstrap, LoginThrottle, User
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


REGISTRATION_CLOSED = "Registration is closed. Ask an admin for an account."


def register_first_user(email: str, password: str) -> User:
    """The first account becomes admin; after it, registration is closed.

    The count below is only a courtesy: two registrations can both see zero users. The bootstrap row
    (primary key 1, at most one ever) is what admits exactly one of them; the other's flush fails.
    """
    if not registration_open():
        raise AccountError(REGISTRATION_CLOSED, status=403)
    marker = Bootstrap(id=1)
    db.session.add(marker)
    try:
        db.session.flush()
    except (IntegrityError, OperationalError) as exc:
        # OperationalError: SQLite refuses the write of a transaction that read before the winner
        # committed (a busy snapshot), which means the same thing here.
        db.session.rollback()
        raise AccountError(REGISTRATION_CLOSED, status=403) from exc
    user = create_user(email, password, "admin")
    marker.user_id = user.id
    audit.record(
        "register",
        "user",
        user.id,
        summary=f"first user {user.email} became admin",
        actor=(user.id, user.email),
    )
    return user


# --- login throttling ----------------------------------------------------------------------------
# Two limits, so that nobody can lock an account for everyone else:
# - per (account, client address): LOGIN_MAX_FAILURES failures lock that pair for
#   LOGIN_LOCKOUT_SECONDS. A guesser at one address is stopped; the owner elsewhere is not.
# - per account, far higher and leaking one failure every LOGIN_ACCOUNT_LEAK_SECONDS: a guesser
#   spread over many addresses is slowed to that rate, and an idle account recovers by itself.
# The client address is the TCP peer, or with TRUSTED_PROXIES the one the proxy saw (ProxyFix).


def _pair_key(email: str, client: str) -> str:
    return f"pair:{client[:64]}|{email[:230]}"


def _account_key(email: str) -> str:
    return f"account:{email[:254]}"


def _leaked(row: LoginThrottle, now: datetime) -> int:
    """The account bucket's failures after leaking since its last update."""
    leak = max(1, int(current_app.config["LOGIN_ACCOUNT_LEAK_SECONDS"]))
    gone = int((now - row.window_start).total_seconds()) // leak
    return max(0, row.failures - gone)


def _locked_for(email: str, client: str) -> int:
    now = utcnow()
    waits = []
    pair = db.session.get(LoginThrottle, _pair_key(email, client))
    if pair is not None and pair.locked_until and pair.locked_until > now:
        waits.append(int((pair.locked_until - now).total_seconds()) + 1)
    account = db.session.get(LoginThrottle, _account_key(email))
    limit = int(current_app.config["LOGIN_ACCOUNT_MAX_FAILURES"])
    if account is not None:
        over = _leaked(account, now) - limit + 1
        if over > 0:
            waits.append(over * max(1, int(current_app.config["LOGIN_ACCOUNT_LEAK_SECONDS"])))
    return max(waits, default=0)


_DUMMY_HASH: dict[int, User] = {}


def _equal_work(password: str) -> None:
    """Spend the bcrypt time a real account costs, so that response time does not tell which emails
    have an account."""
    rounds = int(current_app.config.get("BCRYPT_ROUNDS", 12))
    dummy = _DUMMY_HASH.get(rounds)
    if dummy is None:
        dummy = User(email="", role="viewer")
        dummy.set_password(secrets.token_urlsafe(16))
        _DUMMY_HASH[rounds] = dummy
    dummy.check_password(password)


def authenticate(email: str, password: str, client: str) -> User | None:
    """Return the user, None for a wrong email/password; raise Throttled while locked out."""
    email = (email or "").strip().lower()
    wait = _locked_for(email, client)
    if wait:
        raise Throttled(wait)
    user: User | None = db.session.scalar(select(User).where(User.email == email))
    if user is None or not user.active:
        _equal_work(password or "")
    elif user.check_password(password or ""):
        pair = db.session.get(LoginThrottle, _pair_key(email, client))
        if pair is not None:
            db.session.delete(pair)
        user.last_login_at = utcnow()
        return user
    _note_failure(email, client)
    return None


def _note_failure(email: str, client: str) -> None:
    cfg = current_app.config
    now = utcnow()
    window = timedelta(seconds=cfg["LOGIN_LOCKOUT_SECONDS"])
    pair = db.session.get(LoginThrottle, _pair_key(email, client))
    if pair is None:
        pair = LoginThrottle(key=_pair_key(email, client), failures=0, window_start=now)
        db.session.add(pair)
    if now - pair.window_start > window:
        pair.failures, pair.window_start, pair.locked_until = 0, now, None
    pair.failures += 1
    if pair.failures >= cfg["LOGIN_MAX_FAILURES"]:
        pair.locked_until = now + window
    account = db.session.get(LoginThrottle, _account_key(email))
    if account is None:
        account = LoginThrottle(key=_account_key(email), failures=0, window_start=now)
        db.session.add(account)
    leak = max(1, int(cfg["LOGIN_ACCOUNT_LEAK_SECONDS"]))
    remaining = _leaked(account, now)
    # Keep the partial leak period, so that frequent failures do not stop the leak.
    spent = int((now - account.window_start).total_seconds()) // leak * leak
    account.window_start = account.window_start + timedelta(seconds=spent) if remaining else now
    account.failures = remaining + 1


def change_password(user: User, current: str, new: str) -> None:
    """Also ends the user's other sessions and keeps this one (the view logs it in again)."""
    if not user.check_password(current or ""):
        raise AccountError("Current password is wrong.", "current_password")
    check_password_strength(new, "new_password")
    user.set_password(new)
    user.end_sessions()
    audit.record("change-password", "user", user.id, summary=f"password changed for {user.email}")


MAX_TOKEN_DAYS = 3650


def create_token(user: User, name: str, expires_in_days: int | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or any(ord(c) < 32 for c in name):
        raise AccountError("Give the token a name of 1–64 characters.", "name")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise AccountError(f"Expiry must be 1–{MAX_TOKEN_DAYS} days, or empty for none.", "expires_in_days")
    token, value = ApiToken.issue(user, name)
    if expires_in_days is not None:
        token.expires_at = utcnow() + timedelta(days=expires_in_days)
    db.session.add(token)
    db.session.flush()
    audit.record("create", "api_token", token.id, summary=f"token '{name}' for {user.email}")
    return value


def visible_tokens(user: User, all_users: bool = False) -> list[ApiToken]:
    """The user's own tokens; every token for an admin who asks for all."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if not (all_users and user.is_admin):
        query = query.where(ApiToken.user_id == user.id)
    return list(db.session.scalars(query))


def revoke_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and not user.is_admin):
        raise AccountError("No such token.", status=404)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record("revoke", "api_token", token.id, summary=f"token '{token.name}' of {token.user.email} revoked")
    return token


def user_for_token(value: str) -> User | None:
    if not value or not value.startswith(TOKEN_PREFIX):
        return None
    token: ApiToken | None = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.digest(value)))
    if token is None or not token.active or not token.user.active:
        return None
    now = utcnow()
    # Throttled so that a busy script does not turn every read into a database write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.user


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountError("No such user.", status=404)
    return user


def _other_active_admins(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.active.is_(True), User.id != user.id)
        )
        or 0
    )


def set_role(admin: User, user_id: int, role: str) -> User:
    user = _user_or_404(user_id)
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.", "role")
    if user.id == admin.id and role != "admin":
        raise AccountError("You cannot remove your own admin role.", "role", status=409)
    if role == user.role:
        return user
    old, user.role = user.role, role
    # A session opened with the old role must not keep acting with it.
    user.end_sessions()
    audit.record("update", "user", user.id, summary=f"role of {user.email}: {old} → {role}")
    return user


def set_active(admin: User, user_id: int, active: bool) -> User:
    """Deactivating ends the user's sessions and revokes every token at once; reactivating gives
    back the login, not the tokens."""
    user = _user_or_404(user_id)
    if not active and user.id == admin.id:
        raise AccountError("You cannot deactivate yourself.", "active", status=409)
    if active == user.active:
        return user
    user.active = active
    if not active:
        user.end_sessions()
        now = utcnow()
        for token in user.tokens:
            if token.revoked_at is None:
                token.revoked_at = now
    verb = "reactivated" if active else "deactivated (sessions ended, tokens revoked)"
    audit.record("update", "user", user.id, summary=f"user {user.email} {verb}")
    return user


def delete_user(admin: User, user_id: int) -> None:
    """Their audit entries and jobs stay, without the link (they keep the email as text)."""
    user = _user_or_404(user_id)
    if user.id == admin.id:
        raise AccountError("You cannot delete yourself.", status=409)
    if user.role == "admin" and user.active and not _other_active_admins(user):
        raise AccountError("Keep at least one active admin.", status=409)
    audit.record("delete", "user", user.id, summary=f"user {user.email} deleted")
    db.session.delete(user)
    db.session.flush()


def update_user(admin: User, user_id: int, changes: dict[str, object]) -> User:
    """The API's PATCH: role and/or active."""
    unknown = set(changes) - {"role", "active"}
    if unknown:
        raise AccountError(f"Unknown field '{sorted(unknown)[0][:40]}'.", sorted(unknown)[0][:40], status=400)
    if "role" in changes:
        if not isinstance(changes["role"], str):
            raise AccountError(f"Role must be one of {', '.join(ROLES)}.", "role")
        set_role(admin, user_id, changes["role"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise AccountError("active must be true or false.", "active")
        set_active(admin, user_id, changes["active"])
    return _user_or_404(user_id)
