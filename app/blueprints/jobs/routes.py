"""Job pages and a MikroTik peer's Router section.

The job page polls two fragments while the job is queued or running — its status widget and its log —
each re-rendering itself (`hx-target="this"`) and stopping by rendering without `hx-trigger` once the
job has ended. The poll that first sees the end sends `HX-Trigger: job-finished`, on which the job
page loads the readable result and the peer page refreshes its Router section.

The Router section's buttons mirror the API's MikroTik endpoints (same services, same checks) and show
the job they start inline; without htmx they redirect to the job page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from app.blueprints.lookups import peer_or_404
from app.domain.errors import DomainError
from app.extensions import db
from app.htmx import is_htmx, page_or_partial
from app.models import Job, Peer, Wan
from app.models.base import utcnow
from app.models.jobs import CHANGING_KINDS, JOB_STATUSES, JobKind
from app.permissions import editor_required
from app.services import jobs as jobs_service
from app.services import mikrotik, queries
from app.services.inputs import id_arg
from app.services.queries import JobFilters, approval, deployment_history, router_panel
from app.services.tx import commit_with_retry

bp = Blueprint("jobs", __name__)

# Buttons of the Router section → job kinds (deploy has its own route: it needs an approved plan).
ROUTER_ACTIONS = {
    kind.value.replace("_", "-"): kind
    for kind in (JobKind.TEST_CONNECTION, JobKind.PREFLIGHT, JobKind.VERIFY, JobKind.REVERT, JobKind.CLEAR)
}
LIST_LIMIT = 200


def _job_or_404(job_id: int) -> Job:
    return db.session.get(Job, job_id) or abort(404)


def _router_peer_or_404(peer_id: int) -> Peer:
    peer = peer_or_404(peer_id)
    if peer.kind != "mikrotik":
        abort(404)
    return peer


# ---------------------------------------------------------------- template helpers


@bp.app_template_filter("job_kind")
def job_kind(kind: str) -> str:
    try:
        return JobKind(kind).label
    except ValueError:  # a kind from a newer or older version of WireWAN
        return kind.replace("_", " ").capitalize()


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


# ---------------------------------------------------------------- deployment history


@bp.get("/peers/<int:peer_id>/deployments")
@login_required
def deployments(peer_id: int) -> Any:
    peer = _router_peer_or_404(peer_id)
    return render_template("jobs/deployments.html", peer=peer, wan=peer.wan, history=deployment_history(peer))


# ---------------------------------------------------------------- job list and job page


@bp.get("/jobs/")
@login_required
def list_jobs() -> Any:
    wan_id = id_arg(request.args, "wan_id")
    peer_id = id_arg(request.args, "peer_id")
    status = request.args.get("status", "")
    status = status if status in JOB_STATUSES else ""
    rows = queries.list_jobs(JobFilters(wan_id, peer_id, status), LIST_LIMIT)
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
        "approval": approval(job) if job.kind == JobKind.PREFLIGHT else None,
        **_worker_context(job),
    }


@bp.get("/jobs/<int:job_id>")
@login_required
def detail(job_id: int) -> Any:
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
    job = _job_or_404(job_id)
    return _fragment("jobs/_status.html", job, inline=request.args.get("inline") == "1", **_worker_context(job))


def _worker_context(job: Job) -> dict[str, Any]:
    """For a queued job: whether a worker is there to take it (asked of RQ's worker heartbeats)."""
    return {"no_worker": job.status == "queued" and jobs_service.workers_listening() is False}


@bp.get("/jobs/<int:job_id>/log")
@login_required
def log(job_id: int) -> Any:
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
    panel = router_panel(peer)
    body = render_template("peers/_router.html", peer=peer, wan=peer.wan, router=panel, can_edit=current_user.can_edit)
    latest = panel.latest_job
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
        job = commit_with_retry(lambda: mikrotik.request_job(ROUTER_ACTIONS[action], peer_or_404(peer_id)))
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
        job = commit_with_retry(lambda: mikrotik.request_deploy(peer_or_404(peer_id), True, plan_hash))
    except DomainError as exc:
        return _refused(exc, back)
    return _started(job)
