"""Transactions with retry, for allocations guarded by unique constraints.

Two requests may pick the same free tunnel IP (or NAT block) at once; the database's unique
constraint lets only one commit. The loser rolls back and runs its whole unit of work again, so it
re-reads what is taken. This works the same on SQLite and PostgreSQL and across processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db

T = TypeVar("T")
ATTEMPTS = 8


def commit_with_retry(unit_of_work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `unit_of_work` and commit; on a unique-constraint race roll back and run it again."""
    from app.services import changes

    for attempt in range(attempts):
        try:
            result = unit_of_work()
            db.session.commit()
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            changes.forget()
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            continue
        except Exception:
            db.session.rollback()
            changes.forget()
            raise
        changes.after_commit()
        return result
    raise AssertionError("unreachable")


def lock_wan(wan_id: int) -> None:
    """Serialise allocations within one WAN: take the WAN row's write lock before reading what is
    free (a row lock on PostgreSQL, the database write lock on SQLite), then read afresh."""
    from sqlalchemy import update

    from app.models import Wan
    from app.models.base import utcnow

    db.session.execute(update(Wan).where(Wan.id == wan_id).values(updated_at=utcnow()))
    db.session.expire_all()


def _retryable(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, IntegrityError) or "locked" in text or "deadlock" in text
