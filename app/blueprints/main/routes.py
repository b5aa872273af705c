from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_login import login_required
from sqlalchemy import select, text

from app.domain.conflicts import wan_conflicts
from app.extensions import db, redis_connection
from app.models import Wan
from app.services.specs import load_wan, wan_spec

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
def index() -> Any:
    rows = []
    for wan in db.session.scalars(select(Wan).order_by(Wan.name)).all():
        found = wan_conflicts(wan_spec(load_wan(wan.id)))  # type: ignore[arg-type]
        worst = "critical" if any(c.severity == "critical" for c in found) else "warning"
        rows.append({"wan": wan, "peers": len(wan.peers), "conflicts": len(found), "worst": worst})
    return render_template("main/index.html", rows=rows)


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
