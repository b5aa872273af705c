"""IP planning: strict parsing, tunnel/service address allocation, NAT-pool blocks, range changes.

Addresses are handled as integers internally so allocation in a /16 with thousands of peers and
block search among thousands of NAT blocks stay fast (no per-host object churn).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Literal

from app.domain.errors import ConflictError, RangeFullError, ValidationError
from app.domain.model import IPAddress, IPNetwork
from app.domain.validation import require_text

RangeKind = Literal["tunnel", "services", "nat_pool", "tunnel6", "services6"]

CIDR_MAX = 100

# what -> (label in messages, WAN form/API field)
RANGE_LABELS: dict[RangeKind, tuple[str, str]] = {
    "tunnel": ("tunnel range", "tunnel_cidr"),
    "services": ("services range", "services_cidr"),
    "nat_pool": ("NAT pool", "nat_pool_cidr"),
    "tunnel6": ("IPv6 tunnel range", "tunnel_cidr6"),
    "services6": ("IPv6 services range", "services_cidr6"),
}


# --- parsing -----------------------------------------------------------------------------------

# An IPv4 prefix written as RouterOS and WireWAN write it: four octets without leading zeros, a
# prefix length. Anything else goes to `ipaddress` as written (which also raises for bad input).
_PLAIN_V4_PREFIX = re.compile(r"(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}/(?:0|[1-9]\d?)")


@lru_cache(maxsize=1 << 16)
def cached_network(text: str, strict: bool = True) -> IPNetwork:
    """`ipaddress.ip_network(text, strict)`, the same value or the same ValueError, faster: parsed
    objects are shared (they are immutable), and a plain IPv4 prefix is built from integers instead
    of parsing each octet's text. A deploy job parses a few thousand prefixes (its WAN, and the
    router's allowed-address lists and route destinations read back)."""
    if _PLAIN_V4_PREFIX.fullmatch(text):
        address, _, length = text.partition("/")
        a, b, c, d = (int(octet) for octet in address.split("."))
        prefixlen = int(length)
        if max(a, b, c, d) <= 255 and prefixlen <= 32:
            packed = a << 24 | b << 16 | c << 8 | d
            if not strict or not packed & (0xFFFFFFFF >> prefixlen):
                return IPv4Network((packed, prefixlen), strict=False)
    return ip_network(text, strict=strict)


def parse_network_strict(text: object, field: str = "cidr", label: str = "Subnet") -> IPNetwork:
    """Parse `address/prefix` (IPv4 or IPv6) and refuse host bits, offering the network form."""
    raw = require_text(text, field, label, CIDR_MAX, strip=True)
    if "/" not in raw:
        try:
            ip_address(raw)
        except ValueError:
            pass
        else:
            raise ValidationError(
                f"{label} {raw} has no prefix length; write it as address/prefix, e.g. "
                f"192.168.1.0/24, or {raw}/{32 if ':' not in raw else 128} for a single host.",
                field,
            )
    if "%" in raw:
        raise ValidationError(f"{label} {raw}: IPv6 zone ids (%...) are not supported.", field)
    try:
        loose = ip_network(raw, strict=False)
    except ValueError:
        address, _, _ = raw.partition("/")
        try:
            ip_address(address)
        except ValueError:
            pass
        else:
            raise ValidationError(
                f"{label} '{raw}' has an invalid prefix length; use /0 to /32 for IPv4 or /0 to /128 for IPv6.",
                field,
            ) from None
        raise ValidationError(
            f"{label} '{raw}' is not a valid network; expected an address and prefix length such as 192.168.1.0/24.",
            field,
        ) from None
    try:
        return ip_network(raw, strict=True)
    except ValueError:
        raise ValidationError(f"{raw} has host bits set; did you mean {loose}?", field) from None


def parse_ipv4_network_strict(text: object, field: str, label: str) -> IPv4Network:
    """Like :func:`parse_network_strict` but IPv4 only (the WAN's tunnel, services and NAT ranges)."""
    net = parse_network_strict(text, field, label)
    if not isinstance(net, IPv4Network):
        raise ValidationError(f"{label} must be an IPv4 range; {net} is IPv6.", field)
    return net


