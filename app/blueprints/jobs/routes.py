"""Job pages and a MikroTik peer's Router section.

The job page polls two fragments while the job is queued or running — its status widget and its log —
each re-rendering itself (`hx-target="this"`) and stopping by rendering without `hx-trigger` once the
job has ended. The poll that first sees the end sends `HX-Trigger: job-finished`, on which the job
page loads the readable result and the peer page refreshes its Router section.

The Router section's buttons mirror the API's MikroTik endpoints (same services, same checks) and show
the job they start inline; without htmx they redirect to the job page.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.exceptions import NotFound

from app import crypto
from app.domain.errors import DomainError
from app.domain.routeros.plan import Op
from app.extensions import db
from app.htmx import is_htmx, page_or_partial
from app.models import Deployment, Job, Peer, Wan
from app.models.base import utcnow
from app.models.jobs import JOB_STATUSES
from app.permissions import editor_required
from app.services import configs, mikrotik
from app.services.inputs import id_arg
from app.services.tx import commit_with_retry
from jobs.runtime import reap_abandoned

bp = Blueprint("jobs", __name__)

KIND_LABELS = {
    "test_connection": "Test connection",
    "preflight": "Preflight",
    "deploy": "Deploy",
    "verify": "Verify",
    "revert": "Revert",
    "clear": "Clear",
    "probe": "Handshake probe",
}
# Buttons of the Router section → job kinds (deploy has its own route: it needs an approved plan).
ROUTER_ACTIONS = {
    "test-connection": "test_connection",
    "preflight": "preflight",
    "verify": "verify",
    "revert": "revert",
    "clear": "clear",
}
# Jobs that change the router: after one of these a preflight's plan is used up.
CHANGING_KINDS = ("deploy", "revert", "clear")
LIST_LIMIT = 200
HISTORY_ON_PEER_PAGE = 10


def _peer_or_404(peer_id: int) -> Peer:
    return db.session.get(Peer, peer_id) or abort(404)


def _job_or_404(job_id: int) -> Job:
    return db.session.get(Job, job_id) or abort(404)


def _router_peer_or_404(peer_id: int) -> Peer:
    peer = _peer_or_404(peer_id)
    if peer.kind != "mikrotik":
        abort(404)
    return peer


# ---------------------------------------------------------------- template helpers


@bp.app_template_filter("job_kind")
def job_kind(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


@bp.app_template_filter("utc")
def utc(value: datetime | None, seconds: bool = True) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


@bp.app_template_filter("job_duration")
def job_duration(job: Job) -> str:
    if job.started_at is None:
        return "—"
    seconds = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


@dataclass(frozen=True)
class Approval:
    """Whether a preflight's plan can still be deployed from the page, and if not, why."""

    ok: bool
    reason: str = ""


def approval(preflight: Job | None) -> Approval:
    """A succeeded preflight without blocking conflicts, still the latest one, and not used up by a
    deploy, revert or clear started after it. The deploy itself re-checks all of this."""
    if preflight is None or preflight.kind != "preflight":
        return Approval(False, "Run Preflight first, then deploy the plan it shows.")
    if preflight.status != "succeeded":
        return Approval(False, "This preflight did not finish; run Preflight again.")
    result = preflight.result or {}
    if result.get("blocking"):
        return Approval(False, "The router has things in the way (listed above); fix them and run Preflight again.")
    newer = db.session.scalar(
        select(Job.id)
        .where(
            Job.peer_id == preflight.peer_id,
            Job.id > preflight.id,
            Job.kind.in_(("preflight", *CHANGING_KINDS)),
            Job.status.in_(("queued", "running", "succeeded")),
        )
        .order_by(Job.id.desc())
        .limit(1)
    )
    if newer is not None:
        return Approval(False, f"Job #{newer} ran on this router after this preflight; run Preflight again.")
    return Approval(True)


