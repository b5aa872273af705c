"""Asking for MikroTik jobs: checks that can be answered at once, before anything is queued."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from sqlalchemy import func, select

from app import crypto
from app.domain.errors import ConflictError, ValidationError
from app.domain.model import DEFAULT_API_PORT, DEFAULT_API_USERNAME
from app.domain.routeros.desired import DEFAULT_MGMT_CIDR, DesiredState
from app.domain.routeros.rules import RouterSlot
from app.extensions import db
from app.models import Deployment, Job, Peer, Wan
from app.models.jobs import CHANGING_KINDS, JobKind
from app.services import jobs

ACTIVE_STATUSES = ("queued", "running")


class RouterBusy(ConflictError):
    """A job for this router is queued or running (HTTP 409, with that job's id)."""

    default_code = "router_busy"

    def __init__(self, job: Job) -> None:
        super().__init__(busy_reason(job), None)
        self.job_id = job.id

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "job_id": self.job_id}


def busy_reason(job: Job) -> str:
    what = (job.kind or "job").replace("_", " ")
    return f"Job #{job.id} ({what}) is {job.status} on this router; its actions come back when it has finished."


def busy_job(peer: Peer) -> Job | None:
    """The queued or running job someone asked for on any WAN of this peer's router, if there is one.

    Scheduled rounds (the status poll, the drift verify) do not count: they only read, take seconds,
    and a job asked for meanwhile waits for the router lock instead of being refused."""
    ids = [p.id for p in same_router_peers(peer)]
    return db.session.scalar(
        select(Job)
        .where(Job.peer_id.in_(ids), Job.status.in_(ACTIVE_STATUSES), Job.trigger != "schedule")
        .order_by(Job.id)
        .limit(1)
    )


@dataclass(frozen=True)
class Approval:
    """Whether a preflight's plan can be deployed, and if not, why (the page and the API ask this)."""

    ok: bool
    reason: str = ""
    in_sync: bool = False  # the plan is empty: nothing to deploy


IN_SYNC = "In sync — nothing to deploy."


def deploy_approval(preflight: Job | None) -> Approval:
    """A succeeded preflight without blocking conflicts, still the latest one, and not used up by a
    deploy, revert or clear started after it. The deploy job re-checks the router itself."""
    if preflight is None or preflight.kind != JobKind.PREFLIGHT:
        return Approval(False, "Run Preflight first, then deploy the plan it shows.")
    if preflight.status != "succeeded":
        return Approval(False, "This preflight did not finish; run Preflight again.")
    result = preflight.result or {}
    if result.get("blocking"):
        return Approval(
            False,
            "The router has things in the way: "
            + " · ".join(result["blocking"])
            + " Fix them and run Preflight again.",
        )
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
    if not result.get("plan"):
        return Approval(True, IN_SYNC, in_sync=True)
    return Approval(True)


def request_job(kind: JobKind | str, peer: Peer, params: dict[str, Any] | None = None) -> Job:
    if kind not in set(JobKind):
        raise ValidationError(f"Unknown job kind '{kind}'.", "kind")
    if peer.kind != "mikrotik":
        raise ValidationError(f"'{peer.name}' is not a MikroTik peer: there is no router to talk to.", "kind")
    if not peer.router_configured:
        raise ValidationError(
            f"'{peer.name}' needs a management host and an API password before WireWAN can reach it; "
            "set them on the peer's edit page.",
            "mikrotik_host",
        )
    busy = busy_job(peer)
    if busy is not None:
        raise RouterBusy(busy)
    return jobs.create(kind, peer, params)


