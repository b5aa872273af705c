"""Database rows → the frozen dataclasses the pure domain works on."""

from __future__ import annotations

from collections.abc import Collection
from ipaddress import ip_address, ip_network

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import crypto
from app.domain.model import MikrotikSpec, PeerSpec, ServiceSpec, SubnetSpec, WanSpec
from app.extensions import db
from app.models import Peer, Wan


def load_wan(wan_id: int) -> Wan | None:
    """A WAN with its peers, subnets and services loaded in three queries, not one per peer."""
    return db.session.scalar(
        select(Wan)
        .where(Wan.id == wan_id)
        .options(
            selectinload(Wan.peers).selectinload(Peer.subnets),
            selectinload(Wan.peers).selectinload(Peer.services),
        )
    )


def peer_spec(peer: Peer, *, secrets: bool = False) -> PeerSpec:
    mikrotik = None
    if peer.kind == "mikrotik" and peer.mt_host:
        mikrotik = MikrotikSpec(
            host=peer.mt_host,
            port=peer.mt_port or 8728,
            use_tls=peer.mt_use_tls,
            verify_cert=peer.mt_verify_cert,
            username=peer.mt_username or "wirewan",
            password=crypto.decrypt(peer.mt_password_enc) if secrets and peer.mt_password_enc else None,
            auto_deploy=peer.mt_auto_deploy,
        )
    return PeerSpec(
        id=peer.id,
        uuid=peer.uuid,
        name=peer.name,
        kind=peer.kind,  # type: ignore[arg-type]
        tunnel_ip=ip_address(peer.tunnel_ip),  # type: ignore[arg-type]
        listen_port=peer.listen_port,
        public_key=peer.public_key,
        private_key=crypto.decrypt(peer.private_key_enc) if secrets and peer.private_key_enc else None,
        is_hub=peer.is_hub,
        hub_priority=peer.hub_priority,
        endpoint_host=peer.endpoint_host,
        endpoint_port=peer.endpoint_port,
        has_port_forward=peer.has_port_forward,
        keepalive=peer.keepalive,
        subnets=tuple(
            SubnetSpec(
                id=s.id,
                cidr=ip_network(s.cidr),
                routed=s.routed,
                nat_cidr=ip_network(s.nat_cidr) if s.nat_cidr else None,
            )
            for s in peer.subnets
        ),
        services=tuple(
            ServiceSpec(
                id=s.id,
                name=s.name,
                protocol=s.protocol,  # type: ignore[arg-type]
                local_ip=ip_address(s.local_ip),
                local_port=s.local_port,
                shared_ip=ip_address(s.shared_ip),
                shared_port=s.shared_port,
            )
            for s in peer.services
        ),
        mikrotik=mikrotik,
    )


def wan_spec(wan: Wan, *, secrets_for: Collection[int] = (), exclude_peer_ids: Collection[int] = ()) -> WanSpec:
    """The WAN as plain data. Private keys and passwords are decrypted only for `secrets_for`."""
    return WanSpec(
        id=wan.id,
        name=wan.name,
        tunnel_cidr=ip_network(wan.tunnel_cidr),  # type: ignore[arg-type]
        services_cidr=ip_network(wan.services_cidr),  # type: ignore[arg-type]
        nat_pool_cidr=ip_network(wan.nat_pool_cidr),  # type: ignore[arg-type]
        topology=wan.topology,  # type: ignore[arg-type]
        interface_name=wan.interface_name,
        listen_port=wan.listen_port,
        keepalive=wan.keepalive,
        mtu=wan.mtu,
        mgmt_cidrs=tuple(ip_network(c) for c in wan.mgmt_cidrs or ()),
        dns=tuple(ip_address(a) for a in wan.dns or ()),
        peers=tuple(peer_spec(p, secrets=p.id in secrets_for) for p in wan.peers if p.id not in exclude_peer_ids),
    )
