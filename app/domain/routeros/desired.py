"""The one desired state of a MikroTik peer (DESIGN.md §1, §6).

`build_desired()` lists every resource WireWAN wants on the router. The same object is rendered as the
bootstrap script (script.py), diffed against the live router into an API plan (plan.py) and compared
for drift (verify.py), so the script and the API can never disagree.

Property values are strings exactly as the RouterOS API reads them back (booleans `true`/`false`,
durations `25s`, lists comma-joined in address order), so a diff is a plain string comparison once
the live rows went through `plan.parse_actual()`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import NamedTuple

from app.domain.address_sets import V6_BASE, Interval, all_cidrs, bounds, interval, merged, prefix_text, without
from app.domain.addressing import cached_network
from app.domain.model import MANAGED_COMMENT_PREFIX, IPAddress, IPNetwork, PeerSpec, WanSpec
from app.domain.routeros.escape import check_name
from app.domain.topology import PeerView, TopologyResult, build_topology

WG = "/interface/wireguard"
WG_PEERS = "/interface/wireguard/peers"
ADDRESS = "/ip/address"
ADDRESS6 = "/ipv6/address"
ROUTE = "/ip/route"
ROUTE6 = "/ipv6/route"
FILTER = "/ip/firewall/filter"
FILTER6 = "/ipv6/firewall/filter"
NAT = "/ip/firewall/nat"
USER = "/user"
SERVICE = "/ip/service"

# Menus whose rows WireWAN tags with MANAGED_COMMENT_PREFIX; a tagged row there that is not desired is
# stale. `/user` and `/ip/service` rows are never tagged (they are ensured by name).
TAGGED_MENUS: tuple[str, ...] = (WG, WG_PEERS, ADDRESS, ADDRESS6, ROUTE, ROUTE6, FILTER, FILTER6, NAT)
# Menus only a dual-stack WAN uses (read and planned only when wanted, or when they hold our tags).
IPV6_MENUS: tuple[str, ...] = (ADDRESS6, ROUTE6, FILTER6)
ROUTE_MENUS: tuple[str, ...] = (ROUTE, ROUTE6)

# Bootstrap step (seed README, steps 0–10) of each menu; plan.py orders operations by it.
STEP_OF_MENU: Mapping[str, int] = {
    USER: 0,
    SERVICE: 0,
    WG: 1,
    WG_PEERS: 2,
    ADDRESS: 4,
    ADDRESS6: 4,
    ROUTE: 5,
    ROUTE6: 5,
    FILTER: 7,
    FILTER6: 7,
    NAT: 9,
}

# Properties whose absence from a desired resource means "the RouterOS default", not "don't care":
# plan.py writes the default back when the router holds something else (e.g. a remote peer that lost
# its endpoint, or a managed rule somebody disabled).
RESET_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    WG: {"disabled": "false"},
    WG_PEERS: {
        "endpoint-address": "",
        "endpoint-port": "0",
        "persistent-keepalive": "0s",
        "disabled": "false",
    },
    ADDRESS: {"disabled": "false"},
    ADDRESS6: {"disabled": "false"},
    ROUTE: {"disabled": "false"},
    ROUTE6: {"disabled": "false"},
    FILTER: {"disabled": "false"},
    FILTER6: {"disabled": "false"},
    NAT: {"disabled": "false"},
}

# Properties that are comma-separated lists of prefixes; kept sorted by address so order never diffs.
LIST_PROPS: Mapping[str, frozenset[str]] = {
    WG_PEERS: frozenset({"allowed-address"}),
    USER: frozenset({"address"}),
    SERVICE: frozenset({"address"}),
}

SECRET_PROPS = frozenset({"private-key", "password", "preshared-key"})

DEMOTED_DISTANCE = 11
MANAGED_DISTANCE = 10
DEFAULT_MGMT_CIDR = ip_network("192.168.0.0/16")

Placement = str  # "before-first-drop:<chain>" | "before-first-masquerade:<chain>" | "top:<chain>"


_WAN_TAG = re.compile(re.escape(MANAGED_COMMENT_PREFIX) + r"w(\d+):")


def managed_key(kind: str, ident: object, wan_id: int) -> str:
    """The comment WireWAN puts on a resource: `WAN-Overlay-Manager:w<wan id>:<kind>-<id>`.

    The WAN id lets one router carry several WANs: each WAN reads, plans and removes only its rows.
    """
    return f"{MANAGED_COMMENT_PREFIX}w{wan_id}:{kind}-{ident}"


def is_managed_comment(comment: str | None) -> bool:
    """Tagged by WireWAN, for any WAN (such rows are never demoted or taken over)."""
    return bool(comment) and str(comment).startswith(MANAGED_COMMENT_PREFIX)


def wan_of_tag(comment: str | None) -> int | None:
    """The WAN id a tag names; None for untagged rows and for tags of the old, WAN-less format."""
    m = _WAN_TAG.match(str(comment or ""))
    return int(m.group(1)) if m else None


def legacy_key(key: str) -> str:
    """The same tag in the format before tags named their WAN (`WAN-Overlay-Manager:<kind>-<id>`)."""
    return _WAN_TAG.sub(MANAGED_COMMENT_PREFIX, key, count=1)


def retag(key: str, wan_id: int) -> str:
    """`key` as the current-format tag of `wan_id`."""
    return MANAGED_COMMENT_PREFIX + f"w{wan_id}:" + legacy_key(key)[len(MANAGED_COMMENT_PREFIX) :]


def is_legacy_tag(comment: str | None) -> bool:
    return is_managed_comment(comment) and wan_of_tag(comment) is None


@dataclass(frozen=True)
class Resource:
    """One row WireWAN wants on the router.

    Tagged resources (`match` empty) are found by `comment == key`. Ensured resources (`/user`, the
    `/ip/service` rows) are found by their natural key `match` (e.g. `name=wirewan`) and never tagged.
    """

    menu: str
    key: str
    props: Mapping[str, str]
    placement: Placement | None = None
    # Natural key for untagged "ensure" resources; empty for tagged ones.
    match: Mapping[str, str] = field(default_factory=dict)
    # Written when the row is added (and by the script), never read back or compared (passwords).
    write_only: frozenset[str] = frozenset()
    # Read-only properties verify checks but nothing can write (the interface's public key).
    expect: Mapping[str, str] = field(default_factory=dict)
    # False: only adjust the row if it exists (an API user without a stored password is not created).
    create: bool = True
    # Human description for plans and drift reports.
    title: str = ""
    # The name the user gave what this row is for (a peer entry: the remote peer's name).
    name: str = ""

    @property
    def tagged(self) -> bool:
        return not self.match

    @property
    def step(self) -> int:
        return STEP_OF_MENU.get(self.menu, 99)

    def add_props(self) -> dict[str, str]:
        """Properties of an `add`: desired ones, the comment tag and write-only ones."""
        out = dict(self.match)
        out.update(self.props)
        if self.tagged:
            out["comment"] = self.key
        return out

    def compared_props(self) -> dict[str, str]:
        """Properties a diff compares: desired ones plus managed defaults for those left out."""
        out = {k: v for k, v in self.props.items() if k not in self.write_only}
        for k, v in RESET_DEFAULTS.get(self.menu, {}).items():
            out.setdefault(k, v)
        return out


@dataclass(frozen=True)
class DemotionIntent:
    """Unmanaged static routes to these destinations with distance < 10 are set to distance 11."""

    dst_prefixes: tuple[IPNetwork, ...]
    below: int = MANAGED_DISTANCE
    to: int = DEMOTED_DISTANCE

    def menu_of(self, prefix: IPNetwork) -> str:
        return ROUTE6 if prefix.version == 6 else ROUTE


@dataclass(frozen=True)
class DesiredState:
    peer_id: int
    interface_name: str
    resources: tuple[Resource, ...]
    demotion: DemotionIntent
    # Things the operator should know (brought-own key, prefixes not reachable, ...).
    notes: tuple[str, ...] = ()
    # The WAN whose tags these are; a plan touches only rows tagged for it (or old-format rows it claims).
    wan_id: int = 0
    # Old-format tags this WAN owns although it no longer wants them (a clear lists the full state's).
    claimed_legacy: frozenset[str] = frozenset()

    def owns_tag(self, comment: str | None) -> bool:
        """A row tagged for this WAN (new format)."""
        return wan_of_tag(comment) == self.wan_id and is_managed_comment(comment)

    def legacy_claims(self) -> frozenset[str]:
        """Old-format tags that are this WAN's: those of its resources, and any it claims."""
        return frozenset(legacy_key(r.key) for r in self.resources if r.tagged) | self.claimed_legacy

    def to_json(self) -> str:
        """The whole state as JSON (secrets included: store it encrypted), as a deployment keeps it."""
        return json.dumps(
            {
                "peer_id": self.peer_id,
                "wan_id": self.wan_id,
                "interface_name": self.interface_name,
                "notes": list(self.notes),
                "demotion": [str(p) for p in self.demotion.dst_prefixes],
                "resources": [
                    {
                        "menu": r.menu,
                        "key": r.key,
                        "props": dict(r.props),
                        "placement": r.placement,
                        "match": dict(r.match),
                        "write_only": sorted(r.write_only),
                        "expect": dict(r.expect),
                        "create": r.create,
                        "title": r.title,
                        "name": r.name,
                    }
                    for r in self.resources
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DesiredState:
        """The state `to_json` wrote. States stored before tags named their WAN (no `wan_id`) are
        read with today's tags when `wan_id` is given, so a revert re-tags instead of duplicating."""
        data = json.loads(text)
        wan_id = int(data.get("wan_id") or 0)
        return cls(
            peer_id=data["peer_id"],
            interface_name=data["interface_name"],
            notes=tuple(data["notes"]),
            demotion=DemotionIntent(tuple(ip_network(p) for p in data["demotion"])),
            resources=tuple(
                Resource(
                    menu=r["menu"],
                    key=r["key"],
                    props=r["props"],
                    placement=r["placement"],
                    match=r["match"],
                    write_only=frozenset(r["write_only"]),
                    expect=r["expect"],
                    create=r["create"],
                    title=r["title"],
                    name=r.get("name", ""),
                )
                for r in data["resources"]
            ),
            wan_id=wan_id,
        )

    def with_wan(self, wan_id: int) -> DesiredState:
        """This state tagged for `wan_id` (old-format tags rewritten); unchanged when it already is."""
        if self.wan_id == wan_id:
            return self
        res = tuple(
            replace(r, key=retag(r.key, wan_id)) if r.tagged and is_managed_comment(r.key) else r
            for r in self.resources
        )
        return replace(self, resources=res, wan_id=wan_id)

    def overlay(self) -> tuple[object, ...]:
        """What this state puts on the router of its own: tagged rows and demotions, not the shared
        API access (that follows every WAN on the router). Equal overlays: nothing to revert."""
        return (
            tuple((r.menu, r.key, tuple(sorted(r.props.items())), r.placement) for r in self.resources if r.tagged),
            tuple(str(p) for p in self.demotion.dst_prefixes),
        )

    def with_access_of(self, current: DesiredState) -> DesiredState:
        """This state's own rows with `current`'s API access rows (a revert restores the overlay, never
        an old admission list that other WANs on the router have outgrown)."""
        own = tuple(r for r in self.resources if r.tagged)
        return replace(self, resources=tuple(r for r in current.resources if not r.tagged) + own)

    def in_menu(self, menu: str) -> tuple[Resource, ...]:
        return tuple(r for r in self.resources if r.menu == menu)

    def by_key(self, menu: str, key: str) -> Resource | None:
        for r in self.resources:
            if r.menu == menu and r.key == key:
                return r
        return None


# ---------------------------------------------------------------- value formatting


def fmt_duration(seconds: int) -> str:
    """RouterOS duration as read back: 25 → `25s`, 125 → `2m5s`, 0 → `0s`."""
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def _net_sort_key(n: IPNetwork) -> tuple[int, int, int]:
    return (n.version, int(n.network_address), n.prefixlen)


def fmt_prefixes(nets: Sequence[IPNetwork]) -> str:
    """Comma-joined, de-duplicated, sorted by address (the canonical list form)."""
    return ",".join(str(n) for n in sorted(set(nets), key=_net_sort_key))


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """`host:port` (IPv6 bracketed) → (host, port)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"endpoint {endpoint!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


# ---------------------------------------------------------------- the facts a desired state is built from


class AccessFacts(NamedTuple):
    """Step 0: how WireWAN logs in, and from where the API admits it."""

    username: str
    password: str | None
    use_tls: bool
    mgmt: str  # the admitted prefixes, fmt_prefixes' form


class InterfaceFacts(NamedTuple):
    listen_port: int
    mtu: int
    private_key: str | None  # None: the peer brought its own key


class SectionFacts(NamedTuple):
    """One remote peer's entry: its key, the prefixes it carries and how to reach it."""

    uuid: str
    public_key: str
    allowed: str  # fmt_prefixes' form
    host: str  # "" and "0": no endpoint
    port: str
    keepalive: str  # fmt_duration's form


class AddressFacts(NamedTuple):
    tunnel_ip: str
    prefixlen: int


class NatFacts(NamedTuple):
    """The netmap pair of a routed subnet with a NAT translation."""

    subnet_id: int
    nat_cidr: str
    cidr: str


class ServiceFacts(NamedTuple):
    id: int
    protocol: str
    shared_ip: str
    shared_port: int
    local_ip: str
    local_port: int


class RouterFacts(NamedTuple):
    """Everything that decides what WireWAN puts on a router, as plain values in a fixed order.

    `build_desired` builds every resource from these facts, and the router's staleness hash
    (:class:`RouterHasher`) is the hash of exactly these facts: a new property on the router is a new
    fact, and both follow. Only display text (titles, notes, names) and the interface's public key
    (which verify reads but nothing writes) come from the spec directly.
    """

    interface: str
    wan_id: int  # tags name their WAN (managed_key)
    peer_id: int
    access: AccessFacts | None
    wireguard: InterfaceFacts
    sections: tuple[SectionFacts, ...]
    address: AddressFacts
    routes: tuple[str, ...]  # what is reached over the overlay beyond the tunnel range, fewest prefixes, sorted
    nat: tuple[NatFacts, ...]
    services: tuple[ServiceFacts, ...]
    # The IPv6 tunnel address on a dual-stack WAN. Last and left out of the hash when None, so an
    # IPv4-only router's staleness hash is what it was before dual stack existed.
    address6: AddressFacts | None = None
    # Each section's preshared key, in section order; empty when the WAN has none (left out of the
    # hash then, so WANs without PSKs keep the hashes they had).
    psks: tuple[str, ...] = ()


def admitted_ranges(wan: WanSpec) -> list[IPNetwork]:
    """What a WAN needs admitted on its routers' API user and service: its tunnel range and its
    management CIDRs (192.168.0.0/16 when it names none)."""
    return [wan.tunnel_cidr, *(wan.mgmt_cidrs or (DEFAULT_MGMT_CIDR,))]


def _mgmt_addresses(
    wan: WanSpec, management_source: IPAddress | None, also: Sequence[IPNetwork] = ()
) -> list[IPNetwork]:
    nets: list[IPNetwork] = admitted_ranges(wan)
    nets.extend(also)
    if management_source is not None:
        src = ip_address(management_source)
        if not any(src.version == n.version and src in n for n in nets):
            host: IPNetwork = IPv4Network(f"{src}/32") if src.version == 4 else IPv6Network(f"{src}/128")
            nets.append(host)
    return sorted(set(nets), key=_net_sort_key)


class RouterHasher:
    """The :class:`RouterFacts` of a WAN's MikroTik peers, and their staleness hashes.

    :meth:`hash` is the SHA-256 of :meth:`facts`, which `build_desired` builds from: so it changes
    exactly when the desired state does (titles, notes and display names excluded, as in
    :func:`desired_hash`), without building a single resource: a 2,000-route router is a few string
    joins instead of 2,000 resources. The value differs from :func:`desired_hash`'s; deploys store
    this one (services.configs).

    Like the wg-quick renderer, caches are keyed by ``id()`` of prefixes the topology holds, so a
    hasher is used with one topology (which it keeps alive).
    """

    VERSION = "router-v2"  # v2: tags name their WAN

    def __init__(self, wan: WanSpec, topology: TopologyResult) -> None:
        self.wan = wan
        self.topology = topology
        self.mgmt = fmt_prefixes(_mgmt_addresses(wan, None))
        self._net: dict[int, tuple[IPNetwork, tuple[int, int, int], int, int, str]] = {}
        self._allowed: dict[int, str] = {}
        self._tunnel = interval(wan.tunnel_cidr)
        self._tunnel6 = interval(wan.tunnel_cidr6) if wan.tunnel_cidr6 is not None else None

    def _info(self, net: IPNetwork) -> tuple[IPNetwork, tuple[int, int, int], int, int, str]:
        got = self._net.get(id(net))
        if got is None:
            lo, hi = bounds(net)
            got = (net, (net.version, lo, net.prefixlen), lo, hi, prefix_text(net))
            self._net[id(net)] = got
        return got

    def _interval(self, net: IPNetwork) -> Interval:
        info = self._info(net)
        base = V6_BASE if info[1][0] == 6 else 0
        return info[2] + base, info[3] + base

    def _allowed_text(self, nets: tuple[IPNetwork, ...]) -> str:
        text = self._allowed.get(id(nets))
        if text is None:
            infos = [self._info(n) for n in nets]
            if all(a[1] < b[1] for a, b in zip(infos, infos[1:], strict=False)):
                text = ",".join(i[4] for i in infos)  # already sorted and unique: fmt_prefixes' form
            else:
                text = fmt_prefixes(nets)
            self._allowed[id(nets)] = text
        return text

    def _remote_routes(self, peer: PeerSpec, view: PeerView) -> tuple[str, ...]:
        """Every address reached over the overlay, as the fewest prefixes in address order: the
        union of the sections' AllowedIPs without the tunnel range (and the IPv6 one on a
        dual-stack router; their connected routes cover them) and without any own LAN (never route
        our own LAN away). Routes all point at the interface and WireGuard picks the peer, so
        prefixes of different sections merge too."""
        cut = [self._tunnel]
        if peer.tunnel_ip6 is not None and self._tunnel6 is not None:
            cut.append(self._tunnel6)
        cut.extend(interval(s.cidr) for s in peer.subnets)
        seen: set[int] = set()
        spans: list[Interval] = []
        for section in view.sections:
            for net in section.allowed_ips:
                if id(net) not in seen:
                    seen.add(id(net))
                    spans.append(self._interval(net))
        return tuple(map(str, all_cidrs(without(merged(spans), merged(cut)))))

    def facts(
        self, peer_id: int, management_source: IPAddress | None = None, also_admit: Sequence[IPNetwork] = ()
    ) -> RouterFacts:
        """:param management_source: the address WireWAN connects from; always admitted by step 0
        (DESIGN §6). Staleness hashes leave it out, so they do not depend on where WireWAN runs.
        :param also_admit: what the other WANs deployed on the same router need admitted (the API
        user and services keep the union, so WANs never fight over them)."""
        wan = self.wan
        peer = wan.peer(peer_id)
        if peer.kind != "mikrotik":
            raise ValueError(f"peer {peer.name!r} is not a MikroTik peer")
        view = self.topology.view(peer_id)
        mt = peer.mikrotik
        mgmt = (
            self.mgmt
            if management_source is None and not also_admit
            else fmt_prefixes(_mgmt_addresses(wan, management_source, also_admit))
        )
        sections = []
        for section in view.sections:
            remote = wan.peer(section.peer_id)
            host, port = split_endpoint(section.endpoint) if section.endpoint else ("", "0")
            sections.append(
                SectionFacts(
                    remote.uuid,
                    remote.public_key,
                    self._allowed_text(section.allowed_ips),
                    host,
                    port,
                    fmt_duration(section.persistent_keepalive or 0),
                )
            )
        return RouterFacts(
            interface=check_name(wan.interface_name),
            wan_id=wan.id,
            peer_id=peer.id,
            access=None if mt is None else AccessFacts(mt.username, mt.password, mt.use_tls, mgmt),
            wireguard=InterfaceFacts(peer.listen_port, wan.mtu, peer.private_key),
            sections=tuple(sections),
            address=AddressFacts(str(peer.tunnel_ip), wan.tunnel_cidr.prefixlen),
            routes=self._remote_routes(peer, view),
            nat=tuple(
                NatFacts(s.id, str(s.nat_cidr), str(s.cidr))
                for s in peer.subnets
                if s.nat_cidr is not None and s.routed
            ),
            services=tuple(
                ServiceFacts(v.id, v.protocol, str(v.shared_ip), v.shared_port, str(v.local_ip), v.local_port)
                for v in peer.services
            ),
            address6=(
                AddressFacts(str(peer.tunnel_ip6), wan.tunnel_cidr6.prefixlen)
                if peer.tunnel_ip6 is not None and wan.tunnel_cidr6 is not None
                else None
            ),
            psks=tuple(wan.psk(peer, wan.peer(section.peer_id)) or "" for section in view.sections)
            if wan.psk_seed is not None
            else (),
        )

    def hash(self, peer_id: int) -> str:
        facts = self.facts(peer_id)
        # address6 and psks are last and left out when empty, so IPv4-only routers without PSKs keep
        # the hashes they had.
        values: list[object] = [*facts[:-2]]
        if facts.address6 is not None:
            values.append(facts.address6)
        if facts.psks:
            values.append(["psk", *facts.psks])
        canon = json.dumps([self.VERSION, *values], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def router_hash(wan: WanSpec, peer_id: int, topology: TopologyResult | None = None) -> str:
    """The staleness hash of MikroTik peer `peer_id` (see :class:`RouterHasher`)."""
    if topology is None:
        topology = build_topology(wan, [peer_id])
    return RouterHasher(wan, topology).hash(peer_id)


# ---------------------------------------------------------------- building


def build_desired(
    wan: WanSpec,
    peer_id: int,
    topology: TopologyResult | None = None,
    management_source: IPAddress | None = None,
    also_admit: Sequence[IPNetwork] = (),
    hasher: RouterHasher | None = None,
) -> DesiredState:
    """Every resource WireWAN wants on MikroTik peer `peer_id`'s router, built from its
    :class:`RouterFacts` (what the staleness hash covers) plus display text from the spec.

    :param topology: the WAN's `TopologyResult` (built with `build_topology(wan)` when None).
    :param management_source: the address WireWAN connects from; always admitted by step 0
        (DESIGN §6), whatever the WAN's management CIDRs say.
    :param also_admit: ranges the other WANs deployed on the same router need admitted.
    :param hasher: a :class:`RouterHasher` of this spec to share between routers (and with their
        hashes), instead of one per call; its topology is used.
    """
    if hasher is None:
        hasher = RouterHasher(wan, topology if topology is not None else build_topology(wan))
    topology = hasher.topology
    facts = hasher.facts(peer_id, management_source, also_admit)
    peer = wan.peer(peer_id)  # for display text and the public key verify expects, nothing else
    view = topology.view(peer_id)
    wg = facts.interface
    notes: list[str] = []
    res: list[Resource] = []

    # Step 0: the API user and the API service admit the tunnel range, the management CIDRs and
    # the address WireWAN itself connects from.
    access = facts.access
    if access is not None:
        user_props = {"group": "full", "address": access.mgmt}
        write_only: frozenset[str] = frozenset()
        if access.password is not None:
            user_props["password"] = access.password
            write_only = frozenset({"password"})
        else:
            notes.append(
                f"No API password is stored for user {access.username!r}: the user is only adjusted "
                "if it already exists, never created without a password."
            )
        if access.username == "admin":
            notes.append(
                "The API user is 'admin': step 0 restricts its allowed addresses to the "
                "management list; make sure you do not log in as admin from elsewhere."
            )
        res.append(
            Resource(
                USER,
                f"user:{access.username}",
                user_props,
                match={"name": access.username},
                write_only=write_only,
                create=access.password is not None,
                title=f"API user {access.username}",
            )
        )
        # Plain `api` is always restricted; it is only enabled when WireWAN uses it (no TLS).
        api_props = {"address": access.mgmt} if access.use_tls else {"address": access.mgmt, "disabled": "false"}
        res.append(
            Resource(SERVICE, "service:api", api_props, match={"name": "api"}, create=False, title="API service")
        )
        if access.use_tls:
            res.append(
                Resource(
                    SERVICE,
                    "service:api-ssl",
                    {"address": access.mgmt, "disabled": "false"},
                    match={"name": "api-ssl"},
                    create=False,
                    title="API-SSL service",
                )
            )
    else:
        notes.append("No MikroTik API settings: step 0 (API user and service) is left out.")

    # Step 1: the WireGuard interface.
    iface = facts.wireguard
    wg_props = {"name": wg, "listen-port": str(iface.listen_port), "mtu": str(iface.mtu)}
    if iface.private_key:
        wg_props["private-key"] = iface.private_key
    else:
        notes.append(
            "This peer brought its own key: the script leaves private-key out, so RouterOS keeps "
            "(or, on a new interface, generates) its own. Its public key must equal the one "
            f"stored in WireWAN ({peer.public_key}); verify reports a mismatch."
        )
    res.append(
        Resource(
            WG,
            managed_key("interface", facts.peer_id, facts.wan_id),
            wg_props,
            expect={"public-key": peer.public_key},
            title=f"WireGuard interface {wg}",
        )
    )

    # Steps 2–3: one peer entry per visible remote peer, keyed by the remote peer's uuid.
    psks = facts.psks or ("",) * len(facts.sections)
    for shown, section, psk in zip(view.sections, facts.sections, psks, strict=True):
        # Written explicitly even when empty, so an add and a later set store the same values
        # (a remote that lost its endpoint must have it cleared, not kept).
        props = {
            "interface": wg,
            "public-key": section.public_key,
            "allowed-address": section.allowed,
            "endpoint-address": section.host,
            "endpoint-port": section.port,
            "persistent-keepalive": section.keepalive,
        }
        if psk:
            props["preshared-key"] = psk
        name = wan.peer(shown.peer_id).name
        key = managed_key("peer", section.uuid, facts.wan_id)
        res.append(Resource(WG_PEERS, key, props, title=f"peer entry for {name}", name=name))

    # Step 4: the tunnel address (its connected route covers the whole tunnel range).
    address = facts.address
    res.append(
        Resource(
            ADDRESS,
            managed_key("address", facts.peer_id, facts.wan_id),
            {"address": f"{address.tunnel_ip}/{address.prefixlen}", "interface": wg},
            title=f"tunnel address {address.tunnel_ip}",
        )
    )
    if facts.address6 is not None:
        address6 = facts.address6
        res.append(
            Resource(
                ADDRESS6,
                managed_key("address6", facts.peer_id, facts.wan_id),
                {"address": f"{address6.tunnel_ip}/{address6.prefixlen}", "interface": wg, "advertise": "false"},
                title=f"tunnel address {address6.tunnel_ip}",
            )
        )

    # Step 5: routes at distance 10 for everything else reached over the overlay.
    routes = [cached_network(text) for text in facts.routes]
    for net in routes:
        res.append(
            Resource(
                ROUTE6 if net.version == 6 else ROUTE,
                managed_key("route", net, facts.wan_id),
                {"dst-address": str(net), "gateway": wg, "distance": str(MANAGED_DISTANCE)},
                title=f"route {net}",
            )
        )
    # Step 6 is the demotion intent below.

    # Steps 7–8: firewall filter accepts, before the first drop rule of their chain.
    before_input = "before-first-drop:input"
    before_forward = "before-first-drop:forward"
    res += [
        Resource(
            FILTER,
            managed_key("allow-handshake", facts.peer_id, facts.wan_id),
            {"chain": "input", "action": "accept", "protocol": "udp", "dst-port": str(iface.listen_port)},
            before_input,
            title=f"accept WireGuard handshakes on udp/{iface.listen_port}",
        ),
        Resource(
            FILTER,
            managed_key("allow-input", facts.peer_id, facts.wan_id),
            {"chain": "input", "action": "accept", "in-interface": wg},
            before_input,
            title=f"accept input from {wg}",
        ),
        Resource(
            FILTER,
            managed_key("allow-forward-in", facts.peer_id, facts.wan_id),
            {"chain": "forward", "action": "accept", "in-interface": wg},
            before_forward,
            title=f"accept forward from {wg}",
        ),
        Resource(
            FILTER,
            managed_key("allow-forward-out", facts.peer_id, facts.wan_id),
            {"chain": "forward", "action": "accept", "out-interface": wg},
            before_forward,
            title=f"accept forward to {wg}",
        ),
    ]

    # The same accepts in the IPv6 firewall on a dual-stack WAN. The defconf IPv6 filter drops far
    # more than the IPv4 one (everything not from the LAN list, bad addresses, hop limit 1): the
    # accepts go before its first drop of each chain too.
    if facts.address6 is not None:
        filters6 = [
            Resource(
                FILTER6,
                managed_key(key, facts.peer_id, facts.wan_id),
                props,
                f"before-first-drop:{props['chain']}",
                title=f"IPv6: {title}",
            )
            for key, props, title in (
                (
                    "allow-handshake6",
                    {"chain": "input", "action": "accept", "protocol": "udp", "dst-port": str(iface.listen_port)},
                    f"accept WireGuard handshakes on udp/{iface.listen_port}",
                ),
                ("allow-input6", {"chain": "input", "action": "accept", "in-interface": wg}, f"accept input from {wg}"),
                (
                    "allow-forward-in6",
                    {"chain": "forward", "action": "accept", "in-interface": wg},
                    f"accept forward from {wg}",
                ),
                (
                    "allow-forward-out6",
                    {"chain": "forward", "action": "accept", "out-interface": wg},
                    f"accept forward to {wg}",
                ),
            )
        ]
        # Each family's input accepts, then each family's forward accepts (the script's steps 7, 8).
        first_forward = next(i for i, r in enumerate(res) if r.menu == FILTER and r.props["chain"] == "forward")
        res[first_forward:first_forward] = filters6[:2]
        res += filters6[2:]

    # Step 9: NAT. The netmap pair of every NAT'd subnet this peer owns. Its srcnat half goes to
    # the top of srcnat so it always precedes the no-masquerade accept below (which would
    # otherwise end srcnat processing first).
    for nat in facts.nat:
        res.append(
            Resource(
                NAT,
                managed_key("netmap-in", nat.subnet_id, facts.wan_id),
                {
                    "chain": "dstnat",
                    "action": "netmap",
                    "dst-address": nat.nat_cidr,
                    "to-addresses": nat.cidr,
                    "in-interface": wg,
                },
                title=f"netmap {nat.nat_cidr} -> {nat.cidr} (inbound)",
            )
        )
        res.append(
            Resource(
                NAT,
                managed_key("netmap-out", nat.subnet_id, facts.wan_id),
                {
                    "chain": "srcnat",
                    "action": "netmap",
                    "src-address": nat.cidr,
                    "to-addresses": nat.nat_cidr,
                    "out-interface": wg,
                },
                "top:srcnat",
                title=f"netmap {nat.cidr} -> {nat.nat_cidr} (outbound)",
            )
        )
    # One accept for everything leaving through the overlay interface, so no masquerade rule
    # hides LAN sources from the other side. Matching out-interface (rather than one rule per
    # remote prefix, or only the tunnel and services ranges) covers exactly the traffic routed
    # onto the overlay, remote LANs included, and never churns when prefixes change.
    res.append(
        Resource(
            NAT,
            managed_key("no-masq", facts.peer_id, facts.wan_id),
            {"chain": "srcnat", "action": "accept", "out-interface": wg},
            "before-first-masquerade:srcnat",
            title=f"no masquerade towards {wg}",
        )
    )

    # Step 10: published services: DNAT shared ip:port to the LAN host, and masquerade towards it
    # so replies come back even when this router is not the host's gateway (DESIGN §4).
    for named, svc in zip(peer.services, facts.services, strict=True):
        res.append(
            Resource(
                NAT,
                managed_key("service-dnat", svc.id, facts.wan_id),
                {
                    "chain": "dstnat",
                    "action": "dst-nat",
                    "protocol": svc.protocol,
                    "dst-address": svc.shared_ip,
                    "dst-port": str(svc.shared_port),
                    "in-interface": wg,
                    "to-addresses": svc.local_ip,
                    "to-ports": str(svc.local_port),
                },
                title=f"publish {named.name} on {svc.shared_ip}:{svc.shared_port}",
            )
        )
        res.append(
            Resource(
                NAT,
                managed_key("service-snat", svc.id, facts.wan_id),
                {
                    "chain": "srcnat",
                    "action": "masquerade",
                    "protocol": svc.protocol,
                    "dst-address": svc.local_ip,
                    "dst-port": str(svc.local_port),
                },
                title=f"replies for {named.name} via this router",
            )
        )

    for item in view.unreachable:
        notes.append(f"Not reachable from this peer: {item.prefix} ({item.message})")

    keys = [(r.menu, r.key) for r in res]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate resource keys in desired state")
    return DesiredState(
        peer_id=facts.peer_id,
        interface_name=wg,
        resources=tuple(res),
        demotion=DemotionIntent(tuple(routes)),
        notes=tuple(notes),
        wan_id=facts.wan_id,
    )


def desired_hash(desired: DesiredState) -> str:
    """SHA-256 of what the router must hold: menus, tags, properties (secrets included), placement.

    Titles and notes are left out, so renaming the WAN or a peer (display text only) does not make a
    router stale; anything that changes a row, a key or a password does.
    """
    body = {
        "interface": desired.interface_name,
        "demotion": [str(p) for p in desired.demotion.dst_prefixes],
        "resources": [
            [r.menu, r.key, sorted(r.props.items()), r.placement, sorted(r.match.items())] for r in desired.resources
        ],
    }
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()
