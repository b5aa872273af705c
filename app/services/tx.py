"""The one way a unit of work ends: `commit()`, or `commit_with_retry()` for allocations.

A commit has follow-ups: the jobs (and webhook deliveries) it created go to RQ (only now, so a
worker never sees a row that was rolled back), and every WAN it touched gets its auto-deploys
scheduled. They run here and only here. A direct `db.session.commit()` that would skip them raises
(the `before_commit` guard below), and a rollback forgets them, so no caller has to remember either.

Two requests may pick the same free tunnel IP (or NAT block) at once; the database's unique
constraint lets only one commit. `commit_with_retry` rolls the loser back and runs its whole unit of
work again, so it re-reads what is taken. This works the same on SQLite and PostgreSQL and across
processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_sqlalchemy.session import Session
from sqlalchemy import event, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.services import changes, jobs, webhooks

T = TypeVar("T")
ATTEMPTS = 8
_VIA_HELPER = "wirewan_commit_via_helper"


def commit() -> None:
    """Commit the session, then hand its jobs to RQ and schedule the auto-deploys it calls for."""
    _commit()
    scheduled = changes.schedule_touched()
    if scheduled:
        _commit()
    if jobs.enqueue_staged():
        _commit()  # each job's RQ id, or why it could not be queued
    if webhooks.enqueue_staged():
        _commit()  # a delivery that could not be queued says so


def commit_with_retry(unit_of_work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `unit_of_work` and commit; on a unique-constraint race roll back and run it again."""
    for attempt in range(attempts):
        try:
            result = unit_of_work()
            _commit()
        except (IntegrityError, OperationalError) as exc:
            db.session.rollback()
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            continue
        except Exception:
            db.session.rollback()
            raise
        scheduled = changes.schedule_touched()
        if scheduled:
            _commit()
        if jobs.enqueue_staged():
            _commit()
        if webhooks.enqueue_staged():
            _commit()
        return result
    raise AssertionError("unreachable")


def _commit() -> None:
    db.session.info[_VIA_HELPER] = True
    try:
        db.session.commit()
    finally:
        db.session.info.pop(_VIA_HELPER, None)


def lock_wan(wan_id: int) -> None:
    """Serialise allocations within one WAN: take the WAN row's write lock before reading what is
    free (a row lock on PostgreSQL, the database write lock on SQLite), then read afresh."""
    from app.models import Wan
    from app.models.base import utcnow

    db.session.execute(update(Wan).where(Wan.id == wan_id).values(updated_at=utcnow()))
    db.session.expire_all()


def _retryable(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, IntegrityError) or "locked" in text or "deadlock" in text


class CommitBypassed(RuntimeError):
    """A commit with follow-ups (queued jobs, touched WANs) went around `commit()`."""


@event.listens_for(Session, "before_commit")
def _refuse_commits_that_skip_follow_ups(session: Any) -> None:
    if session.info.get(_VIA_HELPER):
        return
    if session.info.get(jobs.STAGED) or session.info.get(changes.TOUCHED) or session.info.get(webhooks.STAGED):
        raise CommitBypassed(
            "This transaction queued jobs or changed a WAN; commit it with app.services.tx.commit() "
            "so the jobs reach RQ and auto-deploys are scheduled."
        )


@event.listens_for(Session, "after_soft_rollback")
def _forget_follow_ups(session: Any, previous_transaction: Any) -> None:
    # Whatever the rolled-back work staged never happened.
    session.info.pop(jobs.STAGED, None)
    session.info.pop(changes.TOUCHED, None)
    session.info.pop(webhooks.STAGED, None)
