from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_login import login_required
from sqlalchemy import func, select, text

from app.extensions import db, redis_connection
from app.models import Job, Wan
from app.models.base import utcnow
from app.models.jobs import JobKind
from app.services import status as status_service
from app.services.configs import cached_conflicts, wan_configs
from app.services.queries import ROUTINE_POLLS
from app.services.specs import load_wan

bp = Blueprint("main", __name__)

# Staleness needs every config of the WAN rendered (every private key decrypted): cheap for a few
# dozen peers, a noticeable fraction of a second per thousand. Above this size the dashboard leaves
# it to the WAN page and says so, so the home page stays fast however large the install grows.
STALE_COUNT_MAX_PEERS = 300
LAST_JOBS = 10
FAILED = ("failed", "abandoned")


@dataclass(frozen=True)
class WanRow:
    """One WAN's counts, each named by the word the badges use (docs/concepts.md, "Staleness"):
    peers are applied / not applied / stale, routers in sync / changes pending / not deployed, jobs
    queued / running."""

    wan: Wan
    peers: int
    not_applied: int  # peers that never applied a config (cheap: no rendering needed)
    stale: int | None  # applied, but not the current config; None: not counted (huge WAN)
    routers: int
    routers_pending: int | None  # routers deployed once whose current config differs; None as above
    routers_not_deployed: int
    jobs_queued: int
    jobs_running: int
    failed_deploys: int
    conflicts: int
    worst: str  # "critical" or "warning"


def _per_wan(query: Any) -> dict[int, int]:
    return {wan_id: n for wan_id, n in db.session.execute(query).all() if wan_id is not None}


@dataclass(frozen=True)
class JobCounts:
    queued: dict[int, int]
    running: dict[int, int]
    failed_deploys: dict[int, int]


def _job_counts() -> JobCounts:
    """Per WAN: jobs of any kind queued, jobs running, and routers whose latest deploy failed or was
    abandoned."""
    queued, running = (
        _per_wan(select(Job.wan_id, func.count(Job.id)).where(Job.status == status).group_by(Job.wan_id))
        for status in ("queued", "running")
    )
    latest = (
        select(func.max(Job.id).label("id"))
        .where(Job.kind == JobKind.DEPLOY, Job.peer_id.is_not(None))
        .group_by(Job.peer_id)
        .subquery()
    )
    failed = _per_wan(
        select(Job.wan_id, func.count(Job.id))
        .join(latest, latest.c.id == Job.id)
        .where(Job.status.in_(FAILED))
        .group_by(Job.wan_id)
    )
    return JobCounts(queued, running, failed)


def wan_row(wan: Wan, jobs: JobCounts) -> WanRow:
    loaded = load_wan(wan.id)
    assert loaded is not None
    routers = [p for p in loaded.peers if p.kind == "mikrotik"]
    never_applied = {p.id for p in loaded.peers if p.applied_config_hash is None}
    stale: int | None = None
    routers_pending: int | None = None
    unreachable = 0
    if len(loaded.peers) <= STALE_COUNT_MAX_PEERS:
        rendered = wan_configs(loaded)
        # stale_ids also holds the never-applied peers: those are "not applied", counted apart.
        out_of_date = rendered.stale_ids(loaded.peers) - never_applied
        stale = len(out_of_date)
        routers_pending = sum(1 for p in routers if p.id in out_of_date)
        unreachable = len(rendered.unreachable)
        found = rendered.conflicts
    else:
        found = cached_conflicts(loaded)
    worst = "critical" if any(c.severity == "critical" for c in found) else "warning"
    return WanRow(
        wan=loaded,
        peers=len(loaded.peers),
        not_applied=len(never_applied),
        stale=stale,
        routers=len(routers),
        routers_pending=routers_pending,
        routers_not_deployed=sum(1 for p in routers if p.id in never_applied),
        jobs_queued=jobs.queued.get(wan.id, 0),
        jobs_running=jobs.running.get(wan.id, 0),
        failed_deploys=jobs.failed_deploys.get(wan.id, 0),
        conflicts=len(found) + unreachable,
        worst=worst,
    )


@bp.get("/")
@login_required
def index() -> Any:
    jobs = _job_counts()
    rows = [wan_row(wan, jobs) for wan in db.session.scalars(select(Wan).order_by(Wan.name)).all()]
    last_jobs = db.session.scalars(select(Job).where(~ROUTINE_POLLS).order_by(Job.id.desc()).limit(LAST_JOBS)).all()
    wan_names = {row.wan.id: row.wan.name for row in rows}
    live = status_service.wan_counts(utcnow() - timedelta(hours=24))
    totals = {
        "peers": sum(r.peers for r in rows),
        "not_applied": sum(r.not_applied for r in rows),
        "stale": sum(r.stale or 0 for r in rows),
        "routers": sum(r.routers for r in rows),
        "routers_pending": sum(r.routers_pending or 0 for r in rows),
        "queued": sum(r.jobs_queued for r in rows),
        "running": sum(r.jobs_running for r in rows),
        "failed": sum(r.failed_deploys for r in rows),
        "conflicts": sum(r.conflicts for r in rows),
    }
    return render_template(
        "main/index.html",
        rows=rows,
        totals=totals,
        last_jobs=last_jobs,
        wan_names=wan_names,
        stale_limit=STALE_COUNT_MAX_PEERS,
        live=live,
        live_empty=dict.fromkeys((*status_service.LIVE_FILTERS, "failed_jobs"), 0),
    )


@bp.get("/healthz")
def healthz() -> Any:
    """Reachability of the database and Redis, for load balancers and the smoke test."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 — any failure means "not ok", reported by class name
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis_connection().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    resp = jsonify({"status": "ok" if healthy else "degraded", **checks})
    resp.status_code = 200 if healthy else 503
    return resp
