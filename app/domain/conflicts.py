"""Conflict rules of DESIGN.md §4: subnets, NAT, services, tunnel IPs, WAN ranges.

Save-time checks (`check_subnet`, `check_service`, `assign_tunnel_ip`, `check_wan_ranges`) raise
named errors; `wan_conflicts` lists what is wrong with data already saved (legacy data, or data
written before a rule existed) for the conflicts panel and `GET /api/wan/{id}/conflicts`.
Whole-WAN scans sort prefixes by start address and sweep, so 2,000 subnets stay cheap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

from app.domain.address_sets import interval
from app.domain.addressing import (
    RANGE_LABELS,
    RangeKind,
    allocate_service_ip,
    allocate_service_ip6,
    allocate_tunnel_address,
    check_in_range,
    check_range_change,
    free_block_among,
    smallest_free_block,
    usable_bounds,
)
from app.domain.errors import ConflictError, RangeFullError, ValidationError
from app.domain.model import IPAddress, IPNetwork, PeerSpec, Protocol, ServiceSpec, SubnetSpec, WanSpec

Severity = Literal["critical", "warning"]

FIX_AUTO_NAT = "auto_nat"
FIX_NOT_ROUTED = "not_routed"
FIX_RENUMBER = "renumber"
FIX_CHANGE_RANGE = "change_range"
FIX_EDIT_EXISTING = "edit_existing"

_RANGE_WHY: dict[RangeKind, str] = {
    "tunnel": "The tunnel range holds the peers' tunnel IPs",
    "services": "The services range holds the shared IPs of published services",
    "nat_pool": "The NAT pool holds the translated prefixes of NAT'd LANs",
    "tunnel6": "The IPv6 tunnel range holds the peers' tunnel IPv6 addresses",
    "services6": "The IPv6 services range holds the shared IPv6 addresses of published services",
}


@dataclass(frozen=True)
class SubnetDecision:
    """What saving a subnet should store: its NAT translation (None = none) and notes for the user."""

    nat_cidr: IPNetwork | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceDecision:
    """The shared address a service gets (allocated or checked)."""

    shared_ip: IPv4Address
    shared_port: int
    # Published over IPv6 too (the WAN's IPv6 services range); None otherwise.
    shared_ip6: IPv6Address | None = None


@dataclass(frozen=True)
class Conflict:
    """One problem in a saved WAN, in the shape of `GET /api/wan/{id}/conflicts`."""

    severity: Severity
    kind: str
    message: str
    peer_id: int | None = None
    subnet_id: int | None = None
    other_peer_id: int | None = None
    other_subnet_id: int | None = None

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "peer_id": self.peer_id,
            "subnet_id": self.subnet_id,
            "other_peer_id": self.other_peer_id,
            "other_subnet_id": self.other_subnet_id,
        }


# --- helpers -----------------------------------------------------------------------------------


def _wan_ranges(wan: WanSpec) -> tuple[tuple[RangeKind, IPNetwork], ...]:
    out: list[tuple[RangeKind, IPNetwork]] = [
        ("tunnel", wan.tunnel_cidr),
        ("services", wan.services_cidr),
        ("nat_pool", wan.nat_pool_cidr),
    ]
    if wan.tunnel_cidr6 is not None:
        out.append(("tunnel6", wan.tunnel_cidr6))
    if wan.services_cidr6 is not None:
        out.append(("services6", wan.services_cidr6))
    return tuple(out)


def _find_peer(wan: WanSpec, peer_id: int) -> PeerSpec | None:
    for peer in wan.peers:
        if peer.id == peer_id:
            return peer
    return None


def _state(subnet: SubnetSpec) -> str:
    if not subnet.routed:
        return "not routed"
    if subnet.nat_cidr is not None:
        return f"routed, NAT as {subnet.nat_cidr}"
    return "routed"


def _overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def _nat_taken(wan: WanSpec, exclude_subnet_id: int | None) -> list[IPNetwork]:
    """Everything a new NAT block must avoid: every NAT block, plus any real prefix or range in the pool."""
    taken: list[IPNetwork] = [wan.tunnel_cidr, wan.services_cidr]
    for peer in wan.peers:
        for subnet in peer.subnets:
            if subnet.id == exclude_subnet_id:
                continue
            taken.append(subnet.cidr)
            if subnet.nat_cidr is not None:
                taken.append(subnet.nat_cidr)
    return taken


def _bounds(net: IPNetwork) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def _nat_block(
    wan: WanSpec,
    cidr: IPNetwork,
    exclude_subnet_id: int | None,
    field: str,
    pool_taken: Collection[tuple[int, int]] | None = None,
) -> IPNetwork:
    if not isinstance(cidr, IPv4Network):
        raise ConflictError(
            f"{cidr} is IPv6, and WireWAN does not NAT IPv6 (no NAT66): IPv6 prefixes, ULAs included, "
            "are meant to be unique. Re-address this LAN (for a ULA, a fresh random /64 from fd00::/8) "
            "or mark it not routed.",
            field,
            fixes=(FIX_NOT_ROUTED, FIX_RENUMBER),
        )
    if pool_taken is None:
        return smallest_free_block(wan.nat_pool_cidr, cidr.prefixlen, _nat_taken(wan, exclude_subnet_id), field)
    ranges = [_bounds(wan.tunnel_cidr), _bounds(wan.services_cidr)]
    return free_block_among(wan.nat_pool_cidr, cidr.prefixlen, [*ranges, *pool_taken], field)


# --- subnets -----------------------------------------------------------------------------------


def check_subnet(
    wan: WanSpec,
    peer_id: int,
    cidr: IPNetwork,
    routed: bool,
    auto_nat: bool,
    exclude_subnet_id: int | None = None,
    field: str = "cidr",
    *,
    pool_taken: Collection[tuple[int, int]] | None = None,
    more_clashes: int = 0,
) -> SubnetDecision:
    """Decide whether peer `peer_id` may host `cidr`, and its NAT translation.

    Refused (ConflictError, 409): overlap with the tunnel range, services range or NAT pool
    (routed or not); overlap with another subnet of the same peer; a routed overlap with another
    peer's routed subnet (real prefixes compared, and its NAT prefix) unless `auto_nat`, which
    assigns the lowest free block of the same size in the NAT pool. Not-routed subnets never
    conflict with other peers. Pass `exclude_subnet_id` when editing an existing subnet (also for
    "NAT off" and "routed on": call with `auto_nat=False`).

    `pool_taken`: the (first, last) integer bounds of every IPv4 LAN and NAT block of the WAN that
    reaches into the NAT pool (but the excluded subnet's), in place of collecting them from `wan`:
    a WAN with thousands of Auto-NAT'd LANs need not be loaded as objects to find a free block.
    `more_clashes`: how many routed subnets of other peers that overlap `cidr` the caller left out
    of `wan` (it passes the first one, which the message names, and counts the rest).
    """
    for what, rng in _wan_ranges(wan):
        if _overlaps(cidr, rng):
            label = RANGE_LABELS[what][0]
            raise ConflictError(
                f"{cidr} overlaps the WAN's {label} {rng}. {_RANGE_WHY[what]}, so this LAN would "
                f"collide with the overlay itself, routed or not; renumber the LAN or move the {label} "
                "in the WAN settings.",
                field,
                fixes=(FIX_RENUMBER, FIX_CHANGE_RANGE),
            )

    own = _find_peer(wan, peer_id)
    if own is not None:
        for subnet in own.subnets:
            if subnet.id != exclude_subnet_id and _overlaps(cidr, subnet.cidr):
                raise ConflictError(
                    f"{cidr} overlaps {subnet.cidr}, which peer '{own.name}' already has; a peer "
                    "cannot host overlapping LANs. Edit the existing subnet instead.",
                    field,
                    fixes=(FIX_EDIT_EXISTING,),
                    other_peer_id=own.id,
                    other_subnet_id=subnet.id,
                )

    if not routed:
        return SubnetDecision(nat_cidr=None)

    clashes: list[tuple[PeerSpec, SubnetSpec, str]] = []
    for peer in wan.peers:
        if peer.id == peer_id:
            continue
        for subnet in peer.subnets:
            if not subnet.routed or subnet.id == exclude_subnet_id:
                continue
            if _overlaps(cidr, subnet.cidr):
                clashes.append((peer, subnet, f"{subnet.cidr} of peer '{peer.name}' ({_state(subnet)})"))
            elif subnet.nat_cidr is not None and _overlaps(cidr, subnet.nat_cidr):
                clashes.append(
                    (
                        peer,
                        subnet,
                        f"{subnet.nat_cidr}, the NAT translation of {subnet.cidr} of peer '{peer.name}'",
                    )
                )
    if not clashes:
        return SubnetDecision(nat_cidr=None)

    first_peer, first_subnet, first_desc = clashes[0]
    total = len(clashes) + more_clashes
    more = ""
    if total == 2:
        more = " and 1 other routed subnet"
    elif total > 2:
        more = f" and {total - 1} other routed subnets"
    if auto_nat:
        nat = _nat_block(wan, cidr, exclude_subnet_id, field, pool_taken)
        return SubnetDecision(
            nat_cidr=nat,
            notes=(f"{cidr} overlaps {first_desc}{more}; other peers will reach it as {nat} (Auto-NAT).",),
        )
    raise ConflictError(
        f"{cidr} overlaps {first_desc}{more}. Two routed LANs with overlapping addresses cannot both be "
        "reached by their real addresses: tick 'Auto-NAT if conflict' to publish this one under a free "
        f"block of the NAT pool {wan.nat_pool_cidr}, or mark it not routed.",
        field,
        fixes=(FIX_AUTO_NAT, FIX_NOT_ROUTED),
        other_peer_id=first_peer.id,
        other_subnet_id=first_subnet.id,
    )


def auto_nat_existing(
    wan: WanSpec, peer_id: int, subnet_id: int, *, pool_taken: Collection[tuple[int, int]] | None = None
) -> IPNetwork:
    """The "Auto-NAT" button: a NAT block for an existing subnet (its current one if it has one).
    `pool_taken` as for :func:`check_subnet`.

    Raises KeyError when the peer or subnet does not exist.
    """
    peer = wan.peer(peer_id)
    for subnet in peer.subnets:
        if subnet.id == subnet_id:
            if subnet.nat_cidr is not None:
                return subnet.nat_cidr
            return _nat_block(wan, subnet.cidr, subnet.id, "cidr", pool_taken)
    raise KeyError(subnet_id)


# --- tunnel IPs and services -------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """The peer that holds an address, as a refusal names it."""

    peer_id: int
    name: str


def choose_tunnel_ip(
    tunnel_cidr: IPNetwork, taken: Collection[int], requested: IPAddress | None, holder: Holder | None
) -> IPAddress:
    """The rule behind :func:`assign_tunnel_ip` and :func:`assign_tunnel_ip6`, given only what it
    needs of the WAN: the other peers' addresses of the range's version as integers, and the peer
    holding `requested` (the lowest id when several do). The services read exactly that with two
    indexed queries, so adding a peer does not load the whole WAN."""
    v4 = tunnel_cidr.version == 4
    range_label, addr_label, field = (
        ("tunnel range", "Tunnel IP", "tunnel_ip") if v4 else ("IPv6 tunnel range", "Tunnel IPv6", "tunnel_ip6")
    )
    if requested is None:
        return allocate_tunnel_address(tunnel_cidr, taken)
    check_in_range(requested, tunnel_cidr, range_label, addr_label, field)
    if holder is not None:
        try:
            hint = f" ({allocate_tunnel_address(tunnel_cidr, taken)})"
        except RangeFullError:
            hint = f", but the {range_label} is full; widen it in the WAN settings"
        raise ConflictError(
            f"{addr_label} {requested} is already used by peer '{holder.name}'; leave it empty to get "
            f"the lowest free address{hint}.",
            field,
            fixes=("other_address",),
            other_peer_id=holder.peer_id,
        )
    return requested


def assign_tunnel_ip(
    wan: WanSpec, requested: IPv4Address | None = None, exclude_peer_id: int | None = None
) -> IPv4Address:
    """A tunnel IP for a new (or edited, `exclude_peer_id`) peer; a taken one names its owner."""
    others = [p for p in wan.peers if p.id != exclude_peer_id]
    holder = next((Holder(p.id, p.name) for p in others if p.tunnel_ip == requested), None)
    chosen = choose_tunnel_ip(wan.tunnel_cidr, {int(p.tunnel_ip) for p in others}, requested, holder)
    assert isinstance(chosen, IPv4Address)
    return chosen


def assign_tunnel_ip6(
    wan: WanSpec, requested: IPv6Address | None = None, exclude_peer_id: int | None = None
) -> IPv6Address | None:
    """A tunnel IPv6 address for a new (or edited) peer; None when the WAN has no IPv6 range."""
    if not tunnel_ip6_wanted(wan.tunnel_cidr6, requested):
        return None
    assert wan.tunnel_cidr6 is not None
    others = [p for p in wan.peers if p.id != exclude_peer_id and p.tunnel_ip6 is not None]
    holder = next((Holder(p.id, p.name) for p in others if p.tunnel_ip6 == requested), None)
    taken = {int(p.tunnel_ip6) for p in others if p.tunnel_ip6 is not None}
    chosen = choose_tunnel_ip(wan.tunnel_cidr6, taken, requested, holder)
    assert isinstance(chosen, IPv6Address)
    return chosen


def tunnel_ip6_wanted(tunnel_cidr6: IPv6Network | None, requested: IPv6Address | None) -> bool:
    """Whether a peer gets a tunnel IPv6 address: only in a WAN with an IPv6 tunnel range (asking
    for one in a WAN without is refused)."""
    if tunnel_cidr6 is not None:
        return True
    if requested is not None:
        raise ValidationError(
            f"Tunnel IPv6 {requested} cannot be set: the WAN has no IPv6 tunnel range; set one in "
            "the WAN settings first.",
            "tunnel_ip6",
        )
    return False


def hubs_first(peers: Iterable[PeerSpec]) -> list[PeerSpec]:
    """Peers in the order a new IPv6 range numbers them: hubs first (by priority, then tunnel IP),
    then everyone else by tunnel IP. So the first address goes to the first hub, as in IPv4."""
    return sorted(
        peers,
        key=lambda p: (
            not p.is_hub,
            p.hub_priority is None,
            p.hub_priority or 0,
            int(p.tunnel_ip),
            p.id,
        ),
    )


def number_peers6(wan: WanSpec, tunnel_cidr6: IPv6Network) -> dict[int, IPv6Address]:
    """Addresses in a (new) IPv6 tunnel range for every peer: a peer keeps its address when it is
    still assignable there, the others get the lowest free one, first hub first."""
    out: dict[int, IPv6Address] = {}
    first, last = usable_bounds(tunnel_cidr6)
    for p in wan.peers:
        ip = p.tunnel_ip6
        if ip is not None and ip in tunnel_cidr6 and first <= int(ip) <= last and ip not in out.values():
            out[p.id] = ip
    used = {int(a) for a in out.values()}
    candidate = first
    for p in hubs_first(wan.peers):
        if p.id in out:
            continue
        while candidate in used:
            candidate += 1
        if candidate > last:
            raise RangeFullError(
                f"The IPv6 tunnel range {tunnel_cidr6} is too small for the WAN's {len(wan.peers)} peers.",
                "tunnel_cidr6",
            )
        out[p.id] = IPv6Address(candidate)
        candidate += 1
    return out


def check_service(
    wan: WanSpec,
    peer_id: int,
    protocol: Protocol,
    local_ip: IPAddress,
    local_port: int,
    shared_ip: IPv4Address | None = None,
    shared_port: int | None = None,
    *,
    name: str | None = None,
    exclude_service_id: int | None = None,
    local_ip6: IPv6Address | None = None,
    shared_ip6: IPv6Address | None = None,
) -> ServiceDecision:
    """Check a published service and pick its shared address.

    The local IP must be the peer's tunnel IP or inside one of its subnets. A shared IP routes to
    exactly one peer (it is in that peer's AllowedIPs), so several services of one peer may share
    an IP on different ports, but never two peers; (shared IP, port, protocol) is unique. Without
    a shared IP the lowest free one is allocated; without a shared port the local port is used.
    """
    peer = wan.peer(peer_id)
    services = [(p, s) for p in wan.peers for s in p.services if s.id != exclude_service_id]

    if name is not None:
        for s in peer.services:
            if s.id != exclude_service_id and s.name == name:
                raise ConflictError(
                    f"Peer '{peer.name}' already publishes a service named '{name}'.",
                    "name",
                    fixes=("other_name",),
                    other_peer_id=peer.id,
                    other_service_id=s.id,
                )

    if not isinstance(local_ip, IPv4Address):
        raise ValidationError(
            f"Local IP {local_ip} must be IPv4: published services are reached through the IPv4 services range.",
            "local_ip",
        )
    if local_ip != peer.tunnel_ip and not any(local_ip in s.cidr for s in peer.subnets):
        nets = ", ".join(str(s.cidr) for s in peer.subnets[:5]) or "it has none"
        if len(peer.subnets) > 5:
            nets += f" and {len(peer.subnets) - 5} more"
        raise ValidationError(
            f"Local IP {local_ip} is neither this peer's tunnel IP ({peer.tunnel_ip}) nor inside one of "
            f"its local networks ({nets}); add the LAN under Local Networks first.",
            "local_ip",
        )

    port = local_port if shared_port is None else shared_port
    ip6 = _check_service6(wan, peer, services, protocol, port, local_ip6, shared_ip6)
    if shared_ip is None:
        used = [s.shared_ip for _, s in services if isinstance(s.shared_ip, IPv4Address)]
        ip = allocate_service_ip(wan.services_cidr, used)
        return ServiceDecision(shared_ip=ip, shared_port=port, shared_ip6=ip6)

    check_in_range(shared_ip, wan.services_cidr, "services range", "Shared IP", "shared_ip")
    for other_peer, s in services:
        if s.shared_ip == shared_ip and other_peer.id != peer.id:
            raise ConflictError(
                f"Shared IP {shared_ip} already belongs to service '{s.name}' of peer "
                f"'{other_peer.name}'; a shared IP routes to one peer only. Leave it empty to get a "
                "free one.",
                "shared_ip",
                fixes=("other_address",),
                other_peer_id=other_peer.id,
                other_service_id=s.id,
            )
    for other_peer, s in services:
        if s.shared_ip == shared_ip and s.shared_port == port and s.protocol == protocol:
            raise ConflictError(
                f"{shared_ip}:{port}/{protocol} is already published by service '{s.name}' of peer "
                f"'{other_peer.name}'; choose another shared port.",
                "shared_port",
                fixes=("other_port",),
                other_peer_id=other_peer.id,
                other_service_id=s.id,
            )
    return ServiceDecision(shared_ip=shared_ip, shared_port=port, shared_ip6=ip6)


def _check_service6(
    wan: WanSpec,
    peer: PeerSpec,
    services: list[tuple[PeerSpec, ServiceSpec]],
    protocol: Protocol,
    port: int,
    local_ip6: IPv6Address | None,
    shared_ip6: IPv6Address | None,
) -> IPv6Address | None:
    """The shared IPv6 address of a service published over IPv6 too (None when it is not): the
    same rules as IPv4 in the IPv6 services range. There is no NAT64: the target must be IPv6."""
    if local_ip6 is None:
        if shared_ip6 is not None:
            raise ValidationError(
                "A shared IPv6 address needs a local IPv6 target (local_ip6): IPv6 is not translated to IPv4.",
                "local_ip6",
            )
        return None
    if wan.services_cidr6 is None:
        raise ValidationError(
            "The WAN has no IPv6 services range; set one in the WAN settings to publish over IPv6.", "local_ip6"
        )
    if peer.kind == "mikrotik":
        raise ValidationError(
            "Publishing over IPv6 is not supported on MikroTik peers yet; publish it over IPv4, or from a server peer.",
            "local_ip6",
        )
    if local_ip6 != peer.tunnel_ip6 and not any(local_ip6 in s.cidr for s in peer.subnets):
        raise ValidationError(
            f"Local IPv6 {local_ip6} is neither this peer's tunnel IPv6 ({peer.tunnel_ip6}) nor inside one of "
            "its IPv6 local networks; add the LAN under Local Networks first.",
            "local_ip6",
        )
    if shared_ip6 is None:
        used = [s.shared_ip6 for _, s in services if s.shared_ip6 is not None]
        return allocate_service_ip6(wan.services_cidr6, used)
    check_in_range(shared_ip6, wan.services_cidr6, "IPv6 services range", "Shared IPv6", "shared_ip6")
    for other_peer, s in services:
        if s.shared_ip6 == shared_ip6 and other_peer.id != peer.id:
            raise ConflictError(
                f"Shared IPv6 {shared_ip6} already belongs to service '{s.name}' of peer "
                f"'{other_peer.name}'; a shared IP routes to one peer only. Leave it empty to get a "
                "free one.",
                "shared_ip6",
                fixes=("other_address",),
                other_peer_id=other_peer.id,
                other_service_id=s.id,
            )
        if s.shared_ip6 == shared_ip6 and s.shared_port == port and s.protocol == protocol:
            raise ConflictError(
                f"[{shared_ip6}]:{port}/{protocol} is already published by service '{s.name}' of peer "
                f"'{other_peer.name}'; choose another shared port.",
                "shared_port",
                fixes=("other_port",),
                other_peer_id=other_peer.id,
                other_service_id=s.id,
            )
    return shared_ip6


# --- WAN ranges --------------------------------------------------------------------------------


def range_users(wan: WanSpec, what: RangeKind) -> list[tuple[str, IPAddress | IPNetwork]]:
    """What occupies a WAN range, described for :func:`check_range_change` messages."""
    users: list[tuple[str, IPAddress | IPNetwork]] = []
    for peer in wan.peers:
        if what == "tunnel":
            users.append((f"peer '{peer.name}'", peer.tunnel_ip))
        elif what == "tunnel6":
            if peer.tunnel_ip6 is not None:
                users.append((f"peer '{peer.name}'", peer.tunnel_ip6))
        elif what == "services6":
            users.extend(
                (f"service '{s.name}' of peer '{peer.name}'", s.shared_ip6)
                for s in peer.services
                if s.shared_ip6 is not None
            )
        elif what == "services":
            users.extend((f"service '{s.name}' of peer '{peer.name}'", s.shared_ip) for s in peer.services)
        else:
            users.extend(
                (f"Auto-NAT of {s.cidr} of peer '{peer.name}'", s.nat_cidr)
                for s in peer.subnets
                if s.nat_cidr is not None
            )
    return users


def check_wan_ranges(
    tunnel_cidr: IPv4Network,
    services_cidr: IPv4Network,
    nat_pool_cidr: IPv4Network,
    wan: WanSpec | None = None,
    *,
    tunnel_cidr6: IPv6Network | None = None,
    services_cidr6: IPv6Network | None = None,
) -> None:
    """Check a WAN's ranges: mutually disjoint and, for an existing WAN, still fitting its data.

    Refuses (ConflictError) a change that would leave tunnel IPs, shared IPs or NAT blocks outside
    their range, and a range that would overlap a peer's LAN. Adding or moving the IPv6 tunnel
    range is allowed (the peers are re-numbered); removing the IPv6 services range is refused while
    a service uses it.
    """
    new: dict[RangeKind, IPNetwork] = {
        "tunnel": tunnel_cidr,
        "services": services_cidr,
        "nat_pool": nat_pool_cidr,
    }
    if tunnel_cidr6 is not None:
        new["tunnel6"] = tunnel_cidr6
    if services_cidr6 is not None:
        new["services6"] = services_cidr6
    order = list(new)
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if _overlaps(new[a], new[b]):
                label_a = RANGE_LABELS[a][0]
                label_b, field_b = RANGE_LABELS[b]
                raise ValidationError(
                    f"The {label_b} {new[b]} overlaps the {label_a} {new[a]}; the tunnel range, services "
                    "range and NAT pool must not overlap.",
                    field_b,
                )
    if wan is None:
        return
    for what, old in _wan_ranges(wan):
        if what == "tunnel6":
            continue  # re-numbered on change (number_peers6)
        if what not in new:
            users = range_users(wan, what)
            if users:
                label, field = RANGE_LABELS[what]
                raise ConflictError(
                    f"The {label} {old} cannot be removed: {users[0][0]} uses {users[0][1]}"
                    f"{f' and {len(users) - 1} more' if len(users) > 1 else ''}. Delete those first.",
                    field,
                    fixes=("move_first",),
                )
            continue
        check_range_change(old, new[what], range_users(wan, what), what)
    for what, rng in new.items():
        label, field = RANGE_LABELS[what]
        for peer in wan.peers:
            for subnet in peer.subnets:
                if _overlaps(subnet.cidr, rng):
                    raise ConflictError(
                        f"The {label} {rng} would overlap {subnet.cidr} of peer '{peer.name}'; choose "
                        "another range or renumber that LAN.",
                        field,
                        fixes=(FIX_CHANGE_RANGE, FIX_RENUMBER),
                        other_peer_id=peer.id,
                        other_subnet_id=subnet.id,
                    )


# --- the whole WAN -----------------------------------------------------------------------------


def overlapping_pairs(prefixes: Iterable[IPNetwork]) -> Iterator[tuple[int, int]]:
    """Index pairs (i, j) of overlapping prefixes, by sorting on start address and sweeping.

    CIDR blocks overlap only by nesting, so the active set is a short chain; the cost is
    O(n log n) plus the number of pairs reported.
    """
    # On the one integer line, where IPv6 sorts above IPv4 and never overlaps it.
    keyed = sorted((lo, -hi, i) for i, (lo, hi) in enumerate(map(interval, prefixes)))
    active: list[tuple[int, int]] = []  # (end, index)
    for start, neg_end, index in keyed:
        active = [a for a in active if a[0] >= start]
        for _, other in active:
            yield other, index
        active.append((-neg_end, index))


def _reported_lan_overlaps(flat: list[tuple[PeerSpec, SubnetSpec]]) -> list[tuple[int, int]]:
    """The pairs of overlapping LANs a rule reports (two of one peer, or two routed without NAT),
    in the order :func:`overlapping_pairs` finds them among all LANs.

    Without walking the others: thousands of peers Auto-NAT'ing the same home LAN overlap pairwise,
    millions of pairs that no rule reports.
    """
    cidrs = [s.cidr for _, s in flat]
    lines = [interval(c) for c in cidrs]
    order = sorted(range(len(cidrs)), key=lambda i: (lines[i][0], -lines[i][1], i))
    rank = [0] * len(cidrs)
    for r, i in enumerate(order):
        rank[i] = r
    pairs: set[tuple[int, int]] = set()
    plain = [i for i, (_, s) in enumerate(flat) if s.routed and s.nat_cidr is None]
    pairs.update((plain[a], plain[b]) for a, b in overlapping_pairs(cidrs[i] for i in plain))
    of_peer: dict[int, list[int]] = {}
    for i, (p, _) in enumerate(flat):
        of_peer.setdefault(p.id, []).append(i)
    for idx in of_peer.values():
        if len(idx) > 1:
            pairs.update((idx[a], idx[b]) for a, b in overlapping_pairs(cidrs[i] for i in idx))
    oriented = [(i, j) if rank[i] < rank[j] else (j, i) for i, j in pairs]
    oriented.sort(key=lambda pair: (rank[pair[1]], rank[pair[0]]))
    return oriented


def _describe_advertised(peer: PeerSpec, subnet: SubnetSpec) -> str:
    if subnet.nat_cidr is not None:
        return f"{subnet.nat_cidr} (Auto-NAT of {subnet.cidr} of peer '{peer.name}')"
    return f"{subnet.cidr} of peer '{peer.name}'"


def wan_conflicts(wan: WanSpec) -> list[Conflict]:
    """Every conflict in a saved WAN, critical ones first.

    Critical: ranges overlapping each other; a subnet overlapping a range; two advertised prefixes
    overlapping where one is a NAT translation; a tunnel IP or shared IP taken twice or outside its
    range. Warning: routed subnets of two peers overlapping with no NAT on either (legacy data);
    overlapping subnets of one peer. Reachability ("unreachable from X") is topology's job.
    """
    out: list[Conflict] = []
    ranges = _wan_ranges(wan)

    for i, (what_a, rng_a) in enumerate(ranges):
        for what_b, rng_b in ranges[i + 1 :]:
            if _overlaps(rng_a, rng_b):
                out.append(
                    Conflict(
                        "critical",
                        "range_overlap",
                        f"The {RANGE_LABELS[what_b][0]} {rng_b} overlaps the {RANGE_LABELS[what_a][0]} {rng_a}.",
                    )
                )

    # Tunnel IPs.
    first, last = usable_bounds(wan.tunnel_cidr)
    owner_of_ip: dict[IPv4Address, PeerSpec] = {}
    for peer in wan.peers:
        ip = peer.tunnel_ip
        if ip not in wan.tunnel_cidr or not first <= int(ip) <= last:
            where = "outside" if ip not in wan.tunnel_cidr else "not an assignable address of"
            out.append(
                Conflict(
                    "critical",
                    "tunnel_ip_outside_range",
                    f"Tunnel IP {ip} of peer '{peer.name}' is {where} the tunnel range {wan.tunnel_cidr}.",
                    peer_id=peer.id,
                )
            )
        owner = owner_of_ip.setdefault(ip, peer)
        if owner is not peer:
            out.append(
                Conflict(
                    "critical",
                    "duplicate_tunnel_ip",
                    f"Tunnel IP {ip} is used by both peer '{owner.name}' and peer '{peer.name}'.",
                    peer_id=peer.id,
                    other_peer_id=owner.id,
                )
            )

    if wan.tunnel_cidr6 is not None:
        out.extend(_tunnel6_conflicts(wan, wan.tunnel_cidr6))

    # Subnets against the WAN ranges, and against each other.
    flat: list[tuple[PeerSpec, SubnetSpec]] = [(p, s) for p in wan.peers for s in p.subnets]
    # On the integer line (IPv6 above IPv4): `ipaddress` overlap tests are Python code, and a
    # 10,000-peer WAN has 20,000 subnets to test against each range.
    range_lines = [(what, rng, *interval(rng)) for what, rng in ranges]
    for peer, subnet in flat:
        lo, hi = interval(subnet.cidr)
        for what, rng, range_lo, range_hi in range_lines:
            if lo <= range_hi and range_lo <= hi:
                label = RANGE_LABELS[what][0]
                out.append(
                    Conflict(
                        "critical",
                        f"{what}_range_overlap" if what != "nat_pool" else "nat_pool_overlap",
                        f"{subnet.cidr} of peer '{peer.name}' overlaps the {label} {rng}.",
                        peer_id=peer.id,
                        subnet_id=subnet.id,
                    )
                )
    for i, j in _reported_lan_overlaps(flat):
        (pa, sa), (pb, sb) = flat[i], flat[j]
        if pa.id == pb.id:
            out.append(
                Conflict(
                    "warning",
                    "own_subnet_overlap",
                    f"{sa.cidr} and {sb.cidr} of peer '{pa.name}' overlap; a peer cannot host overlapping LANs.",
                    peer_id=pa.id,
                    subnet_id=sa.id,
                    other_peer_id=pb.id,
                    other_subnet_id=sb.id,
                )
            )
        elif sa.routed and sb.routed and sa.nat_cidr is None and sb.nat_cidr is None:
            out.append(
                Conflict(
                    "warning",
                    "peer_subnet_overlap",
                    f"{sa.cidr} of peer '{pa.name}' overlaps {sb.cidr} of peer '{pb.name}' (both routed, "
                    "no NAT): other peers cannot tell which LAN an address belongs to. Use Auto-NAT on "
                    "one of them or mark one not routed.",
                    peer_id=pa.id,
                    subnet_id=sa.id,
                    other_peer_id=pb.id,
                    other_subnet_id=sb.id,
                )
            )
    routed = [(p, s) for p, s in flat if s.routed]
    for i, j in overlapping_pairs(s.advertised for _, s in routed):
        (pa, sa), (pb, sb) = routed[i], routed[j]
        if sa.nat_cidr is None and sb.nat_cidr is None:
            continue  # real prefixes: reported above
        out.append(
            Conflict(
                "critical",
                "nat_overlap",
                f"{_describe_advertised(pa, sa)} and {_describe_advertised(pb, sb)} are published under "
                "overlapping prefixes; other peers cannot tell the two LANs apart. Turn NAT off and "
                "Auto-NAT again on one of them.",
                peer_id=pa.id,
                subnet_id=sa.id,
                other_peer_id=pb.id,
                other_subnet_id=sb.id,
            )
        )

    out.extend(_service_conflicts(wan))
    # Critical first; otherwise the (deterministic) order of discovery.
    return sorted(out, key=lambda c: c.severity != "critical")


def _tunnel6_conflicts(wan: WanSpec, net: IPv6Network) -> Iterator[Conflict]:
    first, last = usable_bounds(net)
    owner_of_ip: dict[IPv6Address, PeerSpec] = {}
    for peer in wan.peers:
        ip = peer.tunnel_ip6
        if ip is None:
            yield Conflict(
                "critical",
                "tunnel_ip6_missing",
                f"Peer '{peer.name}' has no tunnel IPv6 address in {net}; save the WAN settings to number it.",
                peer_id=peer.id,
            )
            continue
        if ip not in net or not first <= int(ip) <= last:
            where = "outside" if ip not in net else "not an assignable address of"
            yield Conflict(
                "critical",
                "tunnel_ip_outside_range",
                f"Tunnel IPv6 {ip} of peer '{peer.name}' is {where} the IPv6 tunnel range {net}.",
                peer_id=peer.id,
            )
        owner = owner_of_ip.setdefault(ip, peer)
        if owner is not peer:
            yield Conflict(
                "critical",
                "duplicate_tunnel_ip",
                f"Tunnel IPv6 {ip} is used by both peer '{owner.name}' and peer '{peer.name}'.",
                peer_id=peer.id,
                other_peer_id=owner.id,
            )


def _service_conflicts(wan: WanSpec) -> Iterator[Conflict]:
    ip_owner: dict[IPAddress, tuple[PeerSpec, ServiceSpec]] = {}
    reported_shared: set[tuple[IPAddress, int]] = set()
    endpoint_owner: dict[tuple[IPAddress, int, str], tuple[PeerSpec, ServiceSpec]] = {}
    first, last = usable_bounds(wan.services_cidr)
    for peer in wan.peers:
        for s in peer.services:
            ip = s.shared_ip
            if not isinstance(ip, IPv4Address) or ip not in wan.services_cidr or not first <= int(ip) <= last:
                yield Conflict(
                    "critical",
                    "service_ip_outside_range",
                    f"Shared IP {ip} of service '{s.name}' (peer '{peer.name}') is outside the services "
                    f"range {wan.services_cidr} or not assignable in it.",
                    peer_id=peer.id,
                )
            owner_peer, owner_service = ip_owner.setdefault(ip, (peer, s))
            if owner_peer.id != peer.id and (ip, peer.id) not in reported_shared:
                reported_shared.add((ip, peer.id))
                yield Conflict(
                    "critical",
                    "service_ip_shared",
                    f"Shared IP {ip} is used by service '{owner_service.name}' of peer '{owner_peer.name}' "
                    f"and service '{s.name}' of peer '{peer.name}'; a shared IP routes to one peer only.",
                    peer_id=peer.id,
                    other_peer_id=owner_peer.id,
                )
            key = (ip, s.shared_port, s.protocol)
            first_peer, first_service = endpoint_owner.setdefault(key, (peer, s))
            if first_service is not s:
                yield Conflict(
                    "critical",
                    "duplicate_service",
                    f"{ip}:{s.shared_port}/{s.protocol} is published twice: by service "
                    f"'{first_service.name}' of peer '{first_peer.name}' and service '{s.name}' of peer "
                    f"'{peer.name}'.",
                    peer_id=peer.id,
                    other_peer_id=first_peer.id,
                )
