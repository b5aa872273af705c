"""The IPv6 overlay (issue 14): ULA ranges, tunnel IPv6 allocation and numbering, v6 conflicts.

Property tests compare with an oracle built on the standard library's own idea of assignable
IPv6 hosts (``IPv6Network.hosts()``: every address but the Subnet-Router anycast, all of a /127).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv6Address, IPv6Network, ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.addressing import allocate_tunnel_ip6, parse_ula_range, suggest_ula64
from app.domain.conflicts import (
    assign_tunnel_ip6,
    check_service,
    check_subnet,
    check_wan_ranges,
    number_peers6,
    wan_conflicts,
)
from app.domain.errors import ConflictError, RangeFullError, ValidationError
from app.domain.model import WanSpec
from tests.domain.test_topology import peer, subnet, wan_of

T6 = IPv6Network("fd10:77::/64")
A6 = IPv6Address


def dual(*peers: object, **kw: object) -> WanSpec:
    return wan_of(*peers, tunnel_cidr6=T6, **kw)  # type: ignore[arg-type]


# --- ranges ----------------------------------------------------------------------------------------


def test_suggested_range_is_a_random_slash64_of_fd00_per_rfc4193() -> None:
    assert suggest_ula64(0x10_0077_0000) == IPv6Network("fd10:77::/64")
    assert suggest_ula64(0) == IPv6Network("fd00::/64")


@given(st.integers(0, 2**40 - 1))
def test_suggestion_keeps_all_40_random_bits(bits: int) -> None:
    net = suggest_ula64(bits)
    assert net.prefixlen == 64 and net.subnet_of(IPv6Network("fd00::/8"))
    assert (int(net.network_address) >> 80) & (2**40 - 1) == bits
    assert parse_ula_range(str(net), "tunnel_cidr6", "IPv6 tunnel range") == net


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.0/24", "IPv6 tunnel range must be an IPv6 range; 10.0.0.0/24 is IPv4."),
        (
            "2001:db8::/64",
            "IPv6 tunnel range 2001:db8::/64 is not a unique local address range (fc00::/7, RFC 4193); use a "
            "random /64 from fd00::/8 such as fd10:77::/64.",
        ),
        ("fd10::/32", "IPv6 tunnel range fd10::/32 must be a /48 to /120; a /64 is usual."),
        ("fd10:77::1/64", "fd10:77::1/64 has host bits set; did you mean fd10:77::/64?"),
    ],
)
def test_ula_range_messages(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_ula_range(text, "tunnel_cidr6", "IPv6 tunnel range")
    assert err.value.message == message and err.value.field == "tunnel_cidr6"


# --- allocation ------------------------------------------------------------------------------------


@st.composite
def network_and_used(draw: st.DrawFn) -> tuple[IPv6Network, set[IPv6Address]]:
    prefix = draw(st.integers(120, 128))
    base = draw(st.integers(0, 2**120 - 1)) | (0xFD << 120)
    net = IPv6Network((base >> (128 - prefix) << (128 - prefix), prefix))
    offsets = draw(st.sets(st.integers(0, net.num_addresses - 1), max_size=40))
    return net, {A6(int(net.network_address) + o) for o in offsets}


@given(network_and_used())
def test_allocation_matches_the_standard_librarys_hosts(case: tuple[IPv6Network, set[IPv6Address]]) -> None:
    net, used = case
    free = [a for a in net.hosts() if a not in used]
    if not free:
        with pytest.raises(RangeFullError):
            allocate_tunnel_ip6(net, used)
    else:
        assert allocate_tunnel_ip6(net, used) == free[0]


def test_the_subnet_router_anycast_address_is_never_assigned() -> None:
    assert allocate_tunnel_ip6(T6, []) == A6("fd10:77::1")
    with pytest.raises(ValidationError) as err:
        allocate_tunnel_ip6(T6, [], A6("fd10:77::"))
    assert err.value.message == (
        "Tunnel IPv6 fd10:77:: is the Subnet-Router anycast address of the IPv6 tunnel range fd10:77::/64; "
        "it cannot be assigned."
    )


def test_assign_tunnel_ip6_names_the_owner_of_a_taken_address() -> None:
    wan = dual(replace(peer(1, "hub"), tunnel_ip6=A6("fd10:77::1")))
    assert assign_tunnel_ip6(wan) == A6("fd10:77::2")
    assert assign_tunnel_ip6(wan, A6("fd10:77::99")) == A6("fd10:77::99")
    with pytest.raises(ConflictError) as err:
        assign_tunnel_ip6(wan, A6("fd10:77::1"))
    assert err.value.message == (
        "Tunnel IPv6 fd10:77::1 is already used by peer 'hub'; leave it empty to get the lowest free address "
        "(fd10:77::2)."
    )
    assert assign_tunnel_ip6(wan, A6("fd10:77::1"), exclude_peer_id=1) == A6("fd10:77::1")
    with pytest.raises(ValidationError, match="outside the IPv6 tunnel range"):
        assign_tunnel_ip6(wan, A6("fd10:78::1"))
    v4 = wan_of(peer(1, "hub"))
    assert assign_tunnel_ip6(v4) is None
    with pytest.raises(ValidationError, match="the WAN has no IPv6 tunnel range"):
        assign_tunnel_ip6(v4, A6("fd10:77::5"))


def test_a_new_range_numbers_the_first_hub_first() -> None:
    wan = wan_of(peer(1, "a"), peer(2, "b", hub=True, prio=5), peer(3, "c", hub=True, prio=1), peer(4, "d"))
    got = number_peers6(wan, T6)
    assert {wan.peer(i).name: str(a) for i, a in got.items()} == {
        "c": "fd10:77::1",
        "b": "fd10:77::2",
        "a": "fd10:77::3",
        "d": "fd10:77::4",
    }


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.booleans(), st.none() | st.integers(1, 20)), min_size=1, max_size=12),
    st.sampled_from(["fd10:77::/120", "fd10:77::/124", "fd99::/120"]),
)
def test_numbering_keeps_what_fits_and_gives_everyone_a_unique_address(
    rows: list[tuple[bool, int | None]], new_range: str
) -> None:
    new = IPv6Network(new_range)
    peers = [
        replace(peer(i + 1, f"p{i}", hub=hub), tunnel_ip6=A6(f"fd10:77::{old:x}") if old is not None else None)
        for i, (hub, old) in enumerate(rows)
    ]
    wan = dual(*peers)
    hosts = list(new.hosts())
    if len(peers) > len(hosts):
        with pytest.raises(RangeFullError):
            number_peers6(wan, new)
        return
    got = number_peers6(wan, new)
    assert set(got) == {p.id for p in peers}
    assert len(set(got.values())) == len(peers)
    assert all(a in hosts for a in got.values())
    kept = set()
    for p in peers:  # the first holder of a still-assignable address keeps it
        if p.tunnel_ip6 in hosts and p.tunnel_ip6 not in kept:
            assert got[p.id] == p.tunnel_ip6
            kept.add(p.tunnel_ip6)
    # The others get the lowest free addresses, hubs first.
    fresh = [p for p in peers if got[p.id] not in kept or p.tunnel_ip6 != got[p.id]]
    order = sorted(fresh, key=lambda p: (not p.is_hub, int(p.tunnel_ip), p.id))
    assert [got[p.id] for p in order] == [a for a in hosts if a not in kept][: len(order)]


# --- conflicts -------------------------------------------------------------------------------------


def test_an_ipv6_lan_inside_the_ipv6_tunnel_range_is_refused() -> None:
    wan = dual(peer(1, "a"))
    with pytest.raises(ConflictError) as err:
        check_subnet(wan, 1, ip_network("fd10:77::/48"), False, False)
    assert err.value.message == (
        "fd10:77::/48 overlaps the WAN's IPv6 tunnel range fd10:77::/64. The IPv6 tunnel range holds the peers' "
        "tunnel IPv6 addresses, so this LAN would collide with the overlay itself, routed or not; renumber the "
        "LAN or move the IPv6 tunnel range in the WAN settings."
    )


def test_overlapping_ulas_are_refused_with_the_fix_and_never_natted() -> None:
    wan = dual(peer(1, "a", subnets=(subnet(1, "fd20::/64"),)), peer(2, "b"))
    with pytest.raises(ConflictError) as err:
        check_subnet(wan, 2, ip_network("fd20::/56"), True, False)
    assert err.value.message.startswith("fd20::/56 overlaps fd20::/64 of peer 'a' (routed). ")
    with pytest.raises(ConflictError) as err:
        check_subnet(wan, 2, ip_network("fd20::/56"), True, True)  # Auto-NAT asked: no NAT66
    assert "no NAT66" in err.value.message and err.value.fixes == ("not_routed", "renumber")
    assert check_subnet(wan, 2, ip_network("fd20::/56"), False, False).nat_cidr is None


def test_wan_conflicts_cover_the_ipv6_overlay() -> None:
    wan = dual(
        replace(peer(1, "a", subnets=(subnet(1, "fd10:77::/60"),)), tunnel_ip6=A6("fd10:77::1")),
        replace(peer(2, "b"), tunnel_ip6=A6("fd10:77::1")),
        peer(3, "c"),
    )
    got = [(c.severity, c.kind, c.message) for c in wan_conflicts(wan)]
    assert got == [
        ("critical", "duplicate_tunnel_ip", "Tunnel IPv6 fd10:77::1 is used by both peer 'a' and peer 'b'."),
        ("critical", "tunnel_ip6_missing",
         "Peer 'c' has no tunnel IPv6 address in fd10:77::/64; save the WAN settings to number it."),
        ("critical", "tunnel6_range_overlap", "fd10:77::/60 of peer 'a' overlaps the IPv6 tunnel range fd10:77::/64."),
    ]  # fmt: skip


def test_wan_ranges_in_ipv6() -> None:
    v4 = (ip_network("10.0.0.0/24"), ip_network("10.0.5.0/24"), ip_network("172.16.0.0/12"))
    with pytest.raises(ValidationError) as err:
        check_wan_ranges(*v4, tunnel_cidr6=T6, services_cidr6=IPv6Network("fd10:77::/120"))  # type: ignore[arg-type]
    assert err.value.field == "services_cidr6"
    assert err.value.message.startswith("The IPv6 services range fd10:77::/120 overlaps the IPv6 tunnel range")
    wan = dual(peer(1, "a", subnets=(subnet(1, "fd20::/64"),)))
    with pytest.raises(ConflictError, match="would overlap fd20::/64 of peer 'a'"):
        check_wan_ranges(*v4, wan=wan, tunnel_cidr6=IPv6Network("fd20::/48"))  # type: ignore[arg-type]


def test_services_over_ipv6_need_an_ipv6_target_and_range() -> None:
    owner = replace(peer(1, "a"), tunnel_ip6=A6("fd10:77::1"))
    wan = dual(owner, services_cidr6=IPv6Network("fd10:78::/64"))
    got = check_service(wan, 1, "tcp", ip_address("10.0.0.1"), 80, local_ip6=A6("fd10:77::1"))
    assert (got.shared_ip, got.shared_ip6) == (ip_address("10.0.5.1"), A6("fd10:78::1"))
    assert check_service(wan, 1, "tcp", ip_address("10.0.0.1"), 80).shared_ip6 is None
    with pytest.raises(ValidationError, match="neither this peer's tunnel IPv6"):
        check_service(wan, 1, "tcp", ip_address("10.0.0.1"), 80, local_ip6=A6("fd30::1"))
    with pytest.raises(ValidationError, match="IPv6 is not translated to IPv4"):
        check_service(wan, 1, "tcp", ip_address("10.0.0.1"), 80, shared_ip6=A6("fd10:78::9"))
    with pytest.raises(ValidationError, match="no IPv6 services range"):
        check_service(dual(owner), 1, "tcp", ip_address("10.0.0.1"), 80, local_ip6=A6("fd10:77::1"))
    router = replace(owner, kind="mikrotik")
    with pytest.raises(ValidationError, match="not supported on MikroTik peers yet"):
        check_service(
            dual(router, services_cidr6=IPv6Network("fd10:78::/64")),
            1,
            "tcp",
            ip_address("10.0.0.1"),
            80,
            local_ip6=A6("fd10:77::1"),
        )


def test_the_topology_picture_names_both_tunnel_addresses() -> None:
    from app.domain.topology import build_topology
    from app.domain.topology_svg import render_svg

    wan = dual(replace(peer(1, "hub", hub=True), tunnel_ip6=A6("fd10:77::1")), peer(2, "v4only"))
    svg = render_svg(wan, build_topology(wan)).svg
    assert "tunnel 10.0.0.1\ntunnel fd10:77::1" in svg
    assert "tunnel 10.0.0.2\nendpoint" in svg
