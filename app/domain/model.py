"""Plain, immutable descriptions of a WAN that every pure domain module works on.

The services layer builds these from database rows; nothing here knows about Flask or SQLAlchemy,
so topology, rendering and RouterOS planning can be tested (and benchmarked) without either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

PeerKind = Literal["mikrotik", "server", "client"]
Topology = Literal["mesh", "hub_spoke", "hybrid"]
Protocol = Literal["tcp", "udp"]

PEER_KINDS: tuple[PeerKind, ...] = ("mikrotik", "server", "client")
TOPOLOGIES: tuple[Topology, ...] = ("mesh", "hub_spoke", "hybrid")
PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp")

# Every resource WireWAN creates on a router carries a comment with this prefix (DESIGN.md §6).
MANAGED_COMMENT_PREFIX = "WAN-Overlay-Manager:"


@dataclass(frozen=True)
class SubnetSpec:
    """A LAN a peer HOSTS (never one it merely reaches)."""

    id: int
    cidr: IPNetwork
    routed: bool = True
    # When set, other peers see the LAN under this prefix (same size); the owner netmaps both ways.
    nat_cidr: IPNetwork | None = None

    @property
    def advertised(self) -> IPNetwork:
        """The prefix other peers route to reach this LAN."""
        return self.nat_cidr if self.nat_cidr is not None else self.cidr


@dataclass(frozen=True)
class ServiceSpec:
    """A local ip:port published on the WAN's services range as shared_ip:shared_port."""

    id: int
    name: str
    protocol: Protocol
    local_ip: IPAddress
    local_port: int
    shared_ip: IPAddress
    shared_port: int
    # Published over IPv6 too when the WAN has an IPv6 services range and the service has an
    # IPv6 target: shared_ip6:shared_port is DNAT'ed to [local_ip6]:local_port (no NAT64).
    local_ip6: IPv6Address | None = None
    shared_ip6: IPv6Address | None = None


# How WireWAN reaches a router's API unless told otherwise (forms, services, jobs share these).
DEFAULT_API_PORT = 8728
DEFAULT_API_USERNAME = "wirewan"


@dataclass(frozen=True)
class MikrotikSpec:
    """How WireWAN reaches a MikroTik peer's API. The password is plaintext only in memory."""

    host: str
    port: int = DEFAULT_API_PORT
    use_tls: bool = False
    verify_cert: bool = False
    username: str = DEFAULT_API_USERNAME
    password: str | None = None
    auto_deploy: bool = False


@dataclass(frozen=True)
class PeerSpec:
    id: int
    # Stable identifier used in router comments (`WAN-Overlay-Manager:peer-<uuid>`).
    uuid: str
    name: str
    kind: PeerKind
    tunnel_ip: IPv4Address
    listen_port: int
    public_key: str
    # None when the peer brought its own key: its private key never leaves the device.
    private_key: str | None = None
    is_hub: bool = False
    # Lower wins when several hubs could carry relayed prefixes; ties broken by tunnel IP.
    hub_priority: int | None = None
    endpoint_host: str | None = None
    endpoint_port: int | None = None
    has_port_forward: bool = False
    # Per-peer override of the WAN's PersistentKeepalive; None means the WAN default.
    keepalive: int | None = None
    subnets: tuple[SubnetSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    mikrotik: MikrotikSpec | None = None
    # A disabled peer keeps its addresses (IP planning, conflicts) but is in nobody's config.
    enabled: bool = True
    # The peer's address in the WAN's IPv6 tunnel range; None when the WAN is IPv4 only.
    tunnel_ip6: IPv6Address | None = None

    @property
    def cgnat(self) -> bool:
        """A peer without an endpoint can only be reached once it has called out."""
        return not self.endpoint_host

    @property
    def endpoint(self) -> str | None:
        """`host:port`, with IPv6 literals bracketed; None for CGNAT peers."""
        if not self.endpoint_host:
            return None
        host = self.endpoint_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.endpoint_port or self.listen_port}"


@dataclass(frozen=True)
class WanSpec:
    id: int
    name: str
    tunnel_cidr: IPv4Network
    services_cidr: IPv4Network
    nat_pool_cidr: IPv4Network
    topology: Topology = "mesh"
    interface_name: str = "wg-wan-overlay"
    listen_port: int = 51820
    keepalive: int = 25
    mtu: int = 1420
    mgmt_cidrs: tuple[IPNetwork, ...] = ()
    dns: tuple[IPAddress, ...] = ()
    peers: tuple[PeerSpec, ...] = field(default_factory=tuple)
    # The secret every pair's preshared key is derived from (keys.pair_psk); None: no PSKs (the
    # option is off, or secrets were not loaded).
    psk_seed: str | None = None

    def psk(self, a: PeerSpec, b: PeerSpec) -> str | None:
        """The preshared key of the tunnel between `a` and `b`, or None without PSKs."""
        if self.psk_seed is None:
            return None
        from app.domain.keys import pair_psk

        return pair_psk(self.psk_seed, a.public_key, b.public_key)

    # The optional IPv6 overlay (a ULA such as fd10:77::/64) and IPv6 services range.
    tunnel_cidr6: IPv6Network | None = None
    services_cidr6: IPv6Network | None = None

    def peer(self, peer_id: int) -> PeerSpec:
        try:
            return self._peers_by_id[peer_id]
        except KeyError:
            raise KeyError(peer_id) from None

    def routing_inputs(self) -> WanSpec:
        """The same WAN with only what its topology is made of: no secrets, keys, router settings,
        nor the settings that reach a config but not its routing (name, interface name, MTU, DNS,
        management ranges). A change to those leaves the topology as it was, so a built one is
        reused (services.configs.wan_topology); tests/domain/test_topology_properties.py checks that
        a topology built from this equals one built from the whole WAN."""
        return replace(
            self,
            name="",
            interface_name="",
            mtu=0,
            dns=(),
            mgmt_cidrs=(),
            psk_seed=None,
            peers=tuple(replace(p, uuid="", public_key="", private_key=None, mikrotik=None) for p in self.peers),
        )

    @cached_property
    def _peers_by_id(self) -> dict[int, PeerSpec]:
        # The first peer with an id wins, as the linear search did. Kept in the instance __dict__
        # (cached_property works on frozen dataclasses); not a field, so eq/hash ignore it.
        out: dict[int, PeerSpec] = {}
        for p in self.peers:
            out.setdefault(p.id, p)
        return out