def request_deploy(peer: Peer, approve: bool, plan_hash: str | None) -> Job:
    """A manual deploy applies exactly a plan the operator saw in a preflight."""
    if not approve or not plan_hash:
        raise ValidationError(
            "A deploy applies an approved plan: run Preflight, check the plan, then deploy with "
            "approve=true and its plan_hash.",
            "plan_hash",
        )
    # The newest preflight decides: an older plan is not approvable once a newer preflight ran
    # (even one that failed: the router may have changed under it).
    preflight = jobs.latest(JobKind.PREFLIGHT, peer.id)
    if preflight is None or preflight.status != "succeeded" or (preflight.result or {}).get("plan_hash") != plan_hash:
        raise ConflictError(
            "That plan is not the latest preflight of this router (the router or the WAN changed since). "
            "Run Preflight again and approve the new plan.",
            "plan_hash",
        )
    busy = busy_job(peer)
    if busy is not None:
        raise RouterBusy(busy)
    approval = deploy_approval(preflight)
    if not approval.ok:
        raise ConflictError(approval.reason, "plan_hash")
    return request_job(JobKind.DEPLOY, peer, {"plan_hash": plan_hash, "preflight_job_id": preflight.id})


def router_key(peer: Peer) -> str:
    """One router, whichever WANs it is a peer of: its management host and API port."""
    return f"{(peer.mt_host or '').strip().lower()}:{peer.mt_port or DEFAULT_API_PORT}"


def same_router_peers(peer: Peer) -> list[Peer]:
    """Every MikroTik peer row (this one included) that manages the same router as `peer`."""
    if not peer.mt_host:
        return [peer]
    rows = db.session.scalars(
        select(Peer).where(
            Peer.kind == "mikrotik",
            func.lower(func.trim(Peer.mt_host)) == peer.mt_host.strip().lower(),
        )
    ).all()
    key = router_key(peer)
    return [p for p in rows if router_key(p) == key] or [peer]


def _slot(peer: Peer, wan: Wan) -> RouterSlot:
    admit = [ip_network(wan.tunnel_cidr), *(ip_network(c) for c in (wan.mgmt_cidrs or []))]
    if not wan.mgmt_cidrs:
        admit.append(DEFAULT_MGMT_CIDR)
    return RouterSlot(
        wan_id=wan.id,
        wan_name=wan.name,
        interface_name=wan.interface_name,
        listen_port=peer.listen_port,
        username=peer.mt_username or DEFAULT_API_USERNAME,
        admit=tuple(admit),
    )


def router_slot(peer: Peer) -> RouterSlot:
    """This peer's use of its router (without looking up the other WANs on it)."""
    return _slot(peer, peer.wan)


def router_slots(peer: Peer, *, deployed_only: bool = False) -> tuple[RouterSlot, list[RouterSlot]]:
    """This peer's use of its router, and every other WAN's use of the same router.

    :param deployed_only: only WANs whose config is on the router (applied, not cleared): those
        whose access must stay admitted. Clashes are checked against every WAN.
    """
    others = [
        p
        for p in same_router_peers(peer)
        if p.id != peer.id and p.wan_id != peer.wan_id and (not deployed_only or p.applied_config_hash)
    ]
    return router_slot(peer), [_slot(p, p.wan) for p in others]


REVERT_LOOKBACK = 20


def revert_target(peer: Peer) -> Deployment | None:
    """The newest earlier deployment whose overlay differs from the latest one's: what Revert goes
    back to (deployments that changed nothing, or re-applied the same state, are skipped)."""
    rows = db.session.scalars(
        select(Deployment)
        .where(Deployment.peer_id == peer.id, Deployment.desired_enc.is_not(None))
        .order_by(Deployment.id.desc())
        .limit(REVERT_LOOKBACK)
    ).all()

    def overlay(d: Deployment) -> tuple[object, ...] | None:
        try:
            return DesiredState.from_json(crypto.decrypt(d.desired_enc)).with_wan(peer.wan_id).overlay()  # type: ignore[arg-type]
        except crypto.SecretUnreadable:
            return None

    if len(rows) < 2:
        return None
    latest = overlay(rows[0])
    for row in rows[1:]:
        mine = overlay(row)
        if mine is not None and mine != latest:
            return row
    return None