def parse_address(text: object, field: str, label: str) -> IPAddress:
    """A single IPv4 or IPv6 address (no prefix, no zone id)."""
    raw = require_text(text, field, label, CIDR_MAX, strip=True)
    if "%" in raw:
        raise ValidationError(f"{label} {raw}: IPv6 zone ids (%...) are not supported.", field)
    try:
        return ip_address(raw)
    except ValueError:
        raise ValidationError(f"{label} '{raw}' is not a valid IP address.", field) from None


def parse_ipv4_address(text: object, field: str, label: str) -> IPv4Address:
    addr = parse_address(text, field, label)
    if not isinstance(addr, IPv4Address):
        raise ValidationError(f"{label} must be an IPv4 address; {addr} is IPv6.", field)
    return addr


# --- host allocation ---------------------------------------------------------------------------


def usable_bounds(network: IPNetwork) -> tuple[int, int]:
    """First and last assignable host as integers.

    IPv4: no network/broadcast address below /31 (RFC 3021). IPv6: no Subnet-Router anycast
    address (the all-zero host, RFC 4291) below /127 (RFC 6164); IPv6 has no broadcast.
    """
    first = int(network.network_address)
    last = int(network.broadcast_address)
    if isinstance(network, IPv4Network):
        if network.prefixlen < 31:
            return first + 1, last - 1
        return first, last
    if network.prefixlen < 127:
        return first + 1, last
    return first, last


def _allocate(
    network: IPNetwork,
    used: Iterable[IPAddress],
    requested: IPAddress | None,
    range_label: str,
    addr_label: str,
    field: str,
) -> IPAddress:
    used_ints = {int(a) for a in used if a.version == network.version}
    return _allocate_among(network, used_ints, requested, range_label, addr_label, field)


def _allocate_among(
    network: IPNetwork,
    used_ints: Collection[int],
    requested: IPAddress | None,
    range_label: str,
    addr_label: str,
    field: str,
) -> IPAddress:
    first, last = usable_bounds(network)
    make = type(network.network_address)
    in_use = sum(1 for a in used_ints if first <= a <= last)

    def lowest_free() -> int | None:
        if in_use >= last - first + 1:
            return None
        # At most len(used) + 1 steps: the lowest free address is found lazily.
        candidate = first
        while candidate in used_ints:
            candidate += 1
        return candidate

    full_message = (
        f"The {range_label} {network} has no free address left ({in_use} in use); widen it in the WAN settings."
    )
    if requested is None:
        free = lowest_free()
        if free is None:
            raise RangeFullError(full_message, field)
        return make(free)

    if requested.version != network.version:
        raise ValidationError(
            f"{addr_label} {requested} is IPv{requested.version}; the {range_label} {network} is IPv{network.version}.",
            field,
        )
    value = int(requested)
    if requested not in network:
        raise ValidationError(f"{addr_label} {requested} is outside the {range_label} {network}.", field)
    if value < first:
        what = "network address" if network.version == 4 else "Subnet-Router anycast address"
        raise ValidationError(
            f"{addr_label} {requested} is the {what} of the {range_label} {network}; it cannot be assigned.",
            field,
        )
    if value > last:
        raise ValidationError(
            f"{addr_label} {requested} is the broadcast address of the {range_label} {network}; it cannot be assigned.",
            field,
        )
    if value in used_ints:
        free = lowest_free()
        if free is None:
            raise ConflictError(
                f"{addr_label} {requested} is already in use, and the {range_label} {network} has "
                f"no free address left ({in_use} in use); widen it in the WAN settings.",
                field,
                fixes=("change_range",),
            )
        raise ConflictError(
            f"{addr_label} {requested} is already in use; leave it empty to get the lowest free "
            f"address ({make(free)}).",
            field,
            fixes=("other_address",),
        )
    return requested


