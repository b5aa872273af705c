"""Database rows → the frozen dataclasses the pure domain works on."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import selectinload

from app import crypto
from app.domain.addressing import cached_network
from app.domain.model import (
    DEFAULT_API_PORT,
    DEFAULT_API_USERNAME,
    IPNetwork,
    MikrotikSpec,
    PeerSpec,
    ServiceSpec,
    SubnetSpec,
    WanSpec,
)
from app.extensions import db
from app.models import Peer, Service, Subnet, Wan

# Parsed addresses are immutable: share them between loads (also keeps the per-object caches of
# `ipaddress`, e.g. broadcast_address, warm for the topology builder).
_network = cached_network
_address = lru_cache(maxsize=1 << 16)(ip_address)


def load_wan(wan_id: int) -> Wan | None:
    """A WAN with its peers, subnets and services loaded in three queries, not one per peer.

    The masked copy of each peer's applied config (one config's size per peer, only the peer page
    shows it) is loaded when first used."""
    return db.session.scalar(
        select(Wan)
        .where(Wan.id == wan_id)
        .options(
            selectinload(Wan.peers).selectinload(Peer.subnets),
            selectinload(Wan.peers).selectinload(Peer.services),
            selectinload(Wan.peers).defer(Peer.applied_config_masked),
        )
    )


def wan_spec(wan: Wan, *, secrets_for: Collection[int] = ()) -> WanSpec:
    """The WAN as plain data. Private keys and passwords are decrypted only for `secrets_for`."""
    spec = load_spec(wan.id, secrets_for=secrets_for)
    assert spec is not None, "the WAN row exists: the caller holds it"
    return spec


def _overlapping(wan_id: int, first: Any, last: Any, net: IPNetwork) -> ColumnElement[bool]:
    """The WAN's subnets whose IPv4 prefix [first, last] overlaps `net`, as an indexed range query:
    CIDR blocks overlap only by nesting, so a row's block either starts inside `net` or is one of
    its (at most 32) supernets. IPv6 bounds are not stored (NULL): every IPv6 row is a candidate
    for IPv6. The WAN id is repeated in each branch so that each is an index lookup of its own
    (SQLite's multi-index OR, PostgreSQL's BitmapOr)."""
    if net.version != 4:
        return and_(Subnet.wan_id == wan_id, first.is_(None), last.is_(None))
    start, end = int(net.network_address), int(net.broadcast_address)
    supernets = {start & ~((1 << (32 - length)) - 1) for length in range(net.prefixlen)}
    inside = and_(Subnet.wan_id == wan_id, first.between(start, end))
    if not supernets:
        return inside
    return or_(inside, and_(Subnet.wan_id == wan_id, first.in_(sorted(supernets)), last >= end))


def nat_pool_taken(wan_id: int, exclude_subnet_id: int | None = None) -> list[tuple[int, int]]:
    """The (first, last) bounds of every LAN and NAT block of the WAN inside its NAT pool, but the
    excluded subnet's: what a new NAT block must avoid (`conflicts.check_subnet`'s `pool_taken`)."""
    pool = db.session.scalar(select(Wan.nat_pool_cidr).where(Wan.id == wan_id))
    if pool is None:
        return []
    pool_net = _network(pool)
    other = Subnet.id != (exclude_subnet_id or 0)
    lans = select(Subnet.cidr_first, Subnet.cidr_last).where(
        other, _overlapping(wan_id, Subnet.cidr_first, Subnet.cidr_last, pool_net)
    )
    blocks = select(Subnet.nat_first, Subnet.nat_last).where(
        other, _overlapping(wan_id, Subnet.nat_first, Subnet.nat_last, pool_net)
    )
    # Both bounds are set on every row the range conditions select.
    rows = db.session.execute(lans.union_all(blocks))
    return [(first, last) for first, last in rows if first is not None and last is not None]


@dataclass(frozen=True)
class Neighbourhood:
    """The part of a WAN a subnet check looks at, and how many clashes it leaves out."""

    spec: WanSpec
    more_clashes: int


def subnet_neighbourhood(
    wan_id: int, peer_id: int, cidr: IPNetwork, exclude_subnet_id: int | None = None
) -> Neighbourhood | None:
    """What `conflicts.check_subnet` (and `auto_nat_existing`) need to decide on `cidr` for peer
    `peer_id`, but the NAT pool's occupants (:func:`nat_pool_taken`), read by indexed queries
    instead of the whole WAN: the WAN's ranges, the peer with all its subnets, and of the other
    peers' routed subnets whose prefix or NAT translation overlaps `cidr`, the first (by peer, then
    subnet: the one a refusal names) and how many more there are (a refusal counts them; a common
    home LAN has thousands). The rules give the same answer on this as on the whole WAN."""
    s = db.session
    near = [_overlapping(wan_id, Subnet.cidr_first, Subnet.cidr_last, cidr)]
    if cidr.version == 4:
        near.append(_overlapping(wan_id, Subnet.nat_first, Subnet.nat_last, cidr))
    # The clashes as check_subnet counts them: routed, of another peer, not the subnet being edited.
    clashing = (or_(*near), Subnet.routed.is_(True), Subnet.peer_id != peer_id, Subnet.id != (exclude_subnet_id or 0))
    first_clash = select(Subnet.id, Subnet.peer_id).where(*clashing).order_by(Subnet.peer_id, Subnet.id).limit(1)
    first = s.execute(first_clash).first()
    wanted: ColumnElement[bool] = Subnet.peer_id == peer_id
    hosts = [peer_id]
    more = 0
    if first is not None:
        wanted = or_(wanted, Subnet.id == first.id)
        hosts.append(first.peer_id)
        more = (s.scalar(select(func.count()).select_from(Subnet).where(*clashing)) or 1) - 1
    spec = load_spec(wan_id, subnets_where=wanted, peers_where=Peer.id.in_(hosts))
    return Neighbourhood(spec, more) if spec is not None else None


def load_spec(
    wan_id: int,
    *,
    secrets_for: Collection[int] = (),
    all_secrets: bool = False,
    session: Any = None,
    subnets_where: ColumnElement[bool] | None = None,
    peers_where: ColumnElement[bool] | None = None,
) -> WanSpec | None:
    """The WAN as plain data, read as rows (no ORM objects: a fraction of the cost for large WANs);
    None when it does not exist. Pending changes of the session are flushed first. Secrets are
    decrypted for `secrets_for`, or for every peer with `all_secrets`.

    `subnets_where` / `peers_where` read only part of the WAN (and no services): for rules that
    look at a few prefixes, see :func:`subnet_neighbourhood`."""
    s = session if session is not None else db.session
    partial = peers_where is not None
    wan = s.execute(
        select(
            Wan.id, Wan.name, Wan.tunnel_cidr, Wan.services_cidr, Wan.nat_pool_cidr, Wan.topology,
            Wan.interface_name, Wan.listen_port, Wan.keepalive, Wan.mtu, Wan.mgmt_cidrs, Wan.dns, Wan.psk_seed_enc,
            Wan.tunnel_cidr6, Wan.services_cidr6,
        ).where(Wan.id == wan_id)
    ).first()  # fmt: skip
    if wan is None:
        return None
    subnets: dict[int, list[SubnetSpec]] = {}
    subnet_rows = select(Subnet.id, Subnet.peer_id, Subnet.cidr, Subnet.routed, Subnet.nat_cidr).order_by(Subnet.id)
    if subnets_where is None:
        subnet_rows = subnet_rows.join(Peer, Peer.id == Subnet.peer_id).where(Peer.wan_id == wan_id)
    else:  # the condition names the WAN in each branch, so that each is an index lookup
        subnet_rows = subnet_rows.where(subnets_where)
    for sid, peer_id, cidr, routed, nat_cidr in s.execute(subnet_rows):
        subnets.setdefault(peer_id, []).append(
            SubnetSpec(id=sid, cidr=_network(cidr), routed=routed, nat_cidr=_network(nat_cidr) if nat_cidr else None)
        )
    services: dict[int, list[ServiceSpec]] = {}
    service_rows = (
        select(
            Service.id, Service.peer_id, Service.name, Service.protocol, Service.local_ip, Service.local_port,
            Service.shared_ip, Service.shared_port, Service.local_ip6, Service.shared_ip6,
        ).join(Peer, Peer.id == Service.peer_id).where(Peer.wan_id == wan_id).order_by(Service.id)
    )  # fmt: skip
    # A partial read is for rules about LANs: no services.
    service_result: Any = () if partial else s.execute(service_rows)
    for row in service_result:
        services.setdefault(row.peer_id, []).append(
            ServiceSpec(
                id=row.id,
                name=row.name,
                protocol=row.protocol,
                local_ip=_address(row.local_ip),
                local_port=row.local_port,
                shared_ip=_address(row.shared_ip),
                shared_port=row.shared_port,
                local_ip6=_address(row.local_ip6) if row.local_ip6 else None,  # type: ignore[arg-type]
                shared_ip6=_address(row.shared_ip6) if row.shared_ip6 else None,  # type: ignore[arg-type]
            )
        )
    peers = []
    for p in s.execute(
        select(
            Peer.id, Peer.uuid, Peer.name, Peer.kind, Peer.tunnel_ip, Peer.listen_port, Peer.public_key,
            Peer.private_key_enc, Peer.is_hub, Peer.hub_priority, Peer.endpoint_host, Peer.endpoint_port,
            Peer.has_port_forward, Peer.keepalive, Peer.mt_host, Peer.mt_port, Peer.mt_use_tls, Peer.mt_verify_cert,
            Peer.mt_username, Peer.mt_password_enc, Peer.mt_auto_deploy, Peer.tunnel_ip6, Peer.enabled,
        ).where(Peer.wan_id == wan_id, true() if peers_where is None else peers_where).order_by(Peer.id)
    ):  # fmt: skip
        secrets = all_secrets or p.id in secrets_for
        mikrotik = None
        if p.kind == "mikrotik" and p.mt_host:
            mikrotik = MikrotikSpec(
                host=p.mt_host,
                port=p.mt_port or DEFAULT_API_PORT,
                use_tls=p.mt_use_tls,
                verify_cert=p.mt_verify_cert,
                username=p.mt_username or DEFAULT_API_USERNAME,
                password=crypto.decrypt(p.mt_password_enc) if secrets and p.mt_password_enc else None,
                auto_deploy=p.mt_auto_deploy,
            )
        peers.append(
            PeerSpec(
                id=p.id,
                uuid=p.uuid,
                name=p.name,
                kind=p.kind,
                tunnel_ip=_address(p.tunnel_ip),  # type: ignore[arg-type]  # stored validated as IPv4
                listen_port=p.listen_port,
                public_key=p.public_key,
                private_key=crypto.decrypt(p.private_key_enc) if secrets and p.private_key_enc else None,
                is_hub=p.is_hub,
                hub_priority=p.hub_priority,
                endpoint_host=p.endpoint_host,
                endpoint_port=p.endpoint_port,
                has_port_forward=p.has_port_forward,
                keepalive=p.keepalive,
                subnets=tuple(subnets.get(p.id, ())),
                services=tuple(services.get(p.id, ())),
                mikrotik=mikrotik,
                enabled=p.enabled,
                tunnel_ip6=_address(p.tunnel_ip6) if p.tunnel_ip6 else None,  # type: ignore[arg-type]
            )
        )
    return WanSpec(
        id=wan.id,
        name=wan.name,
        tunnel_cidr=_network(wan.tunnel_cidr),  # type: ignore[arg-type]  # stored validated as IPv4
        services_cidr=_network(wan.services_cidr),  # type: ignore[arg-type]  # stored validated as IPv4
        nat_pool_cidr=_network(wan.nat_pool_cidr),  # type: ignore[arg-type]  # stored validated as IPv4
        topology=wan.topology,
        interface_name=wan.interface_name,
        listen_port=wan.listen_port,
        keepalive=wan.keepalive,
        mtu=wan.mtu,
        mgmt_cidrs=tuple(_network(c) for c in wan.mgmt_cidrs or ()),
        dns=tuple(_address(a) for a in wan.dns or ()),
        peers=tuple(peers),
        # The PSKs are in the configs rendered with secrets (and in their hashes): loaded with any.
        psk_seed=crypto.decrypt(wan.psk_seed_enc) if wan.psk_seed_enc and (secrets_for or all_secrets) else None,
        tunnel_cidr6=_network(wan.tunnel_cidr6) if wan.tunnel_cidr6 else None,  # type: ignore[arg-type]
        services_cidr6=_network(wan.services_cidr6) if wan.services_cidr6 else None,  # type: ignore[arg-type]
    )