@bp.app_template_global()
def router_view(peer: Peer, stale: bool | None = None) -> dict[str, Any]:
    """Everything the Router section of a MikroTik peer's page shows."""
    reap_abandoned()
    if stale is None:
        stale = configs.peer_stale(peer)
    latest = db.session.scalar(select(Job).where(Job.peer_id == peer.id).order_by(Job.id.desc()).limit(1))
    preflight = db.session.scalar(
        select(Job).where(Job.peer_id == peer.id, Job.kind == "preflight").order_by(Job.id.desc()).limit(1)
    )
    plan = approval(preflight)
    # Revert re-applies the deployment before the latest one that has a desired state (not a clear).
    restorable = db.session.scalar(
        select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id, Deployment.desired_enc.is_not(None))
    )
    return {
        "stale": stale,
        "latest_job": latest,
        "preflight": preflight if plan.ok else None,
        "configured": bool(peer.mt_host and peer.mt_password_enc),
        "history": deployment_history(peer, HISTORY_ON_PEER_PAGE),
        "history_total": db.session.scalar(select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id)),
        "revertable": (restorable or 0) >= 2,
    }


# ---------------------------------------------------------------- deployment history


def desired_lines(deployment: Deployment) -> list[str]:
    """A deployment's desired state as readable RouterOS lines, secrets shown as `***`."""
    if not deployment.desired_enc:
        return []  # a clear: nothing of WireWAN's is wanted on the router
    try:
        data = json.loads(crypto.decrypt(deployment.desired_enc))
    except crypto.SecretUnreadable:
        return ["# (this deployment's stored state cannot be decrypted: ENCRYPTION_KEY changed)"]
    lines = []
    for res in data.get("resources", []):
        props = {**res.get("match", {}), **res.get("props", {})}
        # Write-only values (passwords) are never shown; SECRET_PROPS are masked by Op.cli().
        for name in res.get("write_only", []):
            props.pop(name, None)
        if not res.get("match"):
            props["comment"] = res["key"]
        lines.append(Op("add", res["menu"], None, props, res["key"]).cli())
    for prefix in data.get("demotion", []):
        lines.append(f"# demote unmanaged static routes to {prefix} with distance < 10 to distance 11")
    return lines


@dataclass(frozen=True)
class HistoryRow:
    deployment: Deployment
    diff: str
    changed: int  # lines added or removed against the deployment before


def deployment_history(peer: Peer, limit: int | None = None) -> list[HistoryRow]:
    """Newest first, each with the diff of its desired state against the deployment before it."""
    query = db.session.query(Deployment).filter(Deployment.peer_id == peer.id).order_by(Deployment.id.desc())
    # One more than shown: the oldest shown row is diffed against it.
    rows = query.limit(limit + 1).all() if limit is not None else query.all()
    lines = [desired_lines(d) for d in rows]
    out = []
    for i, dep in enumerate(rows[:limit] if limit is not None else rows):
        before = lines[i + 1] if i + 1 < len(rows) else []
        label = f"deployment #{rows[i + 1].id}" if i + 1 < len(rows) else "(nothing deployed)"
        diff = list(difflib.unified_diff(before, lines[i], label, f"deployment #{dep.id}", lineterm="", n=0))
        changed = sum(1 for d in diff[2:] if d[:1] in "+-")
        out.append(HistoryRow(dep, "\n".join(diff), changed))
    return out


@bp.get("/peers/<int:peer_id>/deployments")
@login_required
def deployments(peer_id: int) -> Any:
    peer = _router_peer_or_404(peer_id)
    return render_template("jobs/deployments.html", peer=peer, wan=peer.wan, history=deployment_history(peer))


# ---------------------------------------------------------------- job list and job page


@bp.get("/jobs/")
@login_required
def list_jobs() -> Any:
    reap_abandoned()
    wan_id = id_arg(request.args, "wan_id")
    peer_id = id_arg(request.args, "peer_id")
    status = request.args.get("status", "")
    status = status if status in JOB_STATUSES else ""
    query = select(Job).order_by(Job.id.desc()).limit(LIST_LIMIT)
    if wan_id is not None:
        query = query.where(Job.wan_id == wan_id)
    if peer_id is not None:
        query = query.where(Job.peer_id == peer_id)
    if status:
        query = query.where(Job.status == status)
    rows = db.session.scalars(query).all()
    wans = db.session.scalars(select(Wan).order_by(Wan.name)).all()
    peers = db.session.scalars(select(Peer).order_by(Peer.name)).all()
    return page_or_partial(
        "jobs/list.html",
        "jobs/_table.html",
        jobs=rows,
        wans=wans,
        peers=peers,
        filters={"wan_id": wan_id, "peer_id": peer_id, "status": status},
        statuses=JOB_STATUSES,
        limit=LIST_LIMIT,
    )


