"""Audit entries. Every summary passes through `redact` so no secret reaches the log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask_login import current_user
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Peer, Service, Subnet, Wan

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


def snapshot(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes as a plain dict: an entry's "before"/"after", compared by `changed_fields`."""
    return {f: getattr(row, f) for f in fields}


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The before/after pairs of the fields an update changed: an audit entry's details."""
    return {k: {"before": before[k], "after": after[k]} for k in before if before[k] != after.get(k)}


def record_network(action: str, row: Wan | Peer | Subnet | Service, summary: str, details: Any = None) -> AuditEntry:
    """An entry about a WAN or a part of one: the object type, its id and the WAN come from the row."""
    wan_id = row.id if isinstance(row, Wan) else row.wan_id
    return record(action, row.__tablename__, row.id, wan_id=wan_id, summary=summary, details=details)


def record_update(
    row: Wan | Peer, label: str, before: dict[str, Any], after: dict[str, Any], also: str | None = None
) -> None:
    """An "update" entry naming the fields that changed, or `also` (a change the snapshots cannot show,
    such as a new password) when none did; no entry when nothing changed."""
    changed = changed_fields(before, after)
    names = ", ".join(changed) or also
    if names:
        record_network("update", row, f"{label}: {names} changed", changed)


# Who a background job acts for: entries it records (a deploy marking a peer applied…) are credited
# to the user who asked for the job, not to "system".
_acting_for: ContextVar[tuple[int | None, str] | None] = ContextVar("wirewan_audit_actor", default=None)


@contextmanager
def acting_for(user_id: int | None, name: str) -> Iterator[None]:
    token = _acting_for.set((user_id, name))
    try:
        yield
    finally:
        _acting_for.reset(token)


def _actor() -> tuple[int | None, str]:
    job_actor = _acting_for.get()
    if job_actor is not None:
        return job_actor
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


# --- reading the log ------------------------------------------------------------------------------

ROUTER_CALL = "router-call"
AUDIT_KINDS = ("action", "router")
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 500


def wan_entries(wan_id: int, kind: str, page: int, per_page: int) -> tuple[list[AuditEntry], int]:
    """One page (from 1) of a WAN's entries, newest first, and how many there are in all.

    `kind` "action" is what people did (every entry but raw router calls); "router" is the calls
    WireWAN made to the WAN's routers on their behalf.
    """
    where = [AuditEntry.wan_id == wan_id]
    where.append(AuditEntry.action == ROUTER_CALL if kind == "router" else AuditEntry.action != ROUTER_CALL)
    total = db.session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    rows = db.session.scalars(
        select(AuditEntry).where(*where).order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(rows), total


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat() + "Z",
        "user_id": entry.user_id,
        "actor": entry.actor,
        "action": entry.action,
        "kind": "router" if entry.action == ROUTER_CALL else "action",
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "wan_id": entry.wan_id,
        "summary": entry.summary,
        "details": entry.details,
    }
