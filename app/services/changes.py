"""What happens after a network change commits: queued jobs go to RQ, routers with auto-deploy
whose desired state changed get one (coalesced) deploy."""

from __future__ import annotations

from app.extensions import db
from app.models import Peer
from app.services import jobs

TOUCHED = "wirewan_touched_wans"


def touched(wan_id: int) -> None:
    """Note that `wan_id` changed in the current transaction (read after it commits)."""
    db.session.info.setdefault(TOUCHED, set()).add(wan_id)


def forget() -> None:
    db.session.info.pop(TOUCHED, None)
    jobs.discard_staged()


def after_commit() -> None:
    jobs.enqueue_staged()
    wan_ids = db.session.info.pop(TOUCHED, set())
    created = [job for wan_id in sorted(wan_ids) for job in schedule_auto_deploys(wan_id)]
    if created:
        db.session.commit()
        jobs.enqueue_staged()


def _deployable(peer: Peer) -> bool:
    return bool(peer.mt_host and peer.mt_password_enc and peer.applied_config_hash)


def schedule_auto_deploys(wan_id: int) -> list:  # type: ignore[type-arg]
    """A deploy for every auto-deploy router of the WAN whose desired state no longer matches the one
    it runs. Routers never deployed nor bootstrapped are left alone: there is nothing to update yet."""
    from app.services import configs
    from app.services.specs import load_wan

    wan = load_wan(wan_id)
    if wan is None:
        return []
    routers = [p for p in wan.peers if p.kind == "mikrotik" and p.mt_auto_deploy and _deployable(p)]
    if not routers:
        return []
    current = configs.wan_configs(wan).configs
    created = []
    for peer in routers:
        if configs.is_stale(peer, current[peer.id].sha256):
            job = jobs.schedule_auto_deploy(peer)
            if job is not None:
                created.append(job)
    return created
