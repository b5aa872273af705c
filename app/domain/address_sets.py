"""Sets of addresses as intervals on one integer line, and back to the fewest CIDRs.

Relay sections (topology) and router routes (routeros.desired) are aggregated losslessly: the
prefixes become intervals, intervals are merged or cut, and each interval is written again as the
fewest CIDRs that cover exactly it (what ``ipaddress.collapse_addresses`` gives, on plain integers,
which a 10,000-peer WAN needs). IPv6 addresses sit above every IPv4 one on the line, so the two
versions sort apart and never merge.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from app.domain.model import IPNetwork

Interval = tuple[int, int]

V6_BASE = 1 << 129


def bounds(net: IPNetwork) -> Interval:
    """The first and last address of `net` as integers of its own version."""
    # From the integers: `broadcast_address` builds a host mask and an address object per prefix.
    lo = int(net.network_address)
    return lo, lo | ((1 << (net.max_prefixlen - net.prefixlen)) - 1)


def interval(net: IPNetwork) -> Interval:
    """The addresses of `net` on the line."""
    lo, hi = bounds(net)
    return (lo + V6_BASE, hi + V6_BASE) if net.version == 6 else (lo, hi)


def merged(spans: list[Interval]) -> list[Interval]:
    """Sorted, disjoint intervals covering the same addresses (overlapping and adjacent ones joined)."""
    out: list[Interval] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def without(spans: list[Interval], cut: list[Interval]) -> list[Interval]:
    """`spans` minus `cut` (both sorted and disjoint)."""
    out: list[Interval] = []
    i = 0
    for lo, hi in spans:
        while i < len(cut) and cut[i][1] < lo:
            i += 1
        j = i
        while lo <= hi and j < len(cut) and cut[j][0] <= hi:
            if cut[j][0] > lo:
                out.append((lo, cut[j][0] - 1))
            lo = max(lo, cut[j][1] + 1)
            j += 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def cidrs(lo: int, hi: int) -> list[IPNetwork]:
    """The fewest CIDRs covering exactly [lo, hi] (one IP version), in address order. (The topology
    cuts many holes into the same blocks and keeps what it found: `topology._Prefixes`.)"""
    v6 = lo >= V6_BASE
    bits = 128 if v6 else 32
    out: list[IPNetwork] = []
    while lo <= hi:
        # The largest block aligned at lo that ends within hi.
        size = min((lo & -lo).bit_length() - 1 if lo else bits, (hi - lo + 1).bit_length() - 1)
        out.append(IPv6Network((lo - V6_BASE, 128 - size)) if v6 else IPv4Network((lo, 32 - size)))
        lo += 1 << size
    return out


def all_cidrs(spans: list[Interval]) -> list[IPNetwork]:
    """The fewest CIDRs covering exactly the (sorted, disjoint, non-adjacent) intervals."""
    return [net for lo, hi in spans for net in cidrs(lo, hi)]


def prefix_text(net: IPNetwork) -> str:
    """`str(net)`, several times faster for IPv4 (whole-WAN renders format ~200,000 prefixes)."""
    if net.version == 4:
        a = int(net.network_address)
        return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{net.prefixlen}"
    return str(net)
