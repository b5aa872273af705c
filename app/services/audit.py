"""Audit entries. Every summary passes through `redact` so no secret reaches the log."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from app.extensions import db
from app.models import AuditEntry

SECRET_FIELDS = frozenset(
    {"password", "private_key", "private-key", "preshared_key", "preshared-key", "secret", "token"}
)
REDACTED = "***"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if str(k).lower() in SECRET_FIELDS else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The before/after pairs of the fields an update changed: an audit entry's details."""
    return {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after.get(k)}


def _actor() -> tuple[int | None, str]:
    try:
        if current_user and current_user.is_authenticated:
            return current_user.id, current_user.email
    except (AttributeError, RuntimeError):  # outside a request (CLI, jobs)
        pass
    return None, "system"


def record(
    action: str,
    object_type: str,
    object_id: int | None = None,
    *,
    summary: str = "",
    wan_id: int | None = None,
    details: dict[str, Any] | None = None,
    actor: tuple[int | None, str] | None = None,
) -> AuditEntry:
    user_id, name = actor or _actor()
    entry = AuditEntry(
        user_id=user_id,
        actor=name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        wan_id=wan_id,
        summary=summary,
        details=redact(details) if details is not None else None,
    )
    db.session.add(entry)
    return entry
