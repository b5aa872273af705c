"""The job lifecycle and the one commit path: every status change goes through the Job row's own
methods, a commit's follow-ups (jobs to RQ, auto-deploys) run only through app.services.tx, and
nothing on the web side imports the worker's code."""

from __future__ import annotations

import ast
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.job import Job as RqJob
from rq.job_lifecycle import record_job_failure

from app.extensions import db, redis_connection
from app.models import Job, Peer
from app.models.base import utcnow
from app.models.jobs import JobKind, JobStatus
from app.services import changes
from app.services import jobs as lifecycle
from app.services.tx import CommitBypassed, commit

ROOT = Path(__file__).resolve().parents[2]


def queued_ids(app: Flask) -> list[str]:
    with Redis.from_url(os.environ["REDIS_URL"]) as redis:
        return Queue(app.config["RQ_QUEUE"], connection=redis).job_ids


def router(app: Flask, router_wan: dict[str, Any]) -> Peer:
    peer = db.session.get(Peer, router_wan["router"]["id"])
    assert peer is not None
    return peer


def test_every_kind_names_its_label_and_a_job_function_that_exists() -> None:
    import importlib

    for kind in JobKind:
        module, _, name = kind.function.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), kind
        assert kind.label and kind.label[0].isupper()
    assert {k for k in JobKind if k.changes_router} == {JobKind.DEPLOY, JobKind.REVERT, JobKind.CLEAR}


def test_a_job_reaches_rq_only_when_its_transaction_commits(app: Flask, router_wan: dict[str, Any]) -> None:
    with app.app_context():
        lifecycle.create(JobKind.VERIFY, router(app, router_wan))
        db.session.rollback()
        # A rollback forgets what the transaction staged: the next commit must not enqueue it.
        kept = lifecycle.create(JobKind.CLEAR, router(app, router_wan))
        commit()
        assert [job.kind for job in db.session.query(Job)] == ["clear"]
        assert kept.rq_id == lifecycle.rq_job_id(kept.id)
        assert queued_ids(app) == [kept.rq_id]


def test_a_direct_commit_that_would_skip_the_follow_ups_is_refused(app: Flask, router_wan: dict[str, Any]) -> None:
    with app.app_context():
        lifecycle.create(JobKind.VERIFY, router(app, router_wan))
        with pytest.raises(CommitBypassed, match="app.services.tx.commit"):
            db.session.commit()
        db.session.rollback()
        changes.touched(router_wan["wan"]["id"])
        with pytest.raises(CommitBypassed):
            db.session.commit()
        db.session.rollback()
        assert db.session.query(Job).count() == 0
    assert queued_ids(app) == []


def test_no_app_or_job_module_commits_around_the_helper() -> None:
    offenders = []
    for path in [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("jobs").rglob("*.py")]:
        if path.name == "tx.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "db.session.commit":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "commit through app.services.tx.commit(): " + ", ".join(offenders)


