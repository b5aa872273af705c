"""Asking for MikroTik jobs: checks that can be answered at once, before anything is queued."""

from __future__ import annotations

from typing import Any

from app.domain.errors import ConflictError, ValidationError
from app.models import Job, Peer
from app.models.jobs import JobKind
from app.services import jobs


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
    if (preflight.result or {}).get("blocking"):
        raise ConflictError("The preflight found things in the way on the router: " +
                            " · ".join((preflight.result or {})["blocking"]), "plan_hash")  # fmt: skip
    return request_job(JobKind.DEPLOY, peer, {"plan_hash": plan_hash, "preflight_job_id": preflight.id})
