"""Running a job inside a worker: its own app context, a heartbeat thread, and the per-router lock.

The lifecycle itself (start, end, heartbeat, reaping) lives in app.services.jobs; this module is the
worker's side of it. Progress, log lines, the result and the final status live in the `Job` row, and
a heartbeat thread refreshes `heartbeat_at` (and the router lock) while the job runs. A job whose
worker died stops beating; the worker's maintenance (jobs/worker.py) reaps it as `abandoned`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from redis.exceptions import LockError

from app.extensions import db, redis_connection
from app.models import AuditEntry, Job, Peer
from app.models.base import utcnow
from app.models.jobs import JobKind, JobStatus
from app.routeros_api import CallRecord, RouterError
from app.services import audit, webhooks
from app.services import jobs as lifecycle
from app.services.tx import commit

LOG_FLUSH_SECONDS = 0.3
HEARTBEAT_SECONDS = lifecycle.HEARTBEAT_SECONDS
# How long a router lock outlives a worker that died holding it (the heartbeat extends it while the
# job runs). Configurable so a test (or an impatient operator) need not wait two minutes.
LOCK_TTL_SECONDS = float(os.environ.get("WIREWAN_ROUTER_LOCK_TTL", "120"))
_app: Flask | None = None
_app_pid: int | None = None  # the process that made `_app` (and owns its connection pool)


class JobFailed(Exception):
    """The job cannot go on; `message` is what the user sees on the job page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RouterBusy(JobFailed):
    """Another job held the router's lock for longer than this one would wait."""


def get_app() -> Flask:
    """One app per worker process, created lazily (jobs import this module, not the web app)."""
    global _app, _app_pid
    if _app is None:
        from app import create_app

        _app, _app_pid = create_app(), os.getpid()
    return _app


def set_app(app: Flask | None) -> None:
    """Tests run jobs in-process against their own app and database."""
    global _app, _app_pid
    _app, _app_pid = app, os.getpid()