def test_the_web_app_never_imports_the_worker_code() -> None:
    for path in ROOT.joinpath("app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n == "jobs" or n.startswith("jobs.") for n in names), path


def test_start_and_terminate_record_how_a_job_ran(app: Flask, router_wan: dict[str, Any]) -> None:
    with app.app_context():
        job = lifecycle.create(JobKind.PREFLIGHT, router(app, router_wan))
        lifecycle.discard_staged()
        commit()
        started = lifecycle.start(job.id)
        assert (started.status, started.step) == (JobStatus.RUNNING, "started") and started.started_at
        started.terminate(JobStatus.FAILED, "the router said no")
        commit()
        assert (job.status, job.step, job.error) == ("failed", "failed", "the router said no")
        assert job.finished_at is not None and job.log[-1].endswith("FAILED: the router said no")
        # RQ may deliver a job twice; an ended job never runs again.
        with pytest.raises(lifecycle.JobAlreadyEnded):
            lifecycle.start(job.id)
        with pytest.raises(ValueError):
            job.terminate(JobStatus.RUNNING)


def test_the_reaper_ends_only_jobs_whose_heartbeat_stopped(app: Flask, router_wan: dict[str, Any]) -> None:
    with app.app_context():
        peer = router(app, router_wan)
        alive, dead, queued = (lifecycle.create(JobKind.VERIFY, peer) for _ in range(3))
        lifecycle.discard_staged()
        for job in (alive, dead):
            job.start()
        dead.heartbeat_at = utcnow() - timedelta(minutes=5)
        commit()
        assert lifecycle.reap_abandoned(stale_after_seconds=60) == 1
        commit()
        assert (alive.status, dead.status, queued.status) == ("running", "abandoned", "queued")
        assert "no heartbeat for 60 s" in (dead.error or "") and dead.finished_at is not None
        assert lifecycle.reap_abandoned(stale_after_seconds=60) == 0


def test_an_auto_deploy_whose_worker_died_before_it_began_does_not_block_the_next_one(
    app: Flask, router_wan: dict[str, Any]
) -> None:
    """The auto-deploy releases its router's pending marker as it begins; a worker killed just
    before that left the marker for ten minutes, and no change in between queued a deploy."""
    with app.app_context():
        peer = router(app, router_wan)
        dying = lifecycle.schedule_auto_deploy(peer)
        assert dying is not None
        assert lifecycle.schedule_auto_deploy(peer) is None  # coalesced while it is pending
        lifecycle.discard_staged()
        dying.start()
        dying.heartbeat_at = utcnow() - timedelta(minutes=5)
        commit()
        assert lifecycle.schedule_auto_deploy(peer) is None  # killed before release_pending
        assert lifecycle.reap_abandoned(stale_after_seconds=60) == 1
        commit()
        assert dying.status == "abandoned"
        next_deploy = lifecycle.schedule_auto_deploy(peer)
        assert next_deploy is not None and next_deploy.params == {"auto": True}
        lifecycle.discard_staged()
        lifecycle.release_pending(peer.id)


def test_the_reaper_ends_queued_jobs_the_queue_lost(app: Flask, router_wan: dict[str, Any]) -> None:
    """./run.sh's private Redis keeps nothing on disk: after a restart, a job the database still
    calls queued will never run, and it would keep its router's buttons disabled for good."""
    with app.app_context():
        peer = router(app, router_wan)
        held = lifecycle.create(JobKind.VERIFY, peer)
        commit()  # really enqueued: RQ holds it
        lost, fresh = lifecycle.create(JobKind.VERIFY, peer), lifecycle.create(JobKind.PREFLIGHT, peer)
        lifecycle.discard_staged()  # as if Redis had been restarted after the enqueue
        lost.rq_id = lifecycle.rq_job_id(lost.id)
        held.created_at = lost.created_at = utcnow() - timedelta(minutes=5)
        commit()
        assert lifecycle.reap_abandoned(stale_after_seconds=60) == 1
        commit()
        assert (held.status, lost.status, fresh.status) == ("queued", "abandoned", "queued")
        assert "no longer holds this job" in (lost.error or "")
        assert lost.log[-1].endswith("ABANDONED: lost from the queue")


def test_the_reaper_ends_queued_jobs_whose_worker_died_before_they_began(
    app: Flask, router_wan: dict[str, Any]
) -> None:
    """A worker killed after RQ handed it the job but before the job marked its row running: RQ's
    cleanup records the job failed, and the row would otherwise stay queued for good."""
    with app.app_context():
        peer = router(app, router_wan)
        taken, waiting = lifecycle.create(JobKind.VERIFY, peer), lifecycle.create(JobKind.PREFLIGHT, peer)
        commit()  # both really enqueued
        taken.created_at = waiting.created_at = utcnow() - timedelta(minutes=5)
        commit()
        rq_job = RqJob.fetch(taken.rq_id, connection=redis_connection())
        with redis_connection().pipeline() as pipe:  # what RQ's StartedJobRegistry.cleanup does then
            record_job_failure(rq_job, "Moved to FailedJobRegistry, due to AbandonedJobError", pipe)
            pipe.execute()
        assert lifecycle.reap_abandoned(stale_after_seconds=60) == 1
        commit()
        assert (taken.status, waiting.status) == ("abandoned", "queued")
        assert "RQ recorded it failed" in (taken.error or "") and "run it again" in (taken.error or "")
