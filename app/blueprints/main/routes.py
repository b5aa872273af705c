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
from app.services.queries import QUIET_POLLS
from app.services.specs import load_wan

bp = Blueprint("main", __name__)

# Staleness needs every config of the WAN rendered (every private key decrypted): cheap for a few
# dozen peers, a noticeable fraction of a second per thousand. Above this size the dashboard leaves
# it to the WAN page and says so, so the home page stays fast however large the install grows.
STALE_COUNT_MAX_PEERS = 300
LAST_JOBS = 10
PENDING = ("queued", "running")
FAILED = ("failed", "abandoned")


@dataclass(frozen=True)
class WanRow:
    wan: Wan
    peers: int
    stale: int | None  # None: not counted here (WAN above STALE_COUNT_MAX_PEERS)
    pending_deploys: int
    failed_deploys: int
    conflicts: int
    worst: str  # "critical" or "warning"


def _per_wan(query: Any) -> dict[int, int]:
    return {wan_id: n for wan_id, n in db.session.execute(query).all() if wan_id is not None}


def _deploy_counts() -> tuple[dict[int, int], dict[int, int]]:
    """Per WAN: deploys queued or running, and routers whose latest deploy failed or was abandoned."""
    pending = _per_wan(
        select(Job.wan_id, func.count(Job.id))
        .where(Job.kind == JobKind.DEPLOY, Job.status.in_(PENDING))
        .group_by(Job.wan_id)
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
    return pending, failed


def wan_row(wan: Wan, pending: dict[int, int], failed: dict[int, int]) -> WanRow:
    loaded = load_wan(wan.id)
    assert loaded is not None
    stale: int | None = None
    unreachable = 0
    if len(loaded.peers) <= STALE_COUNT_MAX_PEERS:
        rendered = wan_configs(loaded)
        stale = len(rendered.stale_ids(loaded.peers))
        unreachable = len(rendered.unreachable)
        found = rendered.conflicts
    else:
        found = cached_conflicts(loaded)
    worst = "critical" if any(c.severity == "critical" for c in found) else "warning"
    return WanRow(
        wan=loaded,
        peers=len(loaded.peers),
        stale=stale,
        pending_deploys=pending.get(wan.id, 0),
        failed_deploys=failed.get(wan.id, 0),
        conflicts=len(found) + unreachable,
        worst=worst,
    )


@bp.get("/")
@login_required
def index() -> Any:
    pending, failed = _deploy_counts()
    rows = [wan_row(wan, pending, failed) for wan in db.session.scalars(select(Wan).order_by(Wan.name)).all()]
    last_jobs = db.session.scalars(select(Job).where(~QUIET_POLLS).order_by(Job.id.desc()).limit(LAST_JOBS)).all()
    wan_names = {row.wan.id: row.wan.name for row in rows}
    live = status_service.wan_counts(utcnow() - timedelta(hours=24))
    totals = {
        "peers": sum(r.peers for r in rows),
        "stale": sum(r.stale or 0 for r in rows),
        "pending": sum(r.pending_deploys for r in rows),
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