def allocate_tunnel_ip(
    network: IPv4Network, used: Iterable[IPv4Address], requested: IPv4Address | None = None
) -> IPv4Address:
    """The lowest free host address of the tunnel range, or `requested` when it is free and inside."""
    addr = _allocate(network, used, requested, "tunnel range", "Tunnel IP", "tunnel_ip")
    assert isinstance(addr, IPv4Address)
    return addr


def allocate_tunnel_address(
    network: IPNetwork, taken: Collection[int], requested: IPAddress | None = None
) -> IPAddress:
    """:func:`allocate_tunnel_ip` (or its IPv6 twin, by the range's version) from the taken
    addresses as integers of that version: what an indexed query of the taken addresses returns,
    without building an address object per peer."""
    if network.version == 4:
        return _allocate_among(network, taken, requested, "tunnel range", "Tunnel IP", "tunnel_ip")
    return _allocate_among(network, taken, requested, "IPv6 tunnel range", "Tunnel IPv6", "tunnel_ip6")


def allocate_tunnel_ip6(
    network: IPv6Network, used: Iterable[IPv6Address], requested: IPv6Address | None = None
) -> IPv6Address:
    """The lowest free address of the IPv6 tunnel range (never its ::0), or `requested` when free."""
    addr = _allocate(network, used, requested, "IPv6 tunnel range", "Tunnel IPv6", "tunnel_ip6")
    assert isinstance(addr, IPv6Address)
    return addr


def allocate_service_ip(
    network: IPv4Network, used: Iterable[IPv4Address], requested: IPv4Address | None = None
) -> IPv4Address:
    """The lowest free host address of the services range, or `requested` when free and inside."""
    addr = _allocate(network, used, requested, "services range", "Shared IP", "shared_ip")
    assert isinstance(addr, IPv4Address)
    return addr


def allocate_service_ip6(
    network: IPv6Network, used: Iterable[IPv6Address], requested: IPv6Address | None = None
) -> IPv6Address:
    """The lowest free address of the IPv6 services range, or `requested` when free and inside."""
    addr = _allocate(network, used, requested, "IPv6 services range", "Shared IPv6", "shared_ip6")
    assert isinstance(addr, IPv6Address)
    return addr


def check_in_range(addr: IPAddress, network: IPNetwork, range_label: str, addr_label: str, field: str) -> None:
    """Refuse an address outside `network` or on an address that cannot be assigned in it."""
    _allocate(network, (), addr, range_label, addr_label, field)


# --- IPv6 unique local ranges ------------------------------------------------------------------

ULA = IPv6Network("fc00::/7")
ULA_LOCAL = IPv6Network("fd00::/8")
# Narrower than /120 leaves too few addresses to be worth a range; wider than /48 is not a ULA site.
V6_PREFIX_MIN, V6_PREFIX_MAX = 48, 120


def suggest_ula64(random_bits: int) -> IPv6Network:
    """A /64 of fd00::/8 from a 40-bit random Global ID and subnet 0 (RFC 4193 §3.2).

    The caller supplies the randomness (``secrets.randbits(40)``) so this stays pure and testable.
    """
    global_id = random_bits & ((1 << 40) - 1)
    return IPv6Network(((0xFD << 120) | (global_id << 80), 64))


def parse_ula_range(text: object, field: str, label: str) -> IPv6Network:
    """An IPv6 range for the overlay: a ULA (fc00::/7, RFC 4193) from /48 to /120."""
    net = parse_network_strict(text, field, label)
    if not isinstance(net, IPv6Network):
        raise ValidationError(f"{label} must be an IPv6 range; {net} is IPv4.", field)
    if not net.subnet_of(ULA):
        raise ValidationError(
            f"{label} {net} is not a unique local address range (fc00::/7, RFC 4193); use a random /64 "
            "from fd00::/8 such as fd10:77::/64.",
            field,
        )
    if not V6_PREFIX_MIN <= net.prefixlen <= V6_PREFIX_MAX:
        raise ValidationError(
            f"{label} {net} must be a /{V6_PREFIX_MIN} to /{V6_PREFIX_MAX}; a /64 is usual.",
            field,
        )
    return net