class JobContext:
    """What a job function uses to report: progress, log lines, warnings, the result."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.result: dict[str, Any] = {}
        self._flushed = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.params or {})

    def peer(self) -> Peer:
        peer = db.session.get(Peer, self.job.peer_id) if self.job.peer_id else None
        if peer is None:
            raise JobFailed("The peer was deleted before the job ran.")
        return peer

    def log(self, line: str, *, flush: bool = False) -> None:
        # Lines are committed at most every LOG_FLUSH_SECONDS (a 250-peer deploy logs hundreds), and
        # at every progress step.
        self.job.append_log(line)
        now = time.monotonic()
        if flush or now - self._flushed >= LOG_FLUSH_SECONDS:
            commit()
            self._flushed = now

    def progress(self, percent: int, step: str) -> None:
        self.job.progress = max(0, min(100, percent))
        self.job.step = step[:200]
        self.log(step, flush=True)

    def step(self, step: str) -> None:
        """A new step text for the status line (e.g. a countdown), committed without a log line."""
        self.job.step = step[:200]
        commit()

    def warn(self, message: str) -> None:
        self.job.warnings = [*(self.job.warnings or []), message]
        self.log(f"WARNING: {message}")

    def audit_router_call(self, record: CallRecord) -> None:
        """Every router call becomes an audit entry (secrets already redacted by the adapter)."""
        db.session.add(
            AuditEntry(
                # When the call ended, not when the batched entries are flushed (later, often after
                # the router lock is released): the log tells when WireWAN talked to the router.
                created_at=utcnow(),
                actor=self.job.actor,
                user_id=self.job.user_id,
                action="router-call",
                object_type="peer",
                object_id=self.job.peer_id,
                wan_id=self.job.wan_id,
                summary=f"{record.command} → {record.result} ({record.duration_ms} ms)",
                details={
                    "command": record.command,
                    "arguments": dict(record.arguments),
                    "result": record.result,
                    "duration_ms": record.duration_ms,
                    "job_id": self.job.id,
                },
            )
        )


def _beat(app: Flask, job_id: int, lock: Any, stop: threading.Event) -> None:
    with app.app_context():
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                lifecycle.beat(job_id)
                if lock is not None:
                    lock.extend(LOCK_TTL_SECONDS, replace_ttl=True)
            except Exception as exc:  # noqa: BLE001 — a missed beat must not kill the job; the next retries
                app.logger.warning("job %s heartbeat failed: %s", job_id, exc)


def warm_up(app: Flask) -> None:
    """Prepare, once in a worker's parent, what every job needs, so each forked horse inherits it
    instead of paying for it: the derived encryption keys (a router password is decrypted by every
    job), the Redis client, and the compiled SQL of a job's statements (SQLAlchemy caches it per
    engine and per mapper; compiling them cost a horse 12-30 ms per job). The connection it used is
    closed, not inherited."""
    from app import crypto

    with app.app_context():
        crypto.prepare()
        redis_connection()  # the client object only: each horse's pool opens its own connections
        try:
            _rehearse_job_statements()
        except Exception:  # noqa: BLE001 — only an optimisation: a worker must start without it
            app.logger.warning("job statement warm-up failed; jobs compile their SQL themselves", exc_info=True)
        finally:
            db.session.rollback()
            db.session.remove()
            db.engine.dispose()


def _rehearse_job_statements() -> None:
    """The statements of a preflight and a deploy, run on a throwaway WAN, router peer and job in one
    transaction the caller rolls back: nothing is committed (PostgreSQL may skip one id per table,
    as after any rollback). The UPDATEs set the same columns as the job steps do, so they compile to
    the same cached statements."""
    from uuid import uuid4

    from app.models import Deployment, Wan
    from app.services import configs, specs
    from app.services.mikrotik import router_slots
    from jobs.mikrotik import rollback_may_be_armed

    session = db.session
    name = f"warm-up-{uuid4().hex[:12]}"
    wan = Wan(name=name)
    peer = Peer(wan=wan, name=name, kind="mikrotik", tunnel_ip="10.0.0.1", public_key=uuid4().hex, mt_host=name)
    session.add_all([wan, peer])
    session.flush()
    job = Job(kind="preflight", wan_id=wan.id, peer_id=peer.id, peer_name=name, actor=name, params={}, log=[])
    session.add(job)
    session.flush()
    job_id, peer_id, wan_id = job.id, peer.id, wan.id
    with audit.acting_for(None, name):
        session.expunge_all()  # as in a new horse: the rows are loaded ...
        job = lifecycle.start(job_id)
        session.flush()
        ctx = JobContext(job)
        peer = ctx.peer()
        assert peer.wan is not None
        session.expire_all()  # ... and read again after each commit
        job.progress = int(job.progress or 0)
        peer = ctx.peer()
        assert peer.wan is not None
        router_slots(peer)
        router_slots(peer, deployed_only=True)
        job.progress, job.step = 10, "warm-up"
        job.append_log("warm-up")
        session.flush()
        record = CallRecord("/system/resource/print", {}, "ok", 0.0, write=False)
        ctx.audit_router_call(record)
        session.flush()
        job.append_log("warm-up")
        for _ in range(2):
            ctx.audit_router_call(record)
        session.flush()
        session.expire_all()
        specs.load_spec(wan_id, secrets_for={peer_id})
        rollback_may_be_armed(ctx, peer)
        deployment = Deployment(
            peer_id=peer_id, job_id=job_id, kind="deploy", desired_enc="", plan_lines=[], plan_hash="",
            config_hash="", demoted_routes=[], writes=0, reads=0,
        )  # fmt: skip
        session.add(deployment)
        configs.mark_applied(peer, configs.PeerConfig(peer_id, "mikrotik-script", "", ""), "deploy")
        session.flush()
        session.expire_all()
        assert deployment.id is not None
        job.progress, job.step = 85, "warm-up"
        session.flush()
        ctx.result = {"warm-up": True}
        _record_end(job_id, JobStatus.SUCCEEDED, ctx, None, ["warm-up"], [])
        session.flush()


def _fresh_pool_after_fork() -> None:
    """Never share pooled connections with a forking parent: in a process forked after the app was
    made (an RQ work-horse), drop — without closing — the pool inherited from the parent. Only then:
    disposing on every job in the process that owns the pool (SimpleWorker, tests) would orphan its
    open connections (psycopg warns of each one)."""
    global _app_pid
    if _app_pid != os.getpid():
        db.engine.dispose(close=False)
        _app_pid = os.getpid()


@contextmanager
def tracked(job_id: int) -> Iterator[JobContext]:
    """Open the app, mark the job running, and record how it ends (re-raising failures for RQ)."""
    app = get_app()
    with app.app_context():
        _fresh_pool_after_fork()
        try:
            job = lifecycle.start(job_id)
        except lifecycle.JobAlreadyEnded as exc:
            raise JobFailed(str(exc)) from exc
        commit()
        ctx = JobContext(job)
        stop = threading.Event()
        beat = threading.Thread(target=_beat, args=(app, job_id, None, stop), daemon=True)
        beat.start()
        try:
            with audit.acting_for(job.user_id, job.actor):
                yield ctx
        except (JobFailed, RouterError) as exc:
            _finish(job_id, JobStatus.FAILED, ctx, error=exc.message)
            raise
        except Exception as exc:
            _finish(job_id, JobStatus.FAILED, ctx, error=f"Internal error ({type(exc).__name__}); see the worker log.")
            raise
        else:
            _finish(job_id, JobStatus.SUCCEEDED, ctx)
        finally:
            stop.set()
            beat.join(timeout=2)


def _finish(job_id: int, status: JobStatus, ctx: JobContext, error: str | None = None) -> None:
    # Keep what the job had not flushed yet (batched log lines, audit entries of router calls) in the
    # same commit as the end — unless the session itself is broken, then only the copies held by the
    # context survive.
    lines, warnings = list(ctx.job.log or []), list(ctx.job.warnings or [])
    try:
        _record_end(job_id, status, ctx, error, lines, warnings)
        commit()
    except Exception:  # noqa: BLE001
        db.session.rollback()
        ended = db.session.get(Job, job_id)
        if ended is not None and ended.terminal:
            return  # the commit went through; what failed came after it
        _record_end(job_id, status, ctx, error, lines, warnings)
        commit()


def _record_end(
    job_id: int, status: JobStatus, ctx: JobContext, error: str | None, lines: list[str], warnings: list[str]
) -> None:
    job = db.session.get(Job, job_id)
    assert job is not None
    job.log, job.warnings = lines, warnings
    job.result = ctx.result or job.result
    job.terminate(status, error)
    if status == JobStatus.FAILED and job.trigger != "schedule":
        # A scheduled job's failure is told by its state events (router.unreachable), not each round.
        webhooks.emit(
            "job.failed",
            f"{_label(job.kind)} of '{job.peer_name}' failed: {error or 'see the job log'}",
            wan_id=job.wan_id,
            peer_id=job.peer_id,
        )


def _label(kind: str) -> str:
    return next((k.label for k in JobKind if k.value == kind), kind)


def router_lock_key(router: str) -> str:
    # Namespaced by queue like the pending-deploy marker: the same router may be a test fixture
    # of several databases. `router` is host:port (services.mikrotik.router_key), so the WANs a
    # router serves share one lock.
    return f"wirewan:{current_app.config['RQ_QUEUE']}:lock:router:{router}"


@contextmanager
def router_lock(router: str, ctx: JobContext, wait_seconds: float = 60) -> Iterator[None]:
    """One job per router (host:port) at a time, across every worker and every WAN (the lock lives
    in Redis)."""
    lock = redis_connection().lock(router_lock_key(router), timeout=LOCK_TTL_SECONDS, thread_local=False)
    if not lock.acquire(blocking=True, blocking_timeout=wait_seconds):
        raise RouterBusy("Another job is still working on this router; try again when it has finished.")
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(get_app(), ctx.job.id, lock, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=2)
        with contextlib.suppress(LockError):  # an expired lock is already gone
            lock.release()


def reap_abandoned_jobs(stale_after_seconds: float | None = None) -> int:
    """The worker's maintenance step: end the jobs of workers that died (see app.services.jobs)."""
    with get_app().app_context():
        _fresh_pool_after_fork()
        reaped = lifecycle.reap_abandoned(stale_after_seconds)
        commit()
        return reaped


def expire_peers() -> int:
    """The worker's maintenance step: disable the peers whose `expires_at` passed (audited), which
    schedules the auto-deploys of their WANs' routers."""
    from app.models.base import utcnow
    from app.services import peers

    with get_app().app_context():
        _fresh_pool_after_fork()
        expired = peers.disable_expired(utcnow())
        commit()
        return len(expired)
