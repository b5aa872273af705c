"""What a network change sets off once it commits: every auto-deploy router of a touched WAN whose
desired state changed gets one (coalesced) deploy. Run by app.services.tx after each commit."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Job, Peer, Wan
from app.services import jobs

TOUCHED = "wirewan_touched_wans"


def touched(wan_id: int) -> None:
    """Note that `wan_id` changed in the current transaction (read after it commits)."""
    db.session.info.setdefault(TOUCHED, set()).add(wan_id)


def schedule_touched() -> list[Job]:
    """Stage the auto-deploys the just-committed changes call for (the caller commits them)."""
    wan_ids = db.session.info.pop(TOUCHED, set())
    return [job for wan_id in sorted(wan_ids) for job in schedule_auto_deploys(wan_id)]


def schedule_auto_deploys(wan_id: int) -> list[Job]:
    """A deploy for every auto-deploy router of the WAN whose desired state no longer matches the one
    it runs. Routers never deployed nor bootstrapped are left alone: there is nothing to update yet."""
    from app.services import configs

    routers = db.session.scalars(
        select(Peer)
        .where(
            Peer.wan_id == wan_id,
            Peer.kind == "mikrotik",
            Peer.mt_auto_deploy.is_(True),
            Peer.mt_host.is_not(None),
            Peer.mt_password_enc.is_not(None),
            Peer.applied_config_hash.is_not(None),
        )
        .order_by(Peer.id)
    ).all()
    # Empty strings count as unset, as NULLs do.
    routers = [p for p in routers if p.router_configured and p.applied_config_hash]
    if not routers:
        return []
    wan = db.session.get(Wan, wan_id)
    if wan is None:
        return []
    current = configs.hashes_for(wan, routers)
    created = []
    for peer in routers:
        if configs.is_stale(peer, current[peer.id]):
            job = jobs.schedule_auto_deploy(peer)
            if job is not None:
                created.append(job)
    return created
