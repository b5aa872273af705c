"""JSON shapes of docs/api.md. Never a private key or router password."""

from __future__ import annotations

from typing import Any

from app.extensions import db
from app.models import ApiToken, Job, Peer, PeerStatus, Service, Subnet, User, Wan
from app.services.peers import peer_values
from app.services.status import status_json


def wan_json(wan: Wan, peer_count: int | None = None) -> dict[str, Any]:
    return {
        "id": wan.id,
        "name": wan.name,
        "tunnel_cidr": wan.tunnel_cidr,
        "services_cidr": wan.services_cidr,
        "nat_pool_cidr": wan.nat_pool_cidr,
        "tunnel_cidr6": wan.tunnel_cidr6,
        "services_cidr6": wan.services_cidr6,
        "topology": wan.topology,
        "interface_name": wan.interface_name,
        "listen_port": wan.listen_port,
        "keepalive": wan.keepalive,
        "mtu": wan.mtu,
        "mgmt_cidrs": list(wan.mgmt_cidrs or []),
        "dns": list(wan.dns or []),
        "preshared_keys": wan.preshared_keys,
        "peer_count": peer_count if peer_count is not None else len(wan.peers),
        "created_at": wan.created_at.isoformat() + "Z",
    }


def subnet_json(subnet: Subnet) -> dict[str, Any]:
    return {"id": subnet.id, "cidr": subnet.cidr, "routed": subnet.routed, "nat_cidr": subnet.nat_cidr}


def service_json(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "peer_id": service.peer_id,
        "name": service.name,
        "protocol": service.protocol,
        "local_ip": service.local_ip,
        "local_port": service.local_port,
        "shared_ip": service.shared_ip,
        "shared_port": service.shared_port,
        "local_ip6": service.local_ip6,
        "shared_ip6": service.shared_ip6,
    }


def peer_json(peer: Peer, stale: bool | None = None, status: PeerStatus | None | bool = False) -> dict[str, Any]:
    """`status`: the peer's PeerStatus row when the caller loaded them in bulk (None: none yet);
    left out, it is looked up."""
    if status is False:
        status = db.session.get(PeerStatus, peer.id)
    values = peer_values(peer)
    # The API nests router access: mikrotik_host → mikrotik.host.
    router = {name.removeprefix("mikrotik_"): values.pop(name) for name in list(values) if name.startswith("mikrotik_")}
    data: dict[str, Any] = {
        "id": peer.id,
        "wan_id": peer.wan_id,
        **values,
        "public_key": peer.public_key,
        "brings_own_key": peer.brings_own_key,
        "cgnat": peer.cgnat,
        "subnets": [subnet_json(s) for s in peer.subnets],
        "services": [service_json(s) for s in peer.services],
        "status": status_json(peer.id, status if isinstance(status, PeerStatus) else None),
        "mikrotik": None,
    }
    if stale is not None:
        data["stale"] = stale
    if peer.kind == "mikrotik":
        data["mikrotik"] = {**router, "password_set": peer.mt_password_enc is not None}
    return data


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "wan_id": job.wan_id,
        "peer_id": job.peer_id,
        "peer_name": job.peer_name,
        "actor": job.actor,
        "trigger": job.trigger,
        "status": job.status,
        "progress": job.progress,
        "step": job.step,
        "log": list(job.log or []),
        "result": job.result,
        "warnings": list(job.warnings or []),
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "active": user.active,
        "last_login_at": _iso(user.last_login_at),
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "user_id": token.user_id,
        "hint": token.hint,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "expires_at": _iso(token.expires_at),
        "revoked": token.revoked_at is not None,
    }