def _job_context(job: Job) -> dict[str, Any]:
    peer = db.session.get(Peer, job.peer_id) if job.peer_id else None
    return {
        "job": job,
        "peer": peer,
        "wan": db.session.get(Wan, job.wan_id) if job.wan_id else None,
        "can_edit": current_user.can_edit,
        "approval": approval(job) if job.kind == "preflight" else None,
    }


@bp.get("/jobs/<int:job_id>")
@login_required
def detail(job_id: int) -> Any:
    reap_abandoned()
    return render_template("jobs/detail.html", **_job_context(_job_or_404(job_id)))


def _fragment(template: str, job: Job, **context: Any) -> Any:
    body = render_template(template, job=job, **context)
    headers = {}
    if job.terminal and is_htmx():
        # The page listens for this to load the result (job page) or refresh the Router section.
        headers["HX-Trigger"] = "job-finished"
    return body, 200, headers


@bp.get("/jobs/<int:job_id>/status")
@login_required
def status(job_id: int) -> Any:
    reap_abandoned()
    return _fragment("jobs/_status.html", _job_or_404(job_id), inline=request.args.get("inline") == "1")


@bp.get("/jobs/<int:job_id>/log")
@login_required
def log(job_id: int) -> Any:
    reap_abandoned()
    return render_template("jobs/_log.html", job=_job_or_404(job_id))


@bp.get("/jobs/<int:job_id>/result")
@login_required
def result(job_id: int) -> Any:
    return render_template("jobs/_result.html", **_job_context(_job_or_404(job_id)))


# ---------------------------------------------------------------- the Router section and its buttons


@bp.get("/peers/<int:peer_id>/router")
@login_required
def router_section(peer_id: int) -> Any:
    peer = _router_peer_or_404(peer_id)
    body = render_template("peers/_router.html", peer=peer, wan=peer.wan, can_edit=current_user.can_edit)
    latest = db.session.scalar(select(Job).where(Job.peer_id == peer.id).order_by(Job.id.desc()).limit(1))
    if is_htmx() and latest is not None and latest.status == "succeeded" and latest.kind in CHANGING_KINDS:
        # This refresh follows a job's end. A deploy, revert or clear also changes the page around
        # the section (the stale banner and badges), so reload the whole page instead.
        return body, 200, {"HX-Refresh": "true"}
    return body


def _started(job: Job) -> Any:
    if is_htmx():
        return render_template("jobs/_status.html", job=job, inline=True)
    return redirect(url_for("jobs.detail", job_id=job.id), code=303)


def _refused(exc: DomainError, back: str) -> Any:
    """A request the services refused before queueing anything: said inline, or as a flash. An
    unreachable queue is no fault of the request: 503 (inline, or the error page)."""
    if exc.status == 503:
        if is_htmx():
            return render_template("jobs/_refused.html", message=exc.message), 503
        abort(503, exc.message)
    if is_htmx():
        return render_template("jobs/_refused.html", message=exc.message), 422
    flash(exc.message, "error")
    return redirect(back, code=303)


@bp.post("/peers/<int:peer_id>/router/<any(" + ", ".join(f"'{a}'" for a in ROUTER_ACTIONS) + "):action>")
@editor_required
def router_action(peer_id: int, action: str) -> Any:
    _router_peer_or_404(peer_id)
    try:
        job = commit_with_retry(lambda: mikrotik.request_job(ROUTER_ACTIONS[action], _peer_or_404(peer_id)))
    except DomainError as exc:
        return _refused(exc, url_for("peers.detail", peer_id=peer_id))
    return _started(job)


@bp.post("/peers/<int:peer_id>/router/deploy")
@editor_required
def router_deploy(peer_id: int) -> Any:
    """Deploy the plan of a preflight the operator looked at (pressing the button is the approval)."""
    _router_peer_or_404(peer_id)
    plan_hash = request.form.get("plan_hash", "").strip() or None
    try:
        preflight_id = id_arg(request.form, "preflight_job_id")
    except (DomainError, NotFound):
        preflight_id = None  # only picks the page to come back to
    back = (
        url_for("jobs.detail", job_id=preflight_id)
        if preflight_id and db.session.get(Job, preflight_id) is not None
        else url_for("peers.detail", peer_id=peer_id)
    )
    try:
        job = commit_with_retry(lambda: mikrotik.request_deploy(_peer_or_404(peer_id), True, plan_hash))
    except DomainError as exc:
        return _refused(exc, back)
    return _started(job)
