"""Read-side queries: what the web pages and the JSON API show, as plain data. Nothing here writes.

A page and its API twin call the same function here, so they cannot drift apart (a WAN's peer count,
which jobs a filter selects).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from sqlalchemy import func, select

from app import crypto
from app.domain.routeros.plan import Op
from app.extensions import db
from app.models import Deployment, Job, Peer, Wan
from app.models.base import MAX_ID
from app.models.jobs import CHANGING_KINDS, JobKind
from app.services import configs

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


def list_jobs(filters: JobFilters, limit: int) -> list[Job]:
    """The newest `limit` jobs that match every filter given."""
    ids = (filters.wan_id, filters.peer_id)
    if any(value is not None and abs(value) > MAX_ID for value in ids):
        return []  # names no row, and the driver cannot bind it (a 500 on PostgreSQL)
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if filters.wan_id is not None:
        query = query.where(Job.wan_id == filters.wan_id)
    if filters.peer_id is not None:
        query = query.where(Job.peer_id == filters.peer_id)
    if filters.status:
        query = query.where(Job.status == filters.status)
    return list(db.session.scalars(query))


# ---------------------------------------------------------------- the Router section of a MikroTik peer


@dataclass(frozen=True)
class Approval:
    """Whether a preflight's plan can still be deployed from the page, and if not, why."""

    ok: bool
    reason: str = ""


def approval(preflight: Job | None) -> Approval:
    """A succeeded preflight without blocking conflicts, still the latest one, and not used up by a
    deploy, revert or clear started after it. The deploy itself re-checks all of this."""
    if preflight is None or preflight.kind != JobKind.PREFLIGHT:
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
            Job.kind.in_((JobKind.PREFLIGHT, *CHANGING_KINDS)),
            Job.status.in_(("queued", "running", "succeeded")),
        )
        .order_by(Job.id.desc())
        .limit(1)
    )
    if newer is not None:
        return Approval(False, f"Job #{newer} ran on this router after this preflight; run Preflight again.")
    return Approval(True)


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


def router_panel(peer: Peer, stale: bool | None = None) -> RouterPanel:
    """The Router section's data; `stale` when the caller already knows it (saves rendering)."""
    latest = db.session.scalar(select(Job).where(Job.peer_id == peer.id).order_by(Job.id.desc()).limit(1))
    preflight = db.session.scalar(
        select(Job).where(Job.peer_id == peer.id, Job.kind == JobKind.PREFLIGHT).order_by(Job.id.desc()).limit(1)
    )
    # Revert re-applies the deployment before the latest one that has a desired state (not a clear).
    restorable = db.session.scalar(
        select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id, Deployment.desired_enc.is_not(None))
    )
    return RouterPanel(
        stale=configs.peer_stale(peer) if stale is None else stale,
        latest_job=latest,
        preflight=preflight if approval(preflight).ok else None,
        configured=peer.router_configured,
        history=deployment_history(peer, HISTORY_ON_PEER_PAGE),
        history_total=db.session.scalar(select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id)) or 0,
        revertable=(restorable or 0) >= 2,
    )
