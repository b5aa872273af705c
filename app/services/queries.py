"""Read-side queries: what the web pages and the JSON API show, as plain data. Nothing here writes.

A page and its API twin call the same function here, so they cannot drift apart (a WAN's peer count,
which jobs a filter selects).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, select

from app import crypto
from app.domain.routeros.desired import DesiredState
from app.domain.routeros.plan import state_lines
from app.extensions import db
from app.models import Deployment, Job, Peer, Wan
from app.models.base import MAX_ID
from app.models.jobs import JobKind
from app.services import configs, mikrotik

HISTORY_ON_PEER_PAGE = 10


# ---------------------------------------------------------------- WAN list


@dataclass(frozen=True)
class WanListRow:
    wan: Wan
    peer_count: int


def wans_with_peer_counts() -> list[WanListRow]:
    """Every WAN by name, with its number of peers (two queries, whatever the number of WANs)."""
    counts = dict(db.session.execute(select(Peer.wan_id, func.count(Peer.id)).group_by(Peer.wan_id)).all())
    return [WanListRow(wan, counts.get(wan.id, 0)) for wan in db.session.scalars(select(Wan).order_by(Wan.name))]


# ---------------------------------------------------------------- job list


@dataclass(frozen=True)
class JobFilters:
    wan_id: int | None = None
    peer_id: int | None = None
    status: str | None = None  # one of JOB_STATUSES; the caller decides what to do with others
    # The pages leave out status polls that succeeded (one per router per minute: the status shows
    # them, they are not news); the API lists every job.
    quiet_polls: bool = False


# Succeeded status polls (one per router per minute) are what the status shows, not news.
QUIET_POLLS = (Job.kind == JobKind.STATUS.value) & (Job.status == "succeeded")


def list_jobs(filters: JobFilters, limit: int) -> list[Job]:
    """The newest `limit` jobs that match every filter given."""
    ids = (filters.wan_id, filters.peer_id)
    if any(value is not None and abs(value) > MAX_ID for value in ids):
        return []  # names no row, and the driver cannot bind it (a 500 on PostgreSQL)
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if not filters.quiet_polls:
        query = query.where(~QUIET_POLLS)
    if filters.wan_id is not None:
        query = query.where(Job.wan_id == filters.wan_id)
    if filters.peer_id is not None:
        query = query.where(Job.peer_id == filters.peer_id)
    if filters.status:
        query = query.where(Job.status == filters.status)
    return list(db.session.scalars(query))


# ---------------------------------------------------------------- the Router section of a MikroTik peer


# "Can this plan be deployed" is one rule, asked by the page and the API alike.
Approval = mikrotik.Approval
approval = mikrotik.deploy_approval


def desired_lines(deployment: Deployment) -> list[str]:
    """A deployment's desired state as readable RouterOS lines, secrets shown as `***`."""
    if not deployment.desired_enc:
        return []  # a clear: nothing of WireWAN's is wanted on the router
    try:
        desired = DesiredState.from_json(crypto.decrypt(deployment.desired_enc))
    except crypto.SecretUnreadable:
        return ["# (this deployment's stored state cannot be decrypted: ENCRYPTION_KEY changed)"]
    return state_lines(desired)


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


@dataclass(frozen=True)
class RouterPanel:
    """Everything the Router section of a MikroTik peer's page shows."""

    stale: bool
    latest_job: Job | None
    preflight: Job | None  # the latest preflight, only while its plan can still be deployed
    configured: bool
    history: list[HistoryRow]
    history_total: int
    revertable: bool
    revert_to: Deployment | None = None  # the last deployment that differs from the latest one
    in_sync: bool = False  # the latest preflight found nothing to deploy
    busy: Job | None = None  # a queued or running job of this router (any WAN): actions wait for it
    busy_reason: str = ""


def router_panel(peer: Peer, stale: bool | None = None) -> RouterPanel:
    """The Router section's data; `stale` when the caller already knows it (saves rendering)."""
    latest = db.session.scalar(select(Job).where(Job.peer_id == peer.id).order_by(Job.id.desc()).limit(1))
    preflight = db.session.scalar(
        select(Job).where(Job.peer_id == peer.id, Job.kind == JobKind.PREFLIGHT).order_by(Job.id.desc()).limit(1)
    )
    plan = approval(preflight)
    revert_to = mikrotik.revert_target(peer)
    busy = mikrotik.busy_job(peer)
    return RouterPanel(
        stale=configs.peer_stale(peer) if stale is None else stale,
        latest_job=latest,
        preflight=preflight if plan.ok and not plan.in_sync else None,
        configured=peer.router_configured,
        history=deployment_history(peer, HISTORY_ON_PEER_PAGE),
        history_total=db.session.scalar(select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id)) or 0,
        revertable=revert_to is not None,
        revert_to=revert_to,
        in_sync=plan.in_sync,
        busy=busy,
        busy_reason=mikrotik.busy_reason(busy) if busy is not None else "",
    )
