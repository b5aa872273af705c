"""Who sees whom in a WAN, and what each `[Peer]` section routes (DESIGN.md §3).

``build_topology`` turns a :class:`~app.domain.model.WanSpec` into one :class:`PeerView` per peer:
the `[Peer]` sections of that peer's config (wg-quick) or the peer entries of its router
(RouterOS), each with its AllowedIPs, endpoint and keepalive. Both renderers work from this, so
a wg-quick file and a router can never disagree about routing.

Rules (the design is the reference; the comments here say how they are applied):

- *Direct tunnel* between X and Y: the topology lets them see each other (mesh and hybrid: every
  pair; hub_spoke: pairs with at least one hub) **and** at least one of them has an endpoint (two
  CGNAT peers can never complete a handshake). hub_spoke/hybrid without any hub is mesh. Hybrid
  therefore behaves like mesh with hubs marked: spokes with an endpoint on either side talk
  directly, the others go through the relay.
- *Relay* (:func:`relay_peer_id`): the first hub that has an endpoint (``hub_priority``, lower
  first, unset last; then lowest tunnel IP); without such a hub (and outside hub_spoke, where
  only a hub may see spokes) the server or MikroTik peer with an endpoint and the lowest tunnel
  IP. Never a client unless the user made it a hub. The relay has an endpoint and sees everyone,
  so it always has a direct tunnel to both sides of any pair it relays.
- Every pair without a direct tunnel goes through the relay: each side routes the other's
  prefixes via the relay's section, and the relay's own config has both sides, so it forwards.
  Without a relay such a pair is unreachable and reported.
- A dual-stack WAN (``tunnel_cidr6``) changes none of this: each peer also advertises its tunnel
  /128 (and services their shared IPv6 /128), and the IPv6 tunnel and services ranges are
  aggregates like the IPv4 ones. IPv6 prefixes are sorted after IPv4 ones.
- A peer that depends on the relay (a CGNAT peer, or a spoke in hub_spoke) routes the whole
  tunnel range and services range through the relay (WireGuard picks the most specific
  AllowedIP, so direct peers' /32s still win). Relayed peers' tunnel and service addresses are
  covered by those two aggregates and not listed one by one. This keeps such configs small and
  unchanged when a peer that they reach through the relay joins or leaves.
- A relay section's addresses (the relay's own prefixes, the aggregates, the relayed LANs) are
  written as the fewest CIDRs covering exactly them (merged like ``collapse_addresses``; what X
  must not route through the relay is cut out at address level), so a spoke of a 10,000-peer
  hub_spoke WAN lists ~50 CIDRs instead of every relayed LAN. A merged CIDR equal to a prefix of
  a direct section is split in halves until it is not. See :class:`_Merged`.
- A remote prefix that overlaps one of X's own LANs (the real ``cidr``, routed or not) is left
  out of X's config and reported. A prefix advertised by two peers (a conflict refused at save
  time) is kept for the first one in tunnel-IP order only and reported for the others; a remote
  prefix equal to one X advertises itself is left out. So no prefix can appear under two
  sections of one config; :func:`build_topology` still checks it and raises
  :class:`TopologyInvariantError` if that ever fails.
- A disabled peer (``enabled`` False) is in no other peer's view and cannot relay; its own view
  has no sections. Its addresses stay in IP planning (conflicts, allocation) all the same.
- Keepalive: on a section where either side is CGNAT, the CGNAT side's positive per-peer
  override (the smaller if both have one), else the WAN keepalive, else 25; otherwise the WAN
  keepalive when it is above 0.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from itertools import chain, islice
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple, overload

from app.domain.address_sets import V6_BASE, Interval, bounds, interval, merged, prefix_text, without
from app.domain.gc_pause import LARGE_WAN_PEERS, cycle_collection_paused
from app.domain.model import IPAddress, IPNetwork, PeerSpec, WanSpec

DEFAULT_CGNAT_KEEPALIVE = 25


class TopologyInvariantError(AssertionError):
    """An internal rule was broken (e.g. one prefix under two sections). Always a bug."""


class PeerIds(Sequence[int]):
    """Sorted peer ids, one of them possibly left out, sharing the tuple it reads from: every spoke
    of a 10,000-peer hub_spoke WAN reaches the ~10,000 others through the hub, and a copy per
    spoke would be 10,000² ids. Equal to any sequence of the same ids in the same order."""

    __slots__ = ("_ids", "_skip")

    def __init__(self, ids: tuple[int, ...], skip: int = -1) -> None:
        self._ids = ids
        self._skip = skip  # the position left out, or -1

    def __len__(self) -> int:
        return len(self._ids) - (self._skip >= 0)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[int, ...]: ...
    def __getitem__(self, i: int | slice) -> int | tuple[int, ...]:
        if isinstance(i, slice):
            return tuple(self)[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        return self._ids[i + 1 if 0 <= self._skip <= i else i]

    def __iter__(self) -> Iterator[int]:
        if self._skip < 0:
            return iter(self._ids)
        return chain(islice(self._ids, self._skip), islice(self._ids, self._skip + 1, None))

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect_left(self._ids, value)
        return i < len(self._ids) and self._ids[i] == value and i != self._skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True)
class PeerSection:
    """One `[Peer]` section in X's config / one peer entry on X's router."""

    peer_id: int
    # Sorted (IPv4 before IPv6, then by address, then prefix length), no duplicates.
    allowed_ips: tuple[IPNetwork, ...]
    # "host:port" (IPv6 bracketed), or None when the peer has no endpoint (CGNAT).
    endpoint: str | None
    # None = no PersistentKeepalive line.
    persistent_keepalive: int | None
    # Peers X reaches THROUGH this section's peer, sorted by id.
    relayed_peer_ids: Sequence[int]


@dataclass(frozen=True)
class Unreachable:
    """A prefix of `peer_id` that `from_peer_id` cannot reach, with the reason and the fix."""

    from_peer_id: int
    peer_id: int
    # The subnet the prefix belongs to; None for a tunnel or service address.
    subnet_id: int | None
    prefix: IPNetwork
    message: str


@dataclass(frozen=True)
class PeerView:
    peer_id: int
    # Ordered by the remote peer's tunnel IP.
    sections: tuple[PeerSection, ...]
    # This peer forwards between other peers (it is the relay and somebody uses it).
    relays: bool
    # This peer must enable IP forwarding: it relays, routes a LAN (NAT'd or not) or publishes a
    # service on another host.
    forwards: bool
    unreachable: tuple[Unreachable, ...]


@dataclass(frozen=True)
class Edge:
    """A direct tunnel (``via`` None) or a path relayed through peer ``via``; ``a < b``."""

    a: int
    b: int
    via: int | None


@dataclass(frozen=True)
class TopologyResult:
    # Keyed by peer id, in tunnel-IP order.
    views: Mapping[int, PeerView]
    # Every unreachable prefix of every view, in the views' order.
    unreachable: tuple[Unreachable, ...]

    @cached_property
    def edges(self) -> tuple[Edge, ...]:
        """Every connected pair once, sorted by (a, b). Unreachable pairs have no edge.

        Computed on first use: a 2,000-spoke hub_spoke WAN has two million relayed pairs, which
        rendering configs never needs.
        """
        out: list[Edge] = []
        for view in self.views.values():
            x = view.peer_id
            for sec in view.sections:
                if sec.peer_id > x:
                    out.append(Edge(x, sec.peer_id, None))
                for z in sec.relayed_peer_ids:
                    if z > x:
                        out.append(Edge(x, z, sec.peer_id))
        out.sort(key=lambda e: (e.a, e.b))
        return tuple(out)

    def view(self, peer_id: int) -> PeerView:
        return self.views[peer_id]


# --- helpers ---------------------------------------------------------------------------------------


def prefix_sort_key(net: IPNetwork) -> int:
    """One integer ordering prefixes as AllowedIPs are ordered: IPv4 before IPv6, then by
    address, then by prefix length. Equal keys mean equal prefixes."""
    return (net.version << 140) | (int(net.network_address) << 8) | net.prefixlen


def sort_prefixes(nets: Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    """Sorted by :func:`prefix_sort_key`, duplicates removed."""
    return tuple(sorted(set(nets), key=prefix_sort_key))


def _hub_key(p: PeerSpec) -> tuple[bool, int, int, int]:
    prio = p.hub_priority
    return (prio is None, prio if prio is not None else 0, int(p.tunnel_ip), p.id)


def _peer_key(p: PeerSpec) -> tuple[int, int]:
    return (int(p.tunnel_ip), p.id)


def _effective_topology(wan: WanSpec) -> str:
    """hub_spoke or hybrid without any hub is generated as mesh."""
    if wan.topology != "mesh" and not any(p.is_hub for p in wan.peers):
        return "mesh"
    return wan.topology


def relay_peer_id(wan: WanSpec) -> int | None:
    """The peer that carries relayed prefixes, or None when the WAN has no usable relay.

    The first hub with an endpoint (``hub_priority`` lower first, unset last, then lowest tunnel
    IP). Otherwise, except in hub_spoke (where only a hub may see the spokes), the server or
    MikroTik peer with an endpoint and the lowest tunnel IP. A client is never picked unless the
    user marked it a hub.
    """
    hubs = sorted((p for p in wan.peers if p.is_hub and not p.cgnat), key=_hub_key)
    if hubs:
        return hubs[0].id
    if _effective_topology(wan) == "hub_spoke":
        return None
    candidates = [p for p in wan.peers if p.kind != "client" and not p.cgnat]
    if not candidates:
        return None
    return min(candidates, key=_peer_key).id


def _keepalive(wan: WanSpec, x: PeerSpec, y: PeerSpec) -> int | None:
    if x.cgnat or y.cgnat:
        overrides = [p.keepalive for p in (x, y) if p.cgnat and p.keepalive is not None and p.keepalive > 0]
        if overrides:
            return min(overrides)
        return wan.keepalive if wan.keepalive > 0 else DEFAULT_CGNAT_KEEPALIVE
    return wan.keepalive if wan.keepalive > 0 else None


def _host_prefix(addr: IPAddress) -> IPNetwork:
    if isinstance(addr, IPv4Address):
        return IPv4Network((int(addr), 32))
    return IPv6Network((int(addr), 128))


def _covered(p: IPNetwork, aggs: list[Interval]) -> bool:
    """p lies inside one of the aggregates (given as intervals)."""
    lo, hi = interval(p)
    return any(a_lo <= lo and hi <= a_hi for a_lo, a_hi in aggs)


def _contains_key(keys: tuple[int, ...], key: int) -> bool:
    """`key` is in the sorted `keys`."""
    i = bisect_left(keys, key)
    return i < len(keys) and keys[i] == key


def _advertised(spec: PeerSpec) -> list[tuple[IPNetwork, int | None]]:
    """What a peer advertises, with the subnet id: tunnel /32 (and /128 on a dual-stack WAN),
    routed subnets (NAT'd prefix when set), published service addresses (v4 and v6)."""
    out: list[tuple[IPNetwork, int | None]] = [(_host_prefix(spec.tunnel_ip), None)]
    if spec.tunnel_ip6 is not None:
        out.append((_host_prefix(spec.tunnel_ip6), None))
    out.extend((s.advertised, s.id) for s in spec.subnets if s.routed)
    out.extend((_host_prefix(svc.shared_ip), None) for svc in spec.services)
    out.extend((_host_prefix(svc.shared_ip6), None) for svc in spec.services if svc.shared_ip6 is not None)
    return out


# An entry of a relay section under construction: (sort key, prefix, owner idx or -1).
_Entry = tuple[int, IPNetwork, int]


class _Group(NamedTuple):
    """The group a peer is in for seeing others: a hub (in the hub_spoke sense) or a spoke, with an
    endpoint or behind CGNAT."""

    hub: bool
    endpoint: bool


class _Sel(NamedTuple):
    """A selection of groups: which of the four a peer sees directly, or reaches through the relay."""

    hubs_with_endpoint: bool = False
    cgnat_hubs: bool = False
    spokes_with_endpoint: bool = False
    cgnat_spokes: bool = False


# The group each flag of a _Sel selects, in field order.
_GROUP_ORDER = (_Group(True, True), _Group(True, False), _Group(False, True), _Group(False, False))
_NO_GROUP = _Sel()


class _Peer:
    """What the builder precomputes once per peer."""

    __slots__ = (
        "cgnat",
        "hub",
        "idx",
        "lan_bounds",
        "lan_lines",
        "lans",
        "meta",
        "name",
        "own",
        "own_keys",
        "pid",
        "rest",
        "spec",
    )

    def __init__(self, idx: int, spec: PeerSpec, adv: list[tuple[IPNetwork, int | None]], aggs: list[Interval]) -> None:
        self.idx = idx
        self.spec = spec
        self.pid = spec.id
        self.name = spec.name
        self.cgnat = spec.cgnat
        self.hub = spec.is_hub
        meta: dict[IPNetwork, int | None] = {}
        for net, subnet_id in adv:
            meta.setdefault(net, subnet_id)
        self.meta = meta
        # Everything this peer advertises, sorted, no duplicates.
        self.own: tuple[IPNetwork, ...] = tuple(sorted(meta, key=prefix_sort_key))
        self.own_keys: tuple[int, ...] = tuple(map(prefix_sort_key, self.own))
        # The part of `own` a relay section lists besides the tunnel/services aggregates.
        self.rest: tuple[IPNetwork, ...] = tuple(p for p in self.own if not _covered(p, aggs))
        # Its real LANs, routed or not: remote prefixes overlapping them are never routed here.
        self.lans: tuple[IPNetwork, ...] = tuple(s.cidr for s in spec.subnets)
        self.lan_lines: list[Interval] = [interval(lan) for lan in self.lans]  # on the one line
        self.lan_bounds: list[Interval] = [bounds(lan) for lan in self.lans]  # within the version


class _Prefixes:
    """The fewest CIDRs of intervals (as `address_sets.cidrs`), with their sort keys, every prefix
    built once per topology build.

    Relay sections cut holes into the same aggregated blocks thousands of times. What is left of a
    block beside a hole is an interval sharing one end with the block, and its CIDRs are mostly
    those of its neighbours' remainders (the halves and quarters of the block). So an interval's
    CIDRs are kept, and a new one is worked out from its shared end inwards until it meets an
    interval already known: a peer costs about the CIDRs its own hole makes, not the whole block's.
    The fewest CIDRs of an interval are unique (its maximal aligned blocks), so the order in which
    they are found does not change them. Sharing the prefix objects also keeps a 10,000-peer
    topology small and the renderers' per-object caches warm.
    """

    __slots__ = ("known", "made")

    def __init__(self) -> None:
        self.made: dict[int, IPNetwork] = {}  # by prefix_sort_key
        self.known: dict[Interval, tuple[tuple[IPNetwork, ...], tuple[int, ...]]] = {}

    def of(self, lo: int, hi: int, *, keep_lo: bool = True) -> tuple[tuple[IPNetwork, ...], tuple[int, ...]]:
        """The fewest CIDRs covering exactly [lo, hi] (one IP version, on the address line), in
        address order, and their keys. `keep_lo`: intervals sharing `lo` are the likely next ones
        (CIDRs are then peeled off the high end), else intervals sharing `hi`."""
        known = self.known
        got = known.get((lo, hi))
        if got is not None:
            return got
        if lo >= V6_BASE:
            bits, base, tag, make = 128, V6_BASE, 6 << 140, IPv6Network
        else:
            bits, base, tag, make = 32, 0, 4 << 140, IPv4Network  # type: ignore[assignment]
        peeled: list[tuple[int, int, int, int]] = []  # (lo, hi) of the interval, start and size of its CIDR
        a, b = lo, hi
        rest: tuple[tuple[IPNetwork, ...], tuple[int, ...]] = ((), ())
        while a <= b:
            got = known.get((a, b))
            if got is not None:
                rest = got
                break
            first, last = a - base, b - base
            if keep_lo:  # the largest aligned block ending at b that starts within [a, b]
                end = last + 1
                size = min((end & -end).bit_length() - 1, (last - first + 1).bit_length() - 1)
                start = end - (1 << size)
                peeled.append((a, b, start, size))
                b -= 1 << size
            else:  # the largest aligned block starting at a that ends within [a, b]
                size = min((first & -first).bit_length() - 1 if first else bits, (last - first + 1).bit_length() - 1)
                peeled.append((a, b, first, size))
                a += 1 << size
        nets, keys = rest
        made = self.made
        for a, b, start, size in reversed(peeled):
            key = tag | start << 8 | (bits - size)
            net = made.get(key)
            if net is None:
                net = made[key] = make((start, bits - size))
            if keep_lo:
                nets, keys = (*nets, net), (*keys, key)
            else:
                nets, keys = (net, *nets), (key, *keys)
            known[(a, b)] = (nets, keys)
        return nets, keys


class _Merged:
    """A relay section shared by every peer relaying the same groups through the same aggregates:
    its entries (prefix, owner idx or -1), and the same addresses as the fewest CIDRs.

    Aggregation is exact: the CIDRs cover the union of the entries, nothing more. A peer's own
    section leaves out some entries (its own, those blocked for it); :meth:`without_positions` cuts
    the addresses only those entries covered out of the CIDRs they lie in and leaves the others
    as they are, so a peer costs the size of its changes, not of the section.
    """

    __slots__ = (
        "ends",
        "flat",
        "flat_ends",
        "flat_keys",
        "flat_starts",
        "made",
        "nets",
        "parent",
        "positions",
        "starts",
    )

    def __init__(self, entries: list[_Entry], made: _Prefixes) -> None:
        self.nets: tuple[IPNetwork, ...] = tuple(e[1] for e in entries)
        self.positions: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            self.positions.setdefault(e[2], []).append(i)
        lines = [interval(n) for n in self.nets]
        self.starts = [lo for lo, _ in lines]
        self.ends = [hi for _, hi in lines]
        # Prefixes nest or are disjoint, so the entries form a forest; in sort order (address, then
        # shorter prefix first) an entry's parent is the nearest earlier entry containing it (an equal
        # prefix listed twice is the child of its first listing).
        self.parent: list[int] = []
        stack: list[int] = []
        for i, end in enumerate(self.ends):
            while stack and self.ends[stack[-1]] < end:
                stack.pop()
            self.parent.append(stack[-1] if stack else -1)
            stack.append(i)
        # The union (overlapping or adjacent entries merged) as the fewest CIDRs. Each entry lies
        # inside exactly one of them: an aligned block inside the union is inside a maximal one.
        self.made = made
        flat: list[IPNetwork] = []
        flat_keys: list[int] = []
        for lo, hi in merged(lines):
            nets, keys = made.of(lo, hi)
            flat.extend(nets)
            flat_keys.extend(keys)
        self.flat = tuple(flat)
        self.flat_keys = tuple(flat_keys)
        flat_lines = [interval(n) for n in self.flat]
        self.flat_starts = [lo for lo, _ in flat_lines]
        self.flat_ends = [hi for _, hi in flat_lines]

    def _holes(self, dropped: set[int]) -> list[Interval]:
        """The addresses only dropped entries cover, as sorted disjoint intervals.

        Only a dropped root of the forest can leave a hole: any other dropped entry lies inside
        an ancestor that is either kept (it covers the entry) or dropped (then the root's hole
        accounts for it). A root's hole is its range without the kept entries inside it.
        """
        holes: list[Interval] = []
        for i in sorted(dropped):
            if self.parent[i] != -1:
                continue
            lo, hi = self.starts[i], self.ends[i]
            inside = range(i + 1, bisect_right(self.starts, hi))
            kept = merged([(self.starts[k], self.ends[k]) for k in inside if k not in dropped])
            holes.extend(without([(lo, hi)], kept))
        return holes

    def without_positions(self, drop: list[int]) -> tuple[tuple[IPNetwork, ...], tuple[int, ...]]:
        """The fewest CIDRs covering the entries but those at the given positions, and their keys.

        Only the CIDRs holding a hole change: what is left of one is the fewest CIDRs by itself
        (nothing of it can merge with a neighbour, it was a maximal aligned block)."""
        if not drop:
            return self.flat, self.flat_keys
        holes = self._holes(set(drop))
        if not holes:
            return self.flat, self.flat_keys
        by_block: dict[int, list[Interval]] = {}
        for hole in holes:
            by_block.setdefault(bisect_right(self.flat_starts, hole[0]) - 1, []).append(hole)
        nets: list[IPNetwork] = []
        keys: list[int] = []
        done = 0
        for k in sorted(by_block):
            nets.extend(self.flat[done:k])
            keys.extend(self.flat_keys[done:k])
            block_lo = self.flat_starts[k]
            for lo, hi in without([(block_lo, self.flat_ends[k])], by_block[k]):
                # What is left of a block beside a hole shares the block's start or its end.
                pieces, piece_keys = self.made.of(lo, hi, keep_lo=lo == block_lo)
                nets.extend(pieces)
                keys.extend(piece_keys)
            done = k + 1
        nets.extend(self.flat[done:])
        keys.extend(self.flat_keys[done:])
        return tuple(nets), tuple(keys)


def _split_equal(nets: tuple[IPNetwork, ...], taken: set[int]) -> tuple[IPNetwork, ...]:
    """The same addresses with every CIDR whose key is in `taken` split into halves (again as
    needed), so none equals a prefix another section lists. Such a CIDR is made of several kept
    entries (one entry equal to a direct prefix would be a duplicate, blocked before), so halving
    ends before single addresses; if it ever does not, that is a bug."""
    out: list[IPNetwork] = []
    todo = list(reversed(nets))
    while todo:
        net = todo.pop()
        if prefix_sort_key(net) not in taken:
            out.append(net)
        elif net.prefixlen == net.max_prefixlen:
            raise TopologyInvariantError(f"{net} would appear under two [Peer] sections")
        else:
            low, high = net.subnets()
            todo.extend((high, low))
    return tuple(out)


class _Builder:
    def __init__(self, wan: WanSpec) -> None:
        self.wan = wan
        self.topology = _effective_topology(wan)
        self.default_keepalive: int | None = wan.keepalive if wan.keepalive > 0 else None
        specs = sorted(wan.peers, key=_peer_key)
        advs = [_advertised(spec) for spec in specs]
        advertised = {net for adv in advs for net, _ in adv}
        # An aggregate some peer advertises exactly (a critical conflict) would sit under two
        # sections; it is then not used and relayed addresses are listed one by one.
        ranges = (wan.tunnel_cidr, wan.services_cidr, wan.tunnel_cidr6, wan.services_cidr6)
        self.aggs: tuple[IPNetwork, ...] = tuple(a for a in ranges if a is not None and a not in advertised)
        self.agg_lines = [interval(a) for a in self.aggs]
        self.peers = [_Peer(i, s, adv, self.agg_lines) for i, (s, adv) in enumerate(zip(specs, advs, strict=True))]
        self.by_id = {p.pid: p for p in self.peers}
        rid = relay_peer_id(wan)
        self.relay: _Peer | None = self.by_id[rid] if rid is not None else None
        self._groups: dict[_Sel, tuple[list[_Peer], tuple[int, ...]]] = {}
        # Keyed by positions in self.aggs: hashing prefixes is Python code, once per peer adds up.
        self._merged_aggs: dict[tuple[_Sel, tuple[int, ...]], _Merged] = {}
        self._rest_aggs: dict[tuple[int, ...], list[tuple[IPNetwork, ...]]] = {}
        self._group_idx: dict[_Sel, frozenset[int]] = {}
        self._sections: dict[tuple[int, int | None], PeerSection] = {}
        self._made = _Prefixes()  # the aggregated CIDRs, shared by every relay section
        self._index_prefixes()

    # --- global indexes --------------------------------------------------------------------------

    def _index_prefixes(self) -> None:
        # Per IP version: (start, end, prefix, owner idx) sorted by start, for overlap queries.
        self.starts: dict[int, list[int]] = {4: [], 6: []}
        self.entries: dict[int, list[tuple[int, int, IPNetwork, int]]] = {4: [], 6: []}
        self.max_span: dict[int, int] = {4: 0, 6: 0}
        owners: dict[IPNetwork, list[int]] = {}
        rows: list[tuple[int, int, int, IPNetwork, int]] = []
        for p in self.peers:
            for net in p.own:
                start, end = bounds(net)
                rows.append((net.version, start, end, net, p.idx))
                owners.setdefault(net, []).append(p.idx)
        rows.sort(key=lambda r: (r[0], r[1], r[4]))
        for version, start, end, net, idx in rows:
            self.starts[version].append(start)
            self.entries[version].append((start, end, net, idx))
            self.max_span[version] = max(self.max_span[version], end - start)
        # Prefixes advertised by more than one peer, owners in tunnel-IP order.
        self.dups: dict[IPNetwork, list[int]] = {n: o for n, o in owners.items() if len(o) > 1}

    def _group_key(self, p: _Peer) -> _Group:
        return _Group(hub=self.topology == "hub_spoke" and p.hub, endpoint=not p.cgnat)

    def _group(self, sel: _Sel) -> tuple[list[_Peer], tuple[int, ...]]:
        """The peers of the selected groups in tunnel order, and their ids sorted."""
        got = self._groups.get(sel)
        if got is None:
            keys = {k for k, w in zip(_GROUP_ORDER, sel, strict=True) if w}
            members = [p for p in self.peers if self._group_key(p) in keys]
            got = (members, tuple(sorted(p.pid for p in members)))
            self._groups[sel] = got
        return got

    def _selections(self, x: _Peer) -> tuple[_Sel, _Sel]:
        """Groups of X's direct peers, and of the peers X has no direct tunnel to. X itself is in
        one of them; callers skip it."""
        if self.topology != "hub_spoke":
            # Every peer is a "spoke" here; only the endpoint flag matters.
            if not x.cgnat:
                return _Sel(spokes_with_endpoint=True, cgnat_spokes=True), _NO_GROUP
            return _Sel(spokes_with_endpoint=True), _Sel(cgnat_spokes=True)
        group = self._group_key(x)
        if group.hub and group.endpoint:
            return _Sel(True, True, True, True), _NO_GROUP
        if group.hub:
            return (
                _Sel(hubs_with_endpoint=True, spokes_with_endpoint=True),
                _Sel(cgnat_hubs=True, cgnat_spokes=True),
            )
        if group.endpoint:
            return (
                _Sel(hubs_with_endpoint=True, cgnat_hubs=True),
                _Sel(spokes_with_endpoint=True, cgnat_spokes=True),
            )
        return _Sel(hubs_with_endpoint=True), _Sel(cgnat_hubs=True, spokes_with_endpoint=True, cgnat_spokes=True)

    def _blocked(self, x: _Peer) -> dict[int, dict[IPNetwork, str]]:
        """Remote prefixes X must not route, by owner idx, with the reason."""
        out: dict[int, dict[IPNetwork, str]] = {}
        for lan, (lo, hi) in zip(x.lans, x.lan_bounds, strict=True):
            v = lan.version
            starts = self.starts[v]
            entries = self.entries[v]
            for i in range(bisect_left(starts, lo - self.max_span[v]), bisect_right(starts, hi)):
                start, end, net, owner = entries[i]
                if owner == x.idx or end < lo or start > hi:
                    continue
                by_net = out.setdefault(owner, {})
                if net in by_net:
                    continue
                z = self.peers[owner]
                mine = x.spec.subnets[x.lans.index(lan)]  # the first with this prefix (X may list it twice)
                net_text, lan_text = prefix_text(net), prefix_text(lan)
                if z.meta.get(net) is None:
                    fix = f"Fix: renumber {x.name}'s LAN; it must not overlap the WAN's tunnel or services range."
                elif mine.nat_cidr is not None:
                    # X's side is NATed already: the others reach X's LAN, but inside X the range is
                    # X's own, so X reaches Z's LAN only under a translation of Z's too.
                    fix = (
                        f"{x.name}'s LAN is published to the others as {prefix_text(mine.nat_cidr)}, but inside "
                        f"{x.name} that range is its own. Fix: Auto-NAT {net_text} on '{z.name}' too "
                        f"({x.name} then reaches it under its translation), or mark one not routed."
                    )
                else:
                    fix = (
                        f"Fix: Auto-NAT both LANs ({x.name}'s {lan_text} and {z.name}'s {net_text}; each is then "
                        "reached under its own translation), or mark one not routed."
                    )
                by_net[net] = (
                    f"{net_text} of peer '{z.name}' is unreachable from '{x.name}': it overlaps "
                    f"{x.name}'s own LAN {lan_text}. {fix}"
                )
        for net, owners in self.dups.items():
            winner = x if x.idx in owners else self.peers[owners[0]]
            if winner is x:
                who = f"'{x.name}' advertises the same prefix itself"
            else:
                who = f"peer '{winner.name}' advertises the same prefix"
            for owner in owners:
                if owner in (x.idx, winner.idx):
                    continue
                z = self.peers[owner]
                out.setdefault(owner, {}).setdefault(
                    net,
                    f"{net} of peer '{z.name}' is unreachable from '{x.name}': {who}. "
                    "Fix: NAT one side (Auto-NAT) or mark one not routed.",
                )
        return out

    def _no_relay_message(self, x: _Peer, z: _Peer) -> str:
        if self.topology == "hub_spoke":
            if not self._group_key(x).hub and not self._group_key(z).hub:
                why = "spokes reach each other only through a hub, and no hub has an endpoint"
                fix = "give a hub an endpoint"
            else:
                why = "neither has an endpoint and no hub with an endpoint can relay"
                fix = "give one of them an endpoint, or give a hub an endpoint"
        else:
            why = "neither has an endpoint and the WAN has no relay"
            fix = "give one of them an endpoint, or add a hub or a server/MikroTik peer with an endpoint"
        return f"peer '{z.name}' is unreachable from '{x.name}': {why}. Fix: {fix}."

    # --- relay sections --------------------------------------------------------------------------

    def _rest_for(self, kept: tuple[int, ...]) -> list[tuple[IPNetwork, ...]]:
        """Per peer idx: its own prefixes not covered by the aggregates at positions `kept`."""
        got = self._rest_aggs.get(kept)
        if got is None:
            if len(kept) == len(self.aggs):
                got = [p.rest for p in self.peers]
            else:
                lines = [self.agg_lines[i] for i in kept]
                got = [tuple(n for n in p.own if not _covered(n, lines)) for p in self.peers]
            self._rest_aggs[kept] = got
        return got

    def _shared_relay_section(self, sel: _Sel, relay: _Peer, kept: tuple[int, ...]) -> _Merged:
        """The relay section shared by every peer relaying the selected groups through the
        aggregates at positions `kept`: the relay's own prefixes beyond the aggregates, the
        aggregates, and every prefix of the relayed groups beyond them (aggregated once here,
        adjusted per peer)."""
        key = (sel, kept)
        got = self._merged_aggs.get(key)
        if got is None:
            aggs = [self.aggs[i] for i in kept]
            rest = self._rest_for(kept)
            entries: list[_Entry] = [(prefix_sort_key(n), n, relay.idx) for n in rest[relay.idx]]
            entries.extend((prefix_sort_key(a), a, -1) for a in aggs)
            for z in self._group(sel)[0]:
                entries.extend((prefix_sort_key(n), n, z.idx) for n in rest[z.idx])
            entries.sort(key=itemgetter(0))
            got = _Merged(entries, self._made)
            self._merged_aggs[key] = got
        return got

    def _group_members(self, sel: _Sel) -> frozenset[int]:
        got = self._group_idx.get(sel)
        if got is None:
            got = frozenset(p.idx for p in self._group(sel)[0])
            self._group_idx[sel] = got
        return got

    def _relay_section(
        self,
        x: _Peer,
        relay: _Peer,
        relayed_sel: _Sel,
        kept_aggs: tuple[int, ...],
        blocked: dict[int, dict[IPNetwork, str]],
        unreachable: list[Unreachable],
    ) -> tuple[tuple[IPNetwork, ...], tuple[int, ...]]:
        """X's relay section: the addresses of the shared one without X's own entries and the ones
        blocked for X (each reported in `unreachable`, the relay's first, then in tunnel order), as
        the fewest CIDRs and their sort keys. Reported even when an aggregate still carries the
        prefix: the route is useless (an own LAN shadows it) or leads to another owner of it."""
        members = self._group_members(relayed_sel)
        if relay.idx in members:
            raise TopologyInvariantError(f"relay {relay.name} is among the peers it relays for {x.name}")
        merged = self._shared_relay_section(relayed_sel, relay, kept_aggs)
        drop = list(merged.positions.get(x.idx, ()))
        owners = [o for o in blocked if o != x.idx and (o == relay.idx or o in members)]
        owners.sort(key=lambda o: (o != relay.idx, o))  # the relay first, then tunnel order
        for o in owners:
            z = self.peers[o]
            why_map = blocked[o]
            for net in z.own:
                why = why_map.get(net)
                if why is not None:
                    unreachable.append(Unreachable(x.pid, z.pid, z.meta[net], net, why))
            for i in merged.positions.get(o, ()):
                if merged.nets[i] in why_map:
                    drop.append(i)
        return merged.without_positions(drop)

    # --- views -----------------------------------------------------------------------------------

    def _direct(self, x: _Peer, y: _Peer) -> PeerSection:
        keep = self.default_keepalive if not (x.cgnat or y.cgnat) else _keepalive(self.wan, x.spec, y.spec)
        key = (y.idx, keep)
        sec = self._sections.get(key)
        if sec is None:
            sec = PeerSection(y.pid, y.own, y.spec.endpoint, keep, ())
            self._sections[key] = sec
        return sec

    def view(self, x: _Peer, direct_sel: _Sel, relayed_sel: _Sel, uses_relay: bool) -> PeerView:
        relay = self.relay
        blocked = self._blocked(x) if (x.lans or self.dups) else {}
        unreachable: list[Unreachable] = []
        relayed_members, relayed_all_ids = self._group(relayed_sel)

        relay_section: PeerSection | None = None
        relay_keys: tuple[int, ...] = ()
        if uses_relay:
            assert relay is not None
            pos = bisect_left(relayed_all_ids, x.pid)
            found = pos < len(relayed_all_ids) and relayed_all_ids[pos] == x.pid
            relayed_ids: Sequence[int] = PeerIds(relayed_all_ids, pos if found else -1)
            # The aggregates X's own LANs do not overlap (an overlapped one would route them away).
            kept = tuple(
                i
                for i, (a_lo, a_hi) in enumerate(self.agg_lines)
                if not any(lo <= a_hi and a_lo <= hi for lo, hi in x.lan_lines)
            )
            nets, relay_keys = self._relay_section(x, relay, relayed_sel, kept, blocked, unreachable)
            relay_section = PeerSection(
                relay.pid, nets, relay.spec.endpoint, _keepalive(self.wan, x.spec, relay.spec), relayed_ids
            )
        elif relayed_sel != _NO_GROUP:
            # Nobody can relay: every peer X has no direct tunnel to is unreachable.
            for z in relayed_members:
                if z is not x:
                    msg = self._no_relay_message(x, z)
                    unreachable.extend(Unreachable(x.pid, z.pid, z.meta[net], net, f"{net} of {msg}") for net in z.own)

        sections: list[PeerSection] = []
        direct_keys: list[int] = []
        for y in self._group(direct_sel)[0]:
            if y is x:
                continue
            if y is relay and relay_section is not None:
                sections.append(relay_section)
                continue
            why_map = blocked.get(y.idx)
            if why_map:
                allowed: list[IPNetwork] = []
                for net in y.own:
                    why = why_map.get(net)
                    if why is None:
                        allowed.append(net)
                    else:
                        unreachable.append(Unreachable(x.pid, y.pid, y.meta[net], net, why))
                sec = self._direct(x, y)
                sec = PeerSection(y.pid, tuple(allowed), sec.endpoint, sec.persistent_keepalive, ())
                direct_keys.extend(map(prefix_sort_key, allowed))
            else:
                sec = self._direct(x, y)
                direct_keys.extend(y.own_keys)
            sections.append(sec)

        # No prefix under two sections: direct sections are pairwise disjoint, and the relay
        # section (disjoint CIDRs, sorted) must not list one of theirs.
        if len(set(direct_keys)) != len(direct_keys):
            raise TopologyInvariantError(f"a prefix appears under two [Peer] sections of {x.name}")
        if relay_section is not None:
            at = next((i for i, s in enumerate(sections) if s is relay_section), None)
            if at is None:
                raise TopologyInvariantError(f"relay {relay.name if relay else '?'} has no tunnel to {x.name}")
            if any(_contains_key(relay_keys, k) for k in direct_keys):
                # Aggregating made a CIDR equal to a direct peer's prefix (that peer's prefix inside
                # relayed ones): split it, the addresses stay the same.
                nets = _split_equal(relay_section.allowed_ips, set(direct_keys))
                relay_section = replace(relay_section, allowed_ips=nets)
                sections[at] = relay_section
        forwards = any(s.routed for s in x.spec.subnets) or any(
            not (svc.local_ip in (x.spec.tunnel_ip, x.spec.tunnel_ip6) or svc.local_ip.is_loopback)
            for svc in x.spec.services
        )
        return PeerView(x.pid, tuple(sections), False, forwards, tuple(unreachable))

    def build(self, peer_ids: Collection[int] | None = None) -> TopologyResult:
        relay = self.relay
        plans = []
        anyone_uses = False
        for x in self.peers:
            direct_sel, relayed_sel = self._selections(x)
            uses = relay is not None and x is not relay and relayed_sel != _NO_GROUP
            anyone_uses = anyone_uses or uses
            plans.append((x, direct_sel, relayed_sel, uses))
        if peer_ids is not None:
            wanted = set(peer_ids)
            missing = wanted - self.by_id.keys()
            if missing:
                raise KeyError(min(missing))
            plans = [plan for plan in plans if plan[0].pid in wanted]
        views: dict[int, PeerView] = {}
        all_unreachable: list[Unreachable] = []
        for x, direct_sel, relayed_sel, uses in plans:
            v = self.view(x, direct_sel, relayed_sel, uses)
            if x is relay and anyone_uses:
                v = PeerView(v.peer_id, v.sections, True, True, v.unreachable)
            views[x.pid] = v
            all_unreachable.extend(v.unreachable)
        return TopologyResult(MappingProxyType(views), tuple(all_unreachable))


def build_topology(wan: WanSpec, peer_ids: Collection[int] | None = None) -> TopologyResult:
    """Every peer's view of the WAN (sections, relaying, forwarding, unreachable prefixes).

    With `peer_ids`, only those peers' views are built (each exactly as in the full build), and
    `views`, `unreachable` and `edges` cover only them: what rendering one config needs.
    """
    # See gc_pause: half the time of a 10,000-peer build.
    with cycle_collection_paused(promote_survivors=peer_ids is None and len(wan.peers) >= LARGE_WAN_PEERS):
        return _build_topology(wan, peer_ids)


def _build_topology(wan: WanSpec, peer_ids: Collection[int] | None) -> TopologyResult:
    if all(p.enabled for p in wan.peers):
        return _Builder(wan).build(peer_ids)
    # Disabled peers leave every other view (and cannot relay); their own view is empty.
    disabled = {p.id for p in wan.peers if not p.enabled}
    wanted = None if peer_ids is None else set(peer_ids)
    if wanted is not None:
        missing = wanted - {p.id for p in wan.peers}
        if missing:
            raise KeyError(min(missing))
    active = replace(wan, peers=tuple(p for p in wan.peers if p.enabled))
    result = _Builder(active).build(None if wanted is None else wanted - disabled)
    views = dict(result.views)
    for p in sorted((p for p in wan.peers if p.id in disabled), key=_peer_key):
        if wanted is None or p.id in wanted:
            views[p.id] = PeerView(p.id, (), False, False, ())
    return TopologyResult(MappingProxyType(views), result.unreachable)


__all__ = [
    "DEFAULT_CGNAT_KEEPALIVE",
    "Edge",
    "PeerSection",
    "PeerView",
    "TopologyInvariantError",
    "TopologyResult",
    "Unreachable",
    "build_topology",
    "prefix_sort_key",
    "relay_peer_id",
    "sort_prefixes",
]