def parse_ipv6_address(text: object, field: str, label: str) -> IPv6Address:
    addr = parse_address(text, field, label)
    if not isinstance(addr, IPv6Address):
        raise ValidationError(f"{label} must be an IPv6 address; {addr} is IPv4.", field)
    return addr


# --- NAT pool blocks ---------------------------------------------------------------------------


def smallest_free_block(
    pool: IPv4Network, prefixlen: int, taken: Iterable[IPNetwork], field: str | None = None
) -> IPv4Network:
    """The lowest-addressed free, aligned /prefixlen block of `pool` overlapping nothing in `taken`.

    Sorts the taken intervals once and sweeps: O(n log n) for n taken blocks.
    """
    bounds = ((int(n.network_address), int(n.broadcast_address)) for n in taken if isinstance(n, IPv4Network))
    return free_block_among(pool, prefixlen, bounds, field)


def free_block_among(
    pool: IPv4Network, prefixlen: int, taken: Iterable[tuple[int, int]], field: str | None = None
) -> IPv4Network:
    """:func:`smallest_free_block` with the taken IPv4 blocks as (first, last) integers: what an
    indexed query of the NAT pool's occupants returns, without an object per block."""
    hint = "widen the NAT pool in the WAN settings or mark the subnet not routed."
    if not pool.prefixlen <= prefixlen <= 32:
        raise RangeFullError(f"A /{prefixlen} block does not fit in the NAT pool {pool}; {hint}", field)
    pool_start = int(pool.network_address)
    pool_end = int(pool.broadcast_address)
    size = 1 << (32 - prefixlen)
    intervals = sorted((first, last) for first, last in taken if last >= pool_start and first <= pool_end)
    candidate = pool_start
    for start, end in intervals:
        if end < candidate:
            continue
        if start > candidate + size - 1:
            break
        # Overlap: jump to the first aligned block after this interval.
        candidate = ((end + 1 + size - 1) // size) * size
        if candidate + size - 1 > pool_end:
            break
    if candidate + size - 1 > pool_end:
        raise RangeFullError(f"The NAT pool {pool} has no free /{prefixlen} block left; {hint}", field)
    return IPv4Network((candidate, prefixlen))


# --- range changes -----------------------------------------------------------------------------


def check_range_change(
    old: IPNetwork,
    new: IPNetwork,
    in_use: Iterable[tuple[str, IPv4Address | IPv6Address | IPv4Network | IPv6Network]],
    what: RangeKind,
) -> None:
    """Refuse shrinking or moving a range so that something in use falls out of it.

    `in_use` pairs a description (e.g. "peer 'office'") with the address or block it uses.
    Addresses must stay assignable in `new` (not its network/broadcast address below /31).
    """
    if old == new:
        return
    label, field = RANGE_LABELS[what]
    first, last = usable_bounds(new)
    problems: list[str] = []
    for description, item in in_use:
        if isinstance(item, IPv4Address | IPv6Address):
            if item not in new:
                problems.append(f"{item} ({description}) would fall outside it")
            elif int(item) < first:
                problems.append(f"{item} ({description}) would become its network address")
            elif int(item) > last:
                problems.append(f"{item} ({description}) would become its broadcast address")
        elif not (item.version == new.version and item.subnet_of(new)):  # type: ignore[arg-type]
            problems.append(f"{item} ({description}) would fall outside it")
    if not problems:
        return
    shown = "; ".join(problems[:5])
    if len(problems) > 5:
        shown += f"; and {len(problems) - 5} more"
    raise ConflictError(
        f"The {label} cannot change from {old} to {new} because it is in use: {shown}. "
        "Move or delete those first, or choose a range that still contains them.",
        field,
        fixes=("move_first", "change_range"),
    )
