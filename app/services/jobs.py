"""Creating jobs and handing them to RQ once the transaction that created them has committed.

Jobs take ids, never objects: the worker reloads everything. Auto-redeploys coalesce: while a deploy
for a peer is still queued, later changes add nothing (that deploy reads the latest state when it
runs); once it has started, the next change queues one more.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_login import current_user
from sqlalchemy import select

from app.domain.errors import DomainError
from app.extensions import db, job_queue, redis_connection
from app.models import Job, Peer
from app.models.base import utcnow

JOB_FUNCTIONS = {
    "test_connection": "jobs.mikrotik.run_test_connection",
    "preflight": "jobs.mikrotik.run_preflight",
    "deploy": "jobs.mikrotik.run_deploy",
    "verify": "jobs.mikrotik.run_verify",
    "revert": "jobs.mikrotik.run_revert",
    "clear": "jobs.mikrotik.run_clear",
    "probe": "jobs.mikrotik.run_probe",
}
# Redis keys carry the queue name: peer ids are only unique within one database, and instances (or
# test runs) sharing a Redis must not skip each other's auto-deploys.
PENDING_KEY = "wirewan:{queue}:pending-deploy:{peer_id}"
JOB_TIMEOUT = 600


def _actor() -> tuple[int | None, str]:
    try:
        if current_user and current_user.is_authenticated:
            return current_user.id, current_user.email
    except (AttributeError, RuntimeError):
        pass
    return None, "system"


class QueueUnavailable(DomainError):
    """Redis cannot be reached: a job asked for now could not be queued (HTTP 503)."""

    default_code = "unavailable"
    default_status = 503


def require_queue() -> None:
    """Refuse a job someone is asking for while Redis is unreachable, before anything is saved: a
    clear 503 now, rather than a 202 and a job that fails at once."""
    try:
        redis_connection().ping()
    except Exception as exc:  # noqa: BLE001 — any connection or auth error means the same to the user
        raise QueueUnavailable(
            "The job queue (Redis) is unreachable, so nothing was queued or saved. "
            "Check that Redis and the worker are running, then try again."
        ) from exc


def create(kind: str, peer: Peer, params: dict[str, Any] | None = None, trigger: str = "manual") -> Job:
    """Stage a queued Job row; it is handed to RQ by `enqueue_staged` after the commit."""
    if trigger == "manual":
        require_queue()
    user_id, actor = _actor()
    job = Job(
        kind=kind,
        status="queued",
        wan_id=peer.wan_id,
        peer_id=peer.id,
        peer_name=peer.name,
        user_id=user_id,
        actor=actor if trigger == "manual" else f"auto-deploy ({actor})",
        trigger=trigger,
        params=params or {},
        log=[f"{utcnow():%H:%M:%S} queued by {actor}"],
    )
    db.session.add(job)
    db.session.flush()
    db.session.info.setdefault("wirewan_enqueue", []).append(job.id)
    return job


def enqueue_staged() -> list[int]:
    """Send the jobs created in the just-committed transaction to RQ (call after commit)."""
    ids: list[int] = db.session.info.pop("wirewan_enqueue", [])
    for job_id in ids:
        job = db.session.get(Job, job_id)
        if job is None:
            continue
        try:
            rq_job = job_queue().enqueue_call(
                JOB_FUNCTIONS[job.kind],
                args=(job.id,),
                job_id=f"wirewan-job-{job.id}",
                timeout=JOB_TIMEOUT,
                result_ttl=3600,
                failure_ttl=86400,
            )
        except Exception as exc:  # noqa: BLE001 — Redis down: the row must say so, not stay queued
            job.status, job.finished_at = "failed", utcnow()
            job.error = f"The job queue (Redis) is unreachable: {type(exc).__name__}. Nothing was done."
            db.session.commit()
            current_app.logger.warning("could not enqueue job %s: %s", job.id, exc)
            continue
        job.rq_id = rq_job.id
        db.session.commit()
    return ids


def discard_staged() -> None:
    db.session.info.pop("wirewan_enqueue", None)


def schedule_auto_deploy(peer: Peer) -> Job | None:
    """At most one queued auto-deploy per peer (the marker lives in Redis, shared by every process)."""
    key = pending_key(peer.id)
    try:
        if not redis_connection().set(key, "1", nx=True, ex=JOB_TIMEOUT):
            return None
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("auto-deploy for peer %s not queued: %s", peer.id, exc)
        return None
    return create("deploy", peer, {"auto": True}, trigger="auto")


def pending_key(peer_id: int) -> str:
    return PENDING_KEY.format(queue=current_app.config.get("RQ_QUEUE") or "wirewan", peer_id=peer_id)


def release_pending(peer_id: int) -> None:
    """Called by the deploy job as it starts: changes from now on queue a fresh deploy."""
    redis_connection().delete(pending_key(peer_id))


def latest(kind: str, peer_id: int, status: str | None = None) -> Job | None:
    query = select(Job).where(Job.kind == kind, Job.peer_id == peer_id)
    if status:
        query = query.where(Job.status == status)
    return db.session.scalar(query.order_by(Job.id.desc()).limit(1))
