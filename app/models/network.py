"""WANs, peers, the LANs they host and the services they publish."""

from __future__ import annotations

import uuid
from datetime import datetime
from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
    true,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow


class Wan(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    __tablename__ = "wan"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    tunnel_cidr: Mapped[str] = mapped_column(String(43), default="10.0.0.0/24")
    services_cidr: Mapped[str] = mapped_column(String(43), default="10.0.5.0/24")
    nat_pool_cidr: Mapped[str] = mapped_column(String(43), default="172.16.0.0/12")
    # The optional IPv6 overlay: a ULA such as fd10:77::/64, and an IPv6 services range.
    tunnel_cidr6: Mapped[str | None] = mapped_column(String(43), default=None)
    services_cidr6: Mapped[str | None] = mapped_column(String(43), default=None)
    topology: Mapped[str] = mapped_column(String(16), default="mesh")
    interface_name: Mapped[str] = mapped_column(String(15), default="wg-wan-overlay")
    listen_port: Mapped[int] = mapped_column(default=51820)
    keepalive: Mapped[int] = mapped_column(default=25)
    mtu: Mapped[int] = mapped_column(default=1420)
    mgmt_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Preshared keys (issue 13): every pair sharing a tunnel gets its own PSK, derived from this
    # WAN's secret seed (app.domain.keys.pair_psk). The seed is a Fernet token (app.crypto); NULL when off.
    preshared_keys: Mapped[bool] = mapped_column(default=False, server_default=false())
    psk_seed_enc: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Bumped by every flush that changes the WAN, a peer, a subnet or a service of it
    # (`_bump_revisions` below). Cached derived data is valid only at the revision it was
    # computed for: the peers' current config hashes (`Peer.current_hash`) and the WAN's findings
    # (`WanFindings`: unreachable prefixes and conflicts, for the WAN page), both stored at once
    # and valid while `derived_revision` equals `revision`. One marker for the whole WAN: a
    # recompute rewrites only the peers whose hash changed.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    derived_revision: Mapped[int | None] = mapped_column(default=None)

    peers: Mapped[list[Peer]] = relationship(back_populates="wan", cascade="all, delete-orphan", order_by="Peer.id")


class WanFindings(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """A WAN's cached findings (unreachable prefixes and conflicts), valid while the WAN's
    `derived_revision` equals its `revision`. A row of its own, not a column of `wan`: every change
    rewrites the wan row (its revision), and SQLite rewrites a row whole, megabytes of findings at
    10,000 peers included."""

    __tablename__ = "wan_findings"

    wan_id: Mapped[int] = mapped_column(ForeignKey("wan.id", ondelete="CASCADE"), primary_key=True)
    findings: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The WAN page's part (the first findings and the counts) in a column of its own: extracting a
    # key from a JSON document still parses all of it, on PostgreSQL too (40 ms at 10,000 peers).
    shown: Mapped[dict[str, Any]] = mapped_column(JSON)


class Peer(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    __tablename__ = "peer"
    __table_args__ = (
        # The allocation guard: two simultaneous creations can never share a tunnel IP or a name.
        UniqueConstraint("wan_id", "tunnel_ip"),
        UniqueConstraint("wan_id", "name"),
        Index("ix_peer_wan_id_tunnel_ip_num", "wan_id", "tunnel_ip_num"),
        # The same for IPv6 (NULL, on an IPv4-only WAN, never collides).
        UniqueConstraint("wan_id", "tunnel_ip6"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    wan_id: Mapped[int] = mapped_column(ForeignKey("wan.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(48))
    kind: Mapped[str] = mapped_column(String(16))
    is_hub: Mapped[bool] = mapped_column(default=False)
    hub_priority: Mapped[int | None] = mapped_column(default=None)
    tunnel_ip: Mapped[str] = mapped_column(String(15))
    # The tunnel IP as an integer, kept by the `set` listener below: peer lists sort by it in SQL.
    tunnel_ip_num: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tunnel_ip6: Mapped[str | None] = mapped_column(String(39), default=None)
    listen_port: Mapped[int] = mapped_column(default=51820)
    endpoint_host: Mapped[str | None] = mapped_column(String(253), default=None)
    endpoint_port: Mapped[int | None] = mapped_column(default=None)
    has_port_forward: Mapped[bool] = mapped_column(default=False)
    keepalive: Mapped[int | None] = mapped_column(default=None)
    public_key: Mapped[str] = mapped_column(String(44))
    # Fernet token (app.crypto); NULL when the peer brought its own key pair.
    private_key_enc: Mapped[str | None] = mapped_column(Text, default=None)
    # A disabled peer keeps its tunnel IP and LANs in IP planning but leaves every other config
    # and router. `expires_at` (naive UTC): the expiry job disables the peer then.
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)

    mt_host: Mapped[str | None] = mapped_column(String(253), default=None)
    mt_port: Mapped[int | None] = mapped_column(default=None)
    mt_use_tls: Mapped[bool] = mapped_column(default=False)
    mt_verify_cert: Mapped[bool] = mapped_column(default=False)
    mt_username: Mapped[str | None] = mapped_column(String(32), default=None)
    mt_password_enc: Mapped[str | None] = mapped_column(Text, default=None)
    mt_auto_deploy: Mapped[bool] = mapped_column(default=False)

    # Staleness (DESIGN.md §5): the hash of the config last downloaded or deployed, and that
    # config with keys masked so the peer page can show what changed since.
    applied_config_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    applied_config_masked: Mapped[str | None] = mapped_column(Text, default=None)
    applied_at: Mapped[datetime | None] = mapped_column(default=None)
    # The hash of the peer's current config (wg-quick text, or the router's desired state), valid
    # while the WAN's derived_revision equals its revision (app/services/configs.py).
    current_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    wan: Mapped[Wan] = relationship(back_populates="peers")
    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="peer", cascade="all, delete-orphan", order_by="Subnet.id"
    )
    services: Mapped[list[Service]] = relationship(
        back_populates="peer", cascade="all, delete-orphan", order_by="Service.id"
    )

    @property
    def cgnat(self) -> bool:
        return not self.endpoint_host

    @property
    def is_mikrotik(self) -> bool:
        return self.kind == "mikrotik"

    @property
    def router_configured(self) -> bool:
        """WireWAN can reach the router: it has a management host and an API password."""
        return bool(self.mt_host and self.mt_password_enc)

    @property
    def endpoint(self) -> str | None:
        if not self.endpoint_host:
            return None
        host = f"[{self.endpoint_host}]" if ":" in self.endpoint_host else self.endpoint_host
        return f"{host}:{self.endpoint_port or self.listen_port}"

    @property
    def brings_own_key(self) -> bool:
        return self.private_key_enc is None


class Subnet(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """A LAN the peer HOSTS (not one it merely reaches)."""

    __tablename__ = "subnet"
    __table_args__ = (
        # Concurrent Auto-NATs must not hand out the same block; NULLs (no NAT) do not collide.
        UniqueConstraint("wan_id", "nat_cidr"),
        Index("ix_subnet_peer_id_cidr", "peer_id", "cidr"),
        # Overlap checks read only the prefixes that can overlap (a range query), not the WAN.
        Index("ix_subnet_wan_id_cidr_first", "wan_id", "cidr_first"),
        Index("ix_subnet_wan_id_nat_first", "wan_id", "nat_first"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wan_id: Mapped[int] = mapped_column(ForeignKey("wan.id", ondelete="CASCADE"), index=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"))
    cidr: Mapped[str] = mapped_column(String(43))
    routed: Mapped[bool] = mapped_column(default=True)
    nat_cidr: Mapped[str | None] = mapped_column(String(43), default=None)
    # First and last address of an IPv4 `cidr` / `nat_cidr` as integers, kept by the `set`
    # listeners below; NULL for IPv6 prefixes (wider than a BigInteger) and when there is no NAT.
    cidr_first: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cidr_last: Mapped[int | None] = mapped_column(BigInteger, default=None)
    nat_first: Mapped[int | None] = mapped_column(BigInteger, default=None)
    nat_last: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    peer: Mapped[Peer] = relationship(back_populates="subnets")


class Service(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """A local ip:port published on the WAN's services range."""

    __tablename__ = "service"
    __table_args__ = (
        UniqueConstraint("wan_id", "shared_ip", "shared_port", "protocol"),
        UniqueConstraint("wan_id", "shared_ip6", "shared_port", "protocol"),
        UniqueConstraint("peer_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wan_id: Mapped[int] = mapped_column(ForeignKey("wan.id", ondelete="CASCADE"), index=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(3))
    local_ip: Mapped[str] = mapped_column(String(45))
    local_port: Mapped[int] = mapped_column()
    shared_ip: Mapped[str] = mapped_column(String(15))
    shared_port: Mapped[int] = mapped_column()
    # Published over IPv6 too: shared_ip6 (in the WAN's IPv6 services range) → local_ip6.
    local_ip6: Mapped[str | None] = mapped_column(String(39), default=None)
    shared_ip6: Mapped[str | None] = mapped_column(String(39), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    peer: Mapped[Peer] = relationship(back_populates="services")


@event.listens_for(Peer.tunnel_ip, "set")
def _tunnel_ip_num(peer: Peer, value: str | None, old: Any, initiator: Any) -> None:
    try:
        peer.tunnel_ip_num = int(ip_address(value)) if value else None
    except ValueError:
        peer.tunnel_ip_num = None


def ipv4_bounds(cidr: str | None) -> tuple[int, int] | tuple[None, None]:
    """First and last address of an IPv4 prefix as integers; (None, None) for IPv6 or nothing."""
    try:
        net = ip_network(cidr) if cidr else None
    except ValueError:
        net = None
    if net is None or net.version != 4:
        return None, None
    return int(net.network_address), int(net.broadcast_address)


@event.listens_for(Subnet.cidr, "set")
def _cidr_bounds(subnet: Subnet, value: str | None, old: Any, initiator: Any) -> None:
    subnet.cidr_first, subnet.cidr_last = ipv4_bounds(value)


@event.listens_for(Subnet.nat_cidr, "set")
def _nat_bounds(subnet: Subnet, value: str | None, old: Any, initiator: Any) -> None:
    subnet.nat_first, subnet.nat_last = ipv4_bounds(value)


# Columns whose changes never alter a config: staleness bookkeeping and the caches themselves.
_NOT_CONFIG = frozenset(
    {
        "applied_config_hash",
        "applied_config_masked",
        "applied_at",
        "current_hash",
        "created_at",
        "updated_at",
        "revision",
        "derived_revision",
        "tunnel_ip_num",
        "cidr_first",
        "cidr_last",
        "nat_first",
        "nat_last",
    }
)


def _changes_config(state: Any) -> bool:
    return any(attr.key not in _NOT_CONFIG and attr.history.has_changes() for attr in state.attrs)


def _wan_id_of(obj: Any) -> int | None:
    if isinstance(obj, Wan):
        return obj.id
    wan_id: int | None = obj.wan_id
    if wan_id is None:
        parent = obj.wan if isinstance(obj, Peer) else obj.peer
        if parent is not None:
            wan_id = parent.id if isinstance(parent, Wan) else parent.wan_id
    return wan_id


@event.listens_for(Session, "before_flush")
def _bump_revisions(session: Session, flush_context: Any, instances: Any) -> None:
    """Every flush that changes what a WAN's configs are made of bumps that WAN's revision, in the
    same transaction: whoever reads the revision and then the rows can tell whether anything it
    derived from them (config hashes, unreachable prefixes) is still current."""
    wan_ids: set[int] = set()
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, (Wan, Peer, Subnet, Service)) and not (isinstance(obj, Wan) and obj in session.new):
            wan_id = _wan_id_of(obj)
            if wan_id is not None:
                wan_ids.add(wan_id)
    for obj in session.dirty:
        if isinstance(obj, (Wan, Peer, Subnet, Service)) and _changes_config(inspect(obj)):
            wan_id = _wan_id_of(obj)
            if wan_id is not None:
                wan_ids.add(wan_id)
    if not wan_ids:
        return
    table = Wan.__table__
    session.connection().execute(
        update(table).where(table.c.id.in_(sorted(wan_ids))).values(revision=table.c.revision + 1)
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Wan) and obj.id in wan_ids:
            session.expire(obj, ["revision"])
