"""Strict parsing, tunnel/service allocation, NAT-pool blocks and range changes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.addressing import (
    allocate_service_ip,
    allocate_tunnel_ip,
    cached_network,
    check_range_change,
    parse_address,
    parse_ipv4_address,
    parse_ipv4_network_strict,
    parse_network_strict,
    smallest_free_block,
)
from app.domain.errors import ConflictError, DomainError, RangeFullError, ValidationError
from app.domain.model import IPNetwork

A = IPv4Address
N = IPv4Network


def error_of(func: object, *args: object) -> DomainError:
    assert callable(func)
    with pytest.raises(DomainError) as info:
        func(*args)
    return info.value


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.0/24", IPv4Network("192.168.1.0/24")),
        (" 10.20.0.0/16 ", IPv4Network("10.20.0.0/16")),
        ("192.168.1.7/32", IPv4Network("192.168.1.7/32")),
        ("10.0.0.0/255.255.255.0", IPv4Network("10.0.0.0/24")),
        ("2001:db8:1::/48", IPv6Network("2001:db8:1::/48")),
        ("fd00::/8", IPv6Network("fd00::/8")),
    ],
)
def test_parse_network_strict_accepts(text: str, expected: IPNetwork) -> None:
    assert parse_network_strict(text, "cidr") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("192.168.1.5/24", "192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?"),
        ("10.1.2.3/8", "10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?"),
        ("2001:db8::1/64", "2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?"),
        (
            "foo",
            "Subnet 'foo' is not a valid network; expected an address and prefix length such as 192.168.1.0/24.",
        ),
        (
            "192.168.1/24",
            "Subnet '192.168.1/24' is not a valid network; expected an address and prefix length such as "
            "192.168.1.0/24.",
        ),
        (
            "192.168.1.0/33",
            "Subnet '192.168.1.0/33' has an invalid prefix length; use /0 to /32 for IPv4 or /0 to /128 for IPv6.",
        ),
        (
            "192.168.1.0/",
            "Subnet '192.168.1.0/' has an invalid prefix length; use /0 to /32 for IPv4 or /0 to /128 for IPv6.",
        ),
        (
            "192.168.1.0",
            "Subnet 192.168.1.0 has no prefix length; write it as address/prefix, e.g. 192.168.1.0/24, or "
            "192.168.1.0/32 for a single host.",
        ),
        (
            "2001:db8::1",
            "Subnet 2001:db8::1 has no prefix length; write it as address/prefix, e.g. 192.168.1.0/24, or "
            "2001:db8::1/128 for a single host.",
        ),
        ("fe80::%eth0/64", "Subnet fe80::%eth0/64: IPv6 zone ids (%...) are not supported."),
        ("", "Subnet is required."),
        ("x" * 101, "Subnet is too long (101 characters); at most 100 are allowed."),
    ],
)
def test_parse_network_strict_golden_messages(text: str, message: str) -> None:
    err = error_of(parse_network_strict, text, "cidr")
    assert isinstance(err, ValidationError)
    assert (err.message, err.field, err.status) == (message, "cidr", 422)


def test_parse_ipv4_only_and_addresses() -> None:
    assert parse_ipv4_network_strict("10.0.0.0/24", "tunnel_cidr", "Tunnel range") == N("10.0.0.0/24")
    err = error_of(parse_ipv4_network_strict, "fd00::/64", "tunnel_cidr", "Tunnel range")
    assert (err.message, err.field) == (
        "Tunnel range must be an IPv4 range; fd00::/64 is IPv6.",
        "tunnel_cidr",
    )
    err = error_of(parse_ipv4_network_strict, "10.0.0.1/24", "tunnel_cidr", "Tunnel range")
    assert err.message == "10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24?"
    assert parse_address("192.168.1.10", "local_ip", "Local IP") == A("192.168.1.10")
    assert parse_address("2001:db8::10", "local_ip", "Local IP") == IPv6Address("2001:db8::10")
    err = error_of(parse_address, "192.168.1.300", "local_ip", "Local IP")
    assert (err.message, err.field) == ("Local IP '192.168.1.300' is not a valid IP address.", "local_ip")
    err = error_of(parse_ipv4_address, "::1", "tunnel_ip", "Tunnel IP")
    assert err.message == "Tunnel IP must be an IPv4 address; ::1 is IPv6."


# --- tunnel IP allocation ----------------------------------------------------------------------


def test_allocate_lowest_free_skips_network_address() -> None:
    net = N("10.0.0.0/24")
    assert allocate_tunnel_ip(net, []) == A("10.0.0.1")
    assert allocate_tunnel_ip(net, [A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.4")]) == A("10.0.0.3")
    # Addresses outside the range do not count.
    assert allocate_tunnel_ip(net, [A("10.9.9.1")]) == A("10.0.0.1")


def test_allocate_never_hands_out_broadcast() -> None:
    net = N("10.0.0.0/29")
    used = [A(f"10.0.0.{i}") for i in range(1, 7)]
    err = error_of(allocate_tunnel_ip, net, used)
    assert isinstance(err, RangeFullError)
    assert (err.code, err.status, err.field) == ("range_full", 409, "tunnel_ip")
    assert err.message == (
        "The tunnel range 10.0.0.0/29 has no free address left (6 in use); widen it in the WAN settings."
    )


def test_allocate_full_slash30_message() -> None:
    err = error_of(allocate_tunnel_ip, N("10.0.0.0/30"), [A("10.0.0.1"), A("10.0.0.2")])
    assert err.message == (
        "The tunnel range 10.0.0.0/30 has no free address left (2 in use); widen it in the WAN settings."
    )


def test_slash31_uses_both_addresses() -> None:
    net = N("10.0.0.0/31")
    assert allocate_tunnel_ip(net, []) == A("10.0.0.0")
    assert allocate_tunnel_ip(net, [A("10.0.0.0")]) == A("10.0.0.1")
    assert allocate_tunnel_ip(net, [], A("10.0.0.1")) == A("10.0.0.1")
    err = error_of(allocate_tunnel_ip, net, [A("10.0.0.0"), A("10.0.0.1")])
    assert err.message == (
        "The tunnel range 10.0.0.0/31 has no free address left (2 in use); widen it in the WAN settings."
    )


def test_slash32_has_exactly_one_address() -> None:
    net = N("10.0.0.7/32")
    assert allocate_tunnel_ip(net, []) == A("10.0.0.7")
    err = error_of(allocate_tunnel_ip, net, [A("10.0.0.7")])
    assert err.message == (
        "The tunnel range 10.0.0.7/32 has no free address left (1 in use); widen it in the WAN settings."
    )


def test_requested_address() -> None:
    net = N("10.0.0.0/24")
    used = [A("10.0.0.1"), A("10.0.0.2")]
    assert allocate_tunnel_ip(net, used, A("10.0.0.50")) == A("10.0.0.50")

    err = error_of(allocate_tunnel_ip, net, used, A("10.0.1.5"))
    assert isinstance(err, ValidationError)
    assert (err.message, err.field) == (
        "Tunnel IP 10.0.1.5 is outside the tunnel range 10.0.0.0/24.",
        "tunnel_ip",
    )
    err = error_of(allocate_tunnel_ip, net, used, A("10.0.0.0"))
    assert err.message == (
        "Tunnel IP 10.0.0.0 is the network address of the tunnel range 10.0.0.0/24; it cannot be assigned."
    )
    err = error_of(allocate_tunnel_ip, net, used, A("10.0.0.255"))
    assert err.message == (
        "Tunnel IP 10.0.0.255 is the broadcast address of the tunnel range 10.0.0.0/24; it cannot be assigned."
    )
    err = error_of(allocate_tunnel_ip, net, used, A("10.0.0.2"))
    assert isinstance(err, ConflictError)
    assert (err.status, err.fixes) == (409, ("other_address",))
    assert err.message == (
        "Tunnel IP 10.0.0.2 is already in use; leave it empty to get the lowest free address (10.0.0.3)."
    )
    err = error_of(allocate_tunnel_ip, N("10.0.0.0/30"), used, A("10.0.0.2"))
    assert err.message == (
        "Tunnel IP 10.0.0.2 is already in use, and the tunnel range 10.0.0.0/30 has no free address left "
        "(2 in use); widen it in the WAN settings."
    )


def test_service_ip_allocation_messages() -> None:
    net = N("10.0.5.0/24")
    assert allocate_service_ip(net, [A("10.0.5.1")]) == A("10.0.5.2")
    err = error_of(allocate_service_ip, N("10.0.5.0/30"), [A("10.0.5.1"), A("10.0.5.2")])
    assert (err.message, err.field) == (
        "The services range 10.0.5.0/30 has no free address left (2 in use); widen it in the WAN settings.",
        "shared_ip",
    )
    err = error_of(allocate_service_ip, net, [], A("10.0.6.1"))
    assert err.message == "Shared IP 10.0.6.1 is outside the services range 10.0.5.0/24."


def test_allocation_in_a_slash16_with_1000_used() -> None:
    net = N("10.100.0.0/16")
    used = {A(int(net.network_address) + i) for i in range(1, 1001)}
    assert allocate_tunnel_ip(net, used) == A("10.100.3.233")


@st.composite
def network_and_used(draw: st.DrawFn) -> tuple[IPv4Network, set[IPv4Address]]:
    prefix = draw(st.integers(min_value=22, max_value=32))
    base = draw(st.integers(min_value=0, max_value=2**32 - 1))
    net = IPv4Network((base >> (32 - prefix) << (32 - prefix), prefix))
    offsets = draw(st.sets(st.integers(min_value=0, max_value=net.num_addresses - 1), max_size=40))
    return net, {A(int(net.network_address) + o) for o in offsets}


def _assignable(net: IPv4Network) -> list[IPv4Address]:
    if net.prefixlen >= 31:
        return list(net)
    return list(net.hosts())


@given(network_and_used())
def test_allocation_matches_brute_force(case: tuple[IPv4Network, set[IPv4Address]]) -> None:
    net, used = case
    free = [a for a in _assignable(net) if a not in used]
    if not free:
        with pytest.raises(RangeFullError):
            allocate_tunnel_ip(net, used)
    else:
        assert allocate_tunnel_ip(net, used) == free[0]


@given(
    st.integers(min_value=24, max_value=32),
    st.integers(min_value=0, max_value=2**24 - 1),
)
@settings(max_examples=60)
def test_repeated_allocation_is_unique_inside_and_never_network_or_broadcast(prefix: int, base: int) -> None:
    net = IPv4Network(((base << 8) >> (32 - prefix) << (32 - prefix), prefix))
    used: list[IPv4Address] = []
    while True:
        try:
            ip = allocate_tunnel_ip(net, used)
        except RangeFullError:
            break
        assert ip in net
        if net.prefixlen < 31:
            assert ip not in (net.network_address, net.broadcast_address)
        assert ip not in used
        used.append(ip)
    assert len(used) == (net.num_addresses if prefix >= 31 else net.num_addresses - 2)
    assert sorted(used) == _assignable(net)


# --- NAT pool blocks ---------------------------------------------------------------------------

POOL = N("172.16.0.0/12")


def test_smallest_free_block_concrete_addresses() -> None:
    assert smallest_free_block(POOL, 24, []) == N("172.16.0.0/24")
    assert smallest_free_block(POOL, 24, [N("172.16.0.0/24")]) == N("172.16.1.0/24")
    # /23 alignment: 172.16.1.0/23 is not a block, so the next aligned one is 172.16.2.0/23.
    assert smallest_free_block(POOL, 23, [N("172.16.0.0/24")]) == N("172.16.2.0/23")
    # A hole is reused.
    assert smallest_free_block(POOL, 24, [N("172.16.0.0/24"), N("172.16.2.0/24")]) == N("172.16.1.0/24")
    # A small block inside a larger free area.
    assert smallest_free_block(POOL, 30, [N("172.16.0.0/30"), N("172.16.0.8/29")]) == N("172.16.0.4/30")
    # A taken block larger than the request.
    assert smallest_free_block(POOL, 26, [N("172.16.0.0/16")]) == N("172.17.0.0/26")
    # Things outside the pool and IPv6 prefixes are ignored.
    assert smallest_free_block(POOL, 24, [N("10.0.0.0/8"), IPv6Network("fd00::/8")]) == N("172.16.0.0/24")
    assert smallest_free_block(POOL, 32, [N("172.16.0.0/32")]) == N("172.16.0.1/32")
    assert smallest_free_block(POOL, 12, []) == POOL


def test_smallest_free_block_full() -> None:
    err = error_of(smallest_free_block, N("172.16.0.0/23"), 24, [N("172.16.0.0/24"), N("172.16.1.0/24")])
    assert isinstance(err, RangeFullError)
    assert err.status == 409
    assert err.message == (
        "The NAT pool 172.16.0.0/23 has no free /24 block left; widen the NAT pool in the WAN settings "
        "or mark the subnet not routed."
    )
    err = error_of(smallest_free_block, N("172.16.0.0/23"), 23, [N("172.16.1.128/32")])
    assert err.message.startswith("The NAT pool 172.16.0.0/23 has no free /23 block left")
    err = error_of(smallest_free_block, POOL, 8, [])
    assert err.message == (
        "A /8 block does not fit in the NAT pool 172.16.0.0/12; widen the NAT pool in the WAN settings or "
        "mark the subnet not routed."
    )
    err = error_of(smallest_free_block, N("172.16.1.0/24"), 25, [N("172.16.0.0/23")], "cidr")
    assert err.field == "cidr"


def test_smallest_free_block_with_2000_taken() -> None:
    taken: list[IPNetwork] = [IPv4Network((int(POOL.network_address) + i * 256, 24)) for i in range(2000)]
    taken.reverse()
    assert smallest_free_block(POOL, 24, taken) == N("172.23.208.0/24")


@given(
    st.integers(min_value=26, max_value=31),
    st.lists(st.tuples(st.integers(0, 255), st.integers(24, 32)), max_size=12),
)
def test_smallest_free_block_matches_brute_force(prefix: int, raw_taken: list[tuple[int, int]]) -> None:
    pool = N("10.50.0.0/24")
    taken = [ip_network((int(pool.network_address) + off, plen), strict=False) for off, plen in raw_taken]
    candidates = [b for b in pool.subnets(new_prefix=prefix) if not any(b.overlaps(t) for t in taken)]
    if not candidates:
        with pytest.raises(RangeFullError):
            smallest_free_block(pool, prefix, taken)
    else:
        block = smallest_free_block(pool, prefix, taken)
        assert block == candidates[0]
        assert block.prefixlen == prefix
        assert block.subnet_of(pool)


# --- range changes -----------------------------------------------------------------------------


def test_range_change_growing_or_unchanged_is_fine() -> None:
    users = [("peer 'office'", A("10.0.0.20"))]
    check_range_change(N("10.0.0.0/24"), N("10.0.0.0/24"), users, "tunnel")
    check_range_change(N("10.0.0.0/24"), N("10.0.0.0/16"), users, "tunnel")
    check_range_change(N("10.0.0.0/24"), N("10.0.0.0/27"), users, "tunnel")


def test_range_change_refused_names_what_is_in_use() -> None:
    users = [("peer 'office'", A("10.0.0.20")), ("peer 'lab'", A("10.0.0.15")), ("peer 'ok'", A("10.0.0.2"))]
    err = error_of(check_range_change, N("10.0.0.0/24"), N("10.0.0.0/28"), users, "tunnel")
    assert isinstance(err, ConflictError)
    assert (err.field, err.status, err.fixes) == ("tunnel_cidr", 409, ("move_first", "change_range"))
    assert err.message == (
        "The tunnel range cannot change from 10.0.0.0/24 to 10.0.0.0/28 because it is in use: "
        "10.0.0.20 (peer 'office') would fall outside it; 10.0.0.15 (peer 'lab') would become its broadcast "
        "address. Move or delete those first, or choose a range that still contains them."
    )
    err = error_of(check_range_change, N("10.0.0.0/24"), N("10.0.0.16/28"), [("peer 'x'", A("10.0.0.16"))], "tunnel")
    assert "10.0.0.16 (peer 'x') would become its network address" in err.message


def test_range_change_nat_pool_blocks_and_many_items() -> None:
    users: list[tuple[str, IPv4Address | IPv4Network]] = [
        (f"Auto-NAT of 192.168.{i}.0/24 of peer 'p{i}'", N(f"172.17.{i}.0/24")) for i in range(7)
    ]
    users.append(("Auto-NAT of 10.1.0.0/24 of peer 'in'", N("172.16.0.0/24")))
    err = error_of(check_range_change, N("172.16.0.0/12"), N("172.16.0.0/16"), users, "nat_pool")
    assert err.field == "nat_pool_cidr"
    assert err.message == (
        "The NAT pool cannot change from 172.16.0.0/12 to 172.16.0.0/16 because it is in use: "
        "172.17.0.0/24 (Auto-NAT of 192.168.0.0/24 of peer 'p0') would fall outside it; "
        "172.17.1.0/24 (Auto-NAT of 192.168.1.0/24 of peer 'p1') would fall outside it; "
        "172.17.2.0/24 (Auto-NAT of 192.168.2.0/24 of peer 'p2') would fall outside it; "
        "172.17.3.0/24 (Auto-NAT of 192.168.3.0/24 of peer 'p3') would fall outside it; "
        "172.17.4.0/24 (Auto-NAT of 192.168.4.0/24 of peer 'p4') would fall outside it; and 2 more. "
        "Move or delete those first, or choose a range that still contains them."
    )


def test_range_change_services() -> None:
    err = error_of(
        check_range_change,
        N("10.0.5.0/24"),
        N("10.0.6.0/24"),
        [("service 'web' of peer 'a'", A("10.0.5.1"))],
        "services",
    )
    assert err.field == "services_cidr"
    assert err.message.startswith(
        "The services range cannot change from 10.0.5.0/24 to 10.0.6.0/24 because it is in use: "
        "10.0.5.1 (service 'web' of peer 'a') would fall outside it."
    )


def _parsed(text: str, strict: bool) -> object:
    try:
        return ip_network(text, strict=strict)
    except ValueError as exc:
        return ("ValueError", str(exc))


def _cached(text: str, strict: bool) -> object:
    try:
        return cached_network(text, strict=strict)
    except ValueError as exc:
        return ("ValueError", str(exc))


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    "text",
    ["10.0.0.0/8", "10.1.2.3/8", "10.1.2.3/32", "0.0.0.0/0", "1.2.3.4/0", "255.255.255.255/32", "10.0.0.0/33",
     "256.0.0.0/8", "10.00.0.0/16", "010.0.0.0/8", "10.0.0.0/08", "10.0.0.0", "10.0.0.0/255.0.0.0", " 10.0.0.0/8",
     "10.0.0.0/8 ", "10.0.0/8", "fd00::/64", "fd00::1/64", "", "x", "1.2.3.4/-1", "192.168.88.0/24"],
)  # fmt: skip
def test_cached_network_is_ip_network(text: str, strict: bool) -> None:
    # The deploy path parses router read-backs with it: same networks, same refusals as ipaddress.
    assert _cached(text, strict) == _parsed(text, strict)
    assert type(_cached(text, strict)) is type(_parsed(text, strict))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans())
def test_cached_network_is_ip_network_for_any_ipv4_prefix(packed: int, prefixlen: int, strict: bool) -> None:
    text = f"{IPv4Address(packed)}/{prefixlen}"
    assert _cached(text, strict) == _parsed(text, strict)
