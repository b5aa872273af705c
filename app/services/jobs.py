"""The job lifecycle, in one place: create → enqueue after commit → start → heartbeat → end, and the
reaper that ends the jobs of workers that died.

The `Job` row is the truth; RQ only schedules. Jobs take ids, never objects: the worker reloads
everything. Job functions are enqueued by dotted path (`JobKind.function`), so the web app never
imports `jobs/`. Auto-redeploys coalesce: while a deploy for a peer is still queued, later changes add
nothing (that deploy reads the latest state when it runs); once it has started, the next change
queues one more.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_login import current_user
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.job import JobStatus as RqStatus
from sqlalchemy import select, update

from app.domain.errors import DomainError
from app.extensions import db, job_queue, redis_connection
from app.models import Job, Peer
from app.models.base import utcnow
from app.models.jobs import JobKind, JobStatus
from app.services import audit

# Redis keys carry the queue name: peer ids are only unique within one database, and instances (or
# test runs) sharing a Redis must not skip each other's auto-deploys.
PENDING_KEY = "wirewan:{queue}:pending-deploy:{peer_id}"
JOB_TIMEOUT = 600
STAGED = "wirewan_enqueue"
HEARTBEAT_SECONDS = float(os.environ.get("WIREWAN_JOB_HEARTBEAT", "5"))
# A running job whose heartbeat is older than this lost its worker: six missed beats, so a busy
# database or a slow beat thread is never mistaken for a death.
STALE_AFTER_SECONDS = HEARTBEAT_SECONDS * 6


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


def create(kind: JobKind | str, peer: Peer, params: dict[str, Any] | None = None, trigger: str = "manual") -> Job:
    """Stage a queued Job row; the commit (app.services.tx.commit) hands it to RQ."""
    kind = JobKind(kind)
    if trigger == "manual":
        require_queue()
    user_id, actor = _actor()
    job = Job(
        kind=kind.value,
        status=JobStatus.QUEUED.value,
        wan_id=peer.wan_id,
        peer_id=peer.id,
        peer_name=peer.name,
        user_id=user_id,
        actor={"manual": actor, "schedule": "scheduler"}.get(trigger, f"auto-deploy ({actor})"),
        trigger=trigger,
        params=params or {},
        log=[],
    )
    job.append_log(f"queued by {actor}")
    db.session.add(job)
    db.session.flush()
    # Every job is an action in the WAN's log, credited to whoever asked for it.
    audit.record(
        kind.value.replace("_", "-"),
        "peer",
        peer.id,
        wan_id=peer.wan_id,
        summary=f"{kind.label} of router '{peer.name}' requested"
        + (" (automatic, after a change)" if trigger != "manual" else ""),
        details={"job_id": job.id},
        actor=(user_id, job.actor),
    )
    db.session.info.setdefault(STAGED, []).append(job.id)
    return job


def workers_listening() -> bool | None:
    """Whether any RQ worker with a live heartbeat listens on our queue; None when Redis cannot say."""
    from rq import Worker

    try:
        return Worker.count(queue=job_queue()) > 0
    except Exception:  # noqa: BLE001 — Redis down: the page says the queue is unreachable elsewhere
        return None


def has_staged() -> bool:
    return bool(db.session.info.get(STAGED))


def enqueue_staged() -> list[int]:
    """Send the jobs created in the just-committed transaction to RQ. The caller commits what this
    records (each job's RQ id, or why it could not be queued)."""
    ids: list[int] = db.session.info.pop(STAGED, [])
    for job_id in ids:
        job = db.session.get(Job, job_id)
        if job is None:
            continue
        try:
            rq_job = job_queue().enqueue_call(
                JobKind(job.kind).function,
                args=(job.id,),
                job_id=rq_job_id(job.id),
                timeout=JOB_TIMEOUT,
                result_ttl=3600,
                failure_ttl=86400,
            )
        except Exception as exc:  # noqa: BLE001 — Redis down: the row must say so, not stay queued
            job.terminate(
                JobStatus.FAILED, f"The job queue (Redis) is unreachable: {type(exc).__name__}. Nothing was done."
            )
            current_app.logger.warning("could not enqueue job %s: %s", job.id, exc)
            continue
        job.rq_id = rq_job.id
    return ids


def rq_job_id(job_id: int) -> str:
    """RQ's id for a Job row. Job ids repeat across databases (instances or test runs sharing one
    Redis), so the queue name is part of it, as it is of every other Redis key of ours: a second
    instance's job 7 must not overwrite this one's. RQ allows only [A-Za-z0-9_-] in ids, and the row
    keeps 64 characters: a long or unusual queue name is replaced by a digest of it."""
    queue = str(current_app.config["RQ_QUEUE"])
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", queue):
        queue = hashlib.sha256(queue.encode()).hexdigest()[:16]
    return f"wirewan-{queue}-job-{job_id}"


def discard_staged() -> None:
    db.session.info.pop(STAGED, None)


# ---------------------------------------------------------------- the worker's side of the lifecycle


def start(job_id: int) -> Job:
    """Mark a queued job running (the caller commits). Refuses a job that already ended: RQ may
    deliver a job twice, and a deploy must not run twice."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    if job.terminal:
        raise JobAlreadyEnded(f"Job {job_id} already finished ({job.status}); not running it twice.")
    job.start()
    return job


class JobAlreadyEnded(Exception):
    pass


def beat(job_id: int) -> None:
    """Refresh a running job's heartbeat on a connection of its own (the job's session may be in
    the middle of a transaction)."""
    with db.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow()))


def reap_abandoned(stale_after_seconds: float | None = None) -> int:
    """End the running jobs whose worker stopped beating as `abandoned`; returns how many (the caller
    commits). The worker runs this in its maintenance (jobs/worker.py), never a page view."""
    limit = stale_after_seconds if stale_after_seconds is not None else STALE_AFTER_SECONDS
    cutoff = utcnow() - timedelta(seconds=limit)
    stale = db.session.scalars(
        select(Job).where(Job.status == JobStatus.RUNNING.value, Job.heartbeat_at < cutoff)
    ).all()
    for job in stale:
        job.abandon(
            f"The worker running this job stopped (no heartbeat for {int(limit)} s). Nothing more will "
            "happen; run the job again — a deploy reads the router first, so it converges."
        )
        _release_auto_deploy_marker(job)
    return len(stale) + _reap_lost(limit)


def _release_auto_deploy_marker(job: Job) -> None:
    """An auto-deploy releases its router's pending marker as it starts; one whose worker died before
    that would keep it for JOB_TIMEOUT, and every change meanwhile would queue no deploy."""
    if job.kind == JobKind.DEPLOY.value and job.peer_id is not None and (job.params or {}).get("auto"):
        try:
            release_pending(job.peer_id)
        except Exception as exc:  # noqa: BLE001  (Redis down: the marker expires by itself)
            current_app.logger.warning("pending-deploy marker of peer %s not released: %s", job.peer_id, exc)


def _reap_lost(grace_seconds: float) -> int:
    """End the queued jobs that RQ no longer holds: the queue lost them (a Redis restart; the private
    Redis of ./run.sh keeps nothing on disk), the process died between commit and enqueue, or a
    worker died after taking the job but before marking it running (RQ then records the job failed).
    Left queued, such a job would never run and would keep its router's actions disabled for good."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    waiting = db.session.scalars(select(Job).where(Job.status == JobStatus.QUEUED.value, Job.created_at < cutoff)).all()
    lost = 0
    for job in waiting:
        why = _why_rq_will_not_run(job.rq_id)
        if why is None:
            continue
        _release_auto_deploy_marker(job)
        job.abandon(f"{why}, so no worker will run it. Nothing was done; run it again.", summary="lost from the queue")
        lost += 1
    return lost


# What RQ records of a job it will never hand to a worker. Any other status (queued, started: a
# worker is about to mark the row running, or died and RQ's cleanup will soon record it failed; or
# one a newer RQ adds) means it may still run, and is not ours to judge.
_RQ_ENDED = frozenset(s.value for s in (RqStatus.FAILED, RqStatus.STOPPED, RqStatus.CANCELED, RqStatus.FINISHED))


def _why_rq_will_not_run(rq_id: str | None) -> str | None:
    """None while RQ may still run the job; otherwise what happened to it, for the job's error."""
    if rq_id is not None:
        try:
            status = RqJob.fetch(rq_id, connection=redis_connection()).get_status(refresh=False)
        except NoSuchJobError:
            pass
        else:
            recorded = getattr(status, "value", status)
            if recorded not in _RQ_ENDED:
                return None
            return f"The queue ended this job before it began (RQ recorded it {recorded}: its worker stopped)"
    return "The job queue no longer holds this job (Redis restarted, or the request that queued it stopped)"


# ---------------------------------------------------------------- auto-deploy coalescing


def schedule_auto_deploy(peer: Peer) -> Job | None:
    """At most one queued auto-deploy per peer (the marker lives in Redis, shared by every process)."""
    key = pending_key(peer.id)
    try:
        if not redis_connection().set(key, "1", nx=True, ex=JOB_TIMEOUT):
            return None
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("auto-deploy for peer %s not queued: %s", peer.id, exc)
        return None
    return create(JobKind.DEPLOY, peer, {"auto": True}, trigger="auto")


def pending_key(peer_id: int) -> str:
    return PENDING_KEY.format(queue=current_app.config["RQ_QUEUE"], peer_id=peer_id)


def release_pending(peer_id: int) -> None:
    """Called by the deploy job as it starts: changes from now on queue a fresh deploy."""
    redis_connection().delete(pending_key(peer_id))


def latest(kind: JobKind | str, peer_id: int, status: str | None = None) -> Job | None:
    query = select(Job).where(Job.kind == str(kind), Job.peer_id == peer_id)
    if status:
        query = query.where(Job.status == status)
    return db.session.scalar(query.order_by(Job.id.desc()).limit(1))
