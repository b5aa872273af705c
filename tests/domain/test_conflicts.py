"""Conflict rules (DESIGN.md §4): subnets, Auto-NAT, services, tunnel IPs, WAN ranges, whole-WAN scan."""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.conflicts import (
    assign_tunnel_ip,
    auto_nat_existing,
    check_service,
    check_subnet,
    check_wan_ranges,
    overlapping_pairs,
    range_users,
    wan_conflicts,
)
from app.domain.errors import ConflictError, DomainError, RangeFullError, ValidationError
from app.domain.model import IPNetwork, PeerSpec, ServiceSpec, SubnetSpec, WanSpec

A = IPv4Address
N = IPv4Network
KEY = "+5qSHe0iBA4z9QuQ5dd5hH2+ZSNHyztwDUBvVrmdBU0="


def sub(id_: int, cidr: str, routed: bool = True, nat: str | None = None) -> SubnetSpec:
    return SubnetSpec(id=id_, cidr=ip_network(cidr), routed=routed, nat_cidr=ip_network(nat) if nat else None)


def svc(id_: int, name: str, shared: str, port: int, local: str = "192.168.1.10", protocol: str = "tcp") -> ServiceSpec:
    assert protocol in ("tcp", "udp")
    return ServiceSpec(
        id=id_,
        name=name,
        protocol="tcp" if protocol == "tcp" else "udp",
        local_ip=A(local),
        local_port=port,
        shared_ip=A(shared),
        shared_port=port,
    )


def peer(
    id_: int,
    name: str,
    ip: str,
    subnets: tuple[SubnetSpec, ...] = (),
    services: tuple[ServiceSpec, ...] = (),
) -> PeerSpec:
    return PeerSpec(
        id=id_,
        uuid=f"uuid-{id_}",
        name=name,
        kind="server",
        tunnel_ip=A(ip),
        listen_port=51820,
        public_key=KEY,
        subnets=subnets,
        services=services,
    )


def make_wan(
    *peers: PeerSpec, tunnel: str = "10.0.0.0/24", services: str = "10.0.5.0/24", pool: str = "172.16.0.0/12"
) -> WanSpec:
    return WanSpec(
        id=1,
        name="Home",
        tunnel_cidr=N(tunnel),
        services_cidr=N(services),
        nat_pool_cidr=N(pool),
        peers=peers,
    )


def conflict_of(func: object, *args: object, **kwargs: object) -> DomainError:
    assert callable(func)
    with pytest.raises(DomainError) as info:
        func(*args, **kwargs)
    return info.value


OFFICE = peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24"), sub(12, "192.168.50.0/24", routed=False)))
HOME = peer(2, "home", "10.0.0.2", (sub(21, "10.20.0.0/16"),))
WAN = make_wan(OFFICE, HOME, peer(3, "new", "10.0.0.3"))


# --- check_subnet: critical ranges -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        (
            "10.0.0.0/16",
            "10.0.0.0/16 overlaps the WAN's tunnel range 10.0.0.0/24. The tunnel range holds the "
            "peers' tunnel "
            "IPs, so this LAN would collide with the overlay itself, routed or not; renumber the LAN "
            "or move the "
            "tunnel range in the WAN settings.",
        ),
        (
            "10.0.5.128/25",
            "10.0.5.128/25 overlaps the WAN's services range 10.0.5.0/24. The services range holds "
            "the shared "
            "IPs of published services, so this LAN would collide with the overlay itself, routed or not; "
            "renumber the LAN or move the services range in the WAN settings.",
        ),
        (
            "172.20.0.0/24",
            "172.20.0.0/24 overlaps the WAN's NAT pool 172.16.0.0/12. The NAT pool holds the translated "
            "prefixes of NAT'd LANs, so this LAN would collide with the overlay itself, routed or not; "
            "renumber the LAN or move the NAT pool in the WAN settings.",
        ),
    ],
)
@pytest.mark.parametrize("routed", [True, False])
def test_subnet_overlapping_a_wan_range_is_always_refused(cidr: str, message: str, routed: bool) -> None:
    err = conflict_of(check_subnet, WAN, 3, ip_network(cidr), routed, True)
    assert isinstance(err, ConflictError)
    assert (err.message, err.field, err.status, err.code) == (message, "cidr", 409, "conflict")
    assert err.fixes == ("renumber", "change_range")


# --- check_subnet: peers -----------------------------------------------------------------------


def test_free_subnet_is_accepted_without_nat() -> None:
    decision = check_subnet(WAN, 3, N("192.168.2.0/24"), True, False)
    assert (decision.nat_cidr, decision.notes) == (None, ())
    # auto_nat only acts on a conflict.
    assert check_subnet(WAN, 3, N("192.168.2.0/24"), True, True).nat_cidr is None


def test_routed_overlap_is_refused_with_both_fixes() -> None:
    err = conflict_of(check_subnet, WAN, 3, N("192.168.1.0/24"), True, False)
    assert isinstance(err, ConflictError)
    assert err.message == (
        "192.168.1.0/24 overlaps 192.168.1.0/24 of peer 'office' (routed). Two routed LANs with overlapping "
        "addresses cannot both be reached by their real addresses: tick 'Auto-NAT if conflict' to publish "
        "this one under a free block of the NAT pool 172.16.0.0/12, or mark it not routed."
    )
    assert (err.fixes, err.other_peer_id, err.other_subnet_id) == (("auto_nat", "not_routed"), 1, 11)


def test_routed_overlap_with_a_larger_or_smaller_prefix() -> None:
    err = conflict_of(check_subnet, WAN, 3, N("10.20.30.0/24"), True, False)
    assert err.message.startswith("10.20.30.0/24 overlaps 10.20.0.0/16 of peer 'home' (routed). ")
    err = conflict_of(check_subnet, WAN, 3, N("192.168.0.0/16"), True, False)
    assert err.message.startswith("192.168.0.0/16 overlaps 192.168.1.0/24 of peer 'office' (routed). ")


def test_routed_overlap_counts_the_others() -> None:
    wan = make_wan(OFFICE, HOME, peer(4, "lab", "10.0.0.4", (sub(41, "192.168.1.0/25"),)), peer(3, "new", "10.0.0.3"))
    err = conflict_of(check_subnet, wan, 3, N("192.168.0.0/16"), True, False)
    assert err.message.startswith(
        "192.168.0.0/16 overlaps 192.168.1.0/24 of peer 'office' (routed) and 1 other routed subnet. "
    )
    wan = make_wan(*wan.peers, peer(5, "x", "10.0.0.5", (sub(51, "192.168.9.0/24"),)))
    err = conflict_of(check_subnet, wan, 3, N("192.168.0.0/16"), True, False)
    assert "(routed) and 2 other routed subnets. " in err.message


def test_routed_overlap_with_a_natted_subnet_names_its_state() -> None:
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24", nat="172.16.0.0/24"),)),
        peer(3, "new", "10.0.0.3"),
    )
    err = conflict_of(check_subnet, wan, 3, N("192.168.1.0/24"), True, False)
    assert err.message.startswith(
        "192.168.1.0/24 overlaps 192.168.1.0/24 of peer 'office' (routed, NAT as 172.16.0.0/24). "
    )


def test_routed_overlap_with_a_legacy_nat_prefix_outside_the_pool() -> None:
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24", nat="100.64.0.0/24"),)),
        peer(3, "new", "10.0.0.3"),
    )
    err = conflict_of(check_subnet, wan, 3, N("100.64.0.0/22"), True, False)
    assert err.message.startswith(
        "100.64.0.0/22 overlaps 100.64.0.0/24, the NAT translation of 192.168.1.0/24 of peer 'office'. "
    )


def test_auto_nat_assigns_the_lowest_free_block_of_the_same_size() -> None:
    decision = check_subnet(WAN, 3, N("192.168.1.0/24"), True, True)
    assert decision.nat_cidr == N("172.16.0.0/24")
    assert decision.notes == (
        "192.168.1.0/24 overlaps 192.168.1.0/24 of peer 'office' (routed); other peers will reach it as "
        "172.16.0.0/24 (Auto-NAT).",
    )
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24", nat="172.16.0.0/24"),)),
        peer(2, "home", "10.0.0.2", (sub(21, "192.168.1.0/24", nat="172.16.2.0/24"),)),
        peer(3, "new", "10.0.0.3"),
    )
    assert check_subnet(wan, 3, N("192.168.1.0/24"), True, True).nat_cidr == N("172.16.1.0/24")
    assert check_subnet(wan, 3, N("192.168.0.0/23"), True, True).nat_cidr == N("172.16.4.0/23")


def test_not_routed_subnets_never_conflict_with_other_peers() -> None:
    assert check_subnet(WAN, 3, N("192.168.1.0/24"), False, False).nat_cidr is None
    # Another peer's not-routed LAN is no obstacle to a routed one either.
    assert check_subnet(WAN, 3, N("192.168.50.0/24"), True, False).nat_cidr is None


def test_same_peer_overlap_is_refused_even_when_not_routed() -> None:
    err = conflict_of(check_subnet, WAN, 1, N("192.168.1.128/25"), False, True)
    assert isinstance(err, ConflictError)
    assert err.message == (
        "192.168.1.128/25 overlaps 192.168.1.0/24, which peer 'office' already has; a peer cannot host "
        "overlapping LANs. Edit the existing subnet instead."
    )
    assert (err.fixes, err.other_peer_id, err.other_subnet_id) == (("edit_existing",), 1, 11)


def test_editing_a_subnet_excludes_itself() -> None:
    assert check_subnet(WAN, 1, N("192.168.0.0/23"), True, False, exclude_subnet_id=11).nat_cidr is None
    # "NAT off" on a subnet that overlaps another peer's routed LAN is refused.
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24"),)),
        peer(2, "home", "10.0.0.2", (sub(21, "192.168.1.0/24", nat="172.16.0.0/24"),)),
    )
    err = conflict_of(check_subnet, wan, 2, N("192.168.1.0/24"), True, False, exclude_subnet_id=21)
    assert err.message.startswith("192.168.1.0/24 overlaps 192.168.1.0/24 of peer 'office' (routed). ")
    # Re-running auto-NAT for it may reuse its own old block.
    assert check_subnet(wan, 2, N("192.168.1.0/24"), True, True, exclude_subnet_id=21).nat_cidr == N("172.16.0.0/24")


def test_ipv6_subnets() -> None:
    wan = make_wan(peer(1, "office", "10.0.0.1", (sub(11, "2001:db8:1::/48"),)), peer(3, "new", "10.0.0.3"))
    assert check_subnet(wan, 3, ip_network("2001:db8:2::/48"), True, False).nat_cidr is None
    err = conflict_of(check_subnet, wan, 3, ip_network("2001:db8:1:5::/64"), True, True)
    assert err.message == (
        "2001:db8:1:5::/64 is IPv6, and WireWAN does not NAT IPv6 (no NAT66): IPv6 prefixes, ULAs included, "
        "are meant to be unique. Re-address this LAN (for a ULA, a fresh random /64 from fd00::/8) or mark it "
        "not routed."
    )
    assert isinstance(err, ConflictError) and err.fixes == ("not_routed", "renumber")


def test_nat_pool_full() -> None:
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24", nat="172.16.0.0/24"),)),
        peer(2, "home", "10.0.0.2", (sub(21, "192.168.1.0/24", nat="172.16.1.0/24"),)),
        peer(3, "new", "10.0.0.3"),
        pool="172.16.0.0/23",
    )
    err = conflict_of(check_subnet, wan, 3, N("192.168.1.0/24"), True, True)
    assert isinstance(err, RangeFullError)
    assert (err.field, err.status) == ("cidr", 409)
    assert err.message == (
        "The NAT pool 172.16.0.0/23 has no free /24 block left; widen the NAT pool in the WAN settings or "
        "mark the subnet not routed."
    )


def test_auto_nat_existing() -> None:
    wan = make_wan(
        peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24"),)),
        peer(2, "home", "10.0.0.2", (sub(21, "192.168.1.0/24"), sub(22, "192.168.7.0/24", nat="172.16.0.0/24"))),
    )
    assert auto_nat_existing(wan, 2, 21) == N("172.16.1.0/24")
    assert auto_nat_existing(wan, 2, 22) == N("172.16.0.0/24")
    with pytest.raises(KeyError):
        auto_nat_existing(wan, 2, 99)
    with pytest.raises(KeyError):
        auto_nat_existing(wan, 9, 21)


# --- hypothesis: check_subnet and wan_conflicts agree with brute force -------------------------

# Small prefixes in 10.0.0.0/21: some hit the tunnel range (10.0.0.0/24) or the services range
# (10.0.5.0/24), many overlap each other.
cidrs = st.builds(
    lambda off, plen: ip_network((0x0A000000 + off * 64, plen), strict=False),
    st.integers(0, 31),
    st.integers(21, 26),
)
subnet_shapes = st.tuples(cidrs, st.booleans(), st.booleans())


@st.composite
def random_wans(draw: st.DrawFn) -> WanSpec:
    n_peers = draw(st.integers(1, 5))
    next_id = itertools.count(100)
    nat_blocks = itertools.count(0)
    peers = []
    for pid in range(1, n_peers + 1):
        shapes = draw(st.lists(subnet_shapes, max_size=4))
        subnets = tuple(
            SubnetSpec(
                id=next(next_id),
                cidr=c,
                routed=routed,
                nat_cidr=N((0xAC100000 + next(nat_blocks) * 2**10, 22)) if natted and routed else None,
            )
            for c, routed, natted in shapes
        )
        peers.append(peer(pid, f"p{pid}", f"10.0.0.{pid}", subnets))
    return make_wan(*peers)


def brute_force_refuses(wan: WanSpec, peer_id: int, cidr: IPNetwork, routed: bool) -> bool:
    if any(cidr.overlaps(r) for r in (wan.tunnel_cidr, wan.services_cidr, wan.nat_pool_cidr)):
        return True
    for p in wan.peers:
        for s in p.subnets:
            if p.id == peer_id and cidr.overlaps(s.cidr):
                return True
            clash = cidr.overlaps(s.cidr) or (s.nat_cidr is not None and cidr.overlaps(s.nat_cidr))
            if p.id != peer_id and routed and s.routed and clash:
                return True
    return False


@given(random_wans(), st.integers(1, 6), cidrs, st.booleans())
@settings(max_examples=300)
def test_check_subnet_agrees_with_brute_force(wan: WanSpec, peer_id: int, cidr: IPNetwork, routed: bool) -> None:
    expected = brute_force_refuses(wan, peer_id, cidr, routed)
    try:
        decision = check_subnet(wan, peer_id, cidr, routed, False)
    except ConflictError:
        assert expected
    else:
        assert not expected
        assert decision.nat_cidr is None


@given(random_wans(), st.integers(1, 6), cidrs)
@settings(max_examples=200)
def test_auto_nat_block_is_fresh(wan: WanSpec, peer_id: int, cidr: IPNetwork) -> None:
    try:
        decision = check_subnet(wan, peer_id, cidr, True, True)
    except ConflictError:
        return
    if decision.nat_cidr is None:
        return
    assert decision.nat_cidr.prefixlen == cidr.prefixlen
    assert decision.nat_cidr.subnet_of(wan.nat_pool_cidr)  # type: ignore[arg-type]
    for p in wan.peers:
        for s in p.subnets:
            assert not decision.nat_cidr.overlaps(s.advertised)


@given(random_wans())
@settings(max_examples=300)
def test_wan_conflicts_agree_with_brute_force(wan: WanSpec) -> None:
    flat = [(p, s) for p in wan.peers for s in p.subnets]
    found = wan_conflicts(wan)

    def pairs(kind: str) -> set[frozenset[int]]:
        return {frozenset((c.subnet_id or 0, c.other_subnet_id or 0)) for c in found if c.kind == kind}

    expected_peer = set()
    expected_own = set()
    expected_nat = set()
    for (pa, sa), (pb, sb) in itertools.combinations(flat, 2):
        if sa.cidr.overlaps(sb.cidr):
            if pa.id == pb.id:
                expected_own.add(frozenset((sa.id, sb.id)))
            elif sa.routed and sb.routed and sa.nat_cidr is None and sb.nat_cidr is None:
                expected_peer.add(frozenset((sa.id, sb.id)))
        if (
            sa.routed
            and sb.routed
            and (sa.nat_cidr is not None or sb.nat_cidr is not None)
            and sa.advertised.overlaps(sb.advertised)
        ):
            expected_nat.add(frozenset((sa.id, sb.id)))
    assert pairs("peer_subnet_overlap") == expected_peer
    assert pairs("own_subnet_overlap") == expected_own
    # LAN overlaps are listed in the order a sweep over every LAN finds them.
    sweep = [
        frozenset((flat[i][1].id, flat[j][1].id))
        for i, j in overlapping_pairs(s.cidr for _, s in flat)
        if flat[i][0].id == flat[j][0].id
        or (flat[i][1].routed and flat[j][1].routed and flat[i][1].nat_cidr is None and flat[j][1].nat_cidr is None)
    ]
    lan_kinds = ("own_subnet_overlap", "peer_subnet_overlap")
    assert [frozenset((c.subnet_id, c.other_subnet_id)) for c in found if c.kind in lan_kinds] == sweep
    assert pairs("nat_overlap") == expected_nat
    ranges = {"tunnel_range_overlap": wan.tunnel_cidr, "services_range_overlap": wan.services_cidr}
    for kind, rng in ranges.items():
        assert {c.subnet_id for c in found if c.kind == kind} == {s.id for _, s in flat if s.cidr.overlaps(rng)}
    severities = [c.severity for c in found]
    assert severities == sorted(severities, key=lambda s: s != "critical")


@given(st.lists(cidrs, max_size=30))
def test_overlapping_pairs_matches_pairwise(nets: list[IPNetwork]) -> None:
    got = {frozenset(p) for p in overlapping_pairs(nets)}
    want = {frozenset((i, j)) for i, j in itertools.combinations(range(len(nets)), 2) if nets[i].overlaps(nets[j])}
    assert got == want
    assert len(list(overlapping_pairs(nets))) == len(want)


def test_overlapping_pairs_ignores_mixed_versions() -> None:
    assert list(overlapping_pairs([ip_network("0.0.0.0/0"), ip_network("::/0")])) == []


# --- wan_conflicts: golden messages ------------------------------------------------------------


def test_wan_conflicts_golden() -> None:
    wan = make_wan(
        peer(
            1,
            "office",
            "10.0.0.1",
            (
                sub(11, "192.168.1.0/24"),
                sub(12, "10.0.0.128/25", routed=False),
                sub(13, "192.168.1.0/25", routed=False),
            ),
            (svc(101, "web", "10.0.5.1", 443),),
        ),
        peer(
            2,
            "home",
            "10.0.0.1",
            (sub(21, "192.168.1.0/24"), sub(22, "192.168.9.0/24", nat="172.16.0.0/24")),
            (svc(201, "ssh", "10.0.5.1", 443), svc(202, "far", "10.9.9.9", 22)),
        ),
        peer(3, "lab", "10.0.1.7", (sub(31, "192.168.7.0/24", nat="172.16.0.0/23"), sub(32, "172.16.8.0/24"))),
    )
    got = [
        (c.severity, c.kind, c.message, c.peer_id, c.subnet_id, c.other_peer_id, c.other_subnet_id)
        for c in wan_conflicts(wan)
    ]
    assert got == [
        (
            "critical",
            "duplicate_tunnel_ip",
            "Tunnel IP 10.0.0.1 is used by both peer 'office' and peer 'home'.",
            2,
            None,
            1,
            None,
        ),
        (
            "critical",
            "tunnel_ip_outside_range",
            "Tunnel IP 10.0.1.7 of peer 'lab' is outside the tunnel range 10.0.0.0/24.",
            3,
            None,
            None,
            None,
        ),
        (
            "critical",
            "tunnel_range_overlap",
            "10.0.0.128/25 of peer 'office' overlaps the tunnel range 10.0.0.0/24.",
            1,
            12,
            None,
            None,
        ),
        (
            "critical",
            "nat_pool_overlap",
            "172.16.8.0/24 of peer 'lab' overlaps the NAT pool 172.16.0.0/12.",
            3,
            32,
            None,
            None,
        ),
        (
            "critical",
            "nat_overlap",
            "172.16.0.0/23 (Auto-NAT of 192.168.7.0/24 of peer 'lab') and 172.16.0.0/24 (Auto-NAT of "
            "192.168.9.0/24 of peer 'home') are published under overlapping prefixes; other peers "
            "cannot tell "
            "the two LANs apart. Turn NAT off and Auto-NAT again on one of them.",
            3,
            31,
            2,
            22,
        ),
        (
            "critical",
            "service_ip_shared",
            "Shared IP 10.0.5.1 is used by service 'web' of peer 'office' and service 'ssh' of peer 'home'; "
            "a shared IP routes to one peer only.",
            2,
            None,
            1,
            None,
        ),
        (
            "critical",
            "duplicate_service",
            "10.0.5.1:443/tcp is published twice: by service 'web' of peer 'office' and service 'ssh' of peer 'home'.",
            2,
            None,
            1,
            None,
        ),
        (
            "critical",
            "service_ip_outside_range",
            "Shared IP 10.9.9.9 of service 'far' (peer 'home') is outside the services range "
            "10.0.5.0/24 or not "
            "assignable in it.",
            2,
            None,
            None,
            None,
        ),
        (
            "warning",
            "peer_subnet_overlap",
            "192.168.1.0/24 of peer 'office' overlaps 192.168.1.0/24 of peer 'home' (both routed, no "
            "NAT): other "
            "peers cannot tell which LAN an address belongs to. Use Auto-NAT on one of them or mark "
            "one not routed.",
            1,
            11,
            2,
            21,
        ),
        (
            "warning",
            "own_subnet_overlap",
            "192.168.1.0/24 and 192.168.1.0/25 of peer 'office' overlap; a peer cannot host overlapping LANs.",
            1,
            11,
            1,
            13,
        ),
    ]
    assert wan_conflicts(wan)[0].to_dict() == {
        "severity": "critical",
        "kind": "duplicate_tunnel_ip",
        "message": "Tunnel IP 10.0.0.1 is used by both peer 'office' and peer 'home'.",
        "peer_id": 2,
        "subnet_id": None,
        "other_peer_id": 1,
        "other_subnet_id": None,
    }


def test_wan_conflicts_range_overlap_and_clean_wan() -> None:
    assert wan_conflicts(WAN) == []
    wan = make_wan(services="10.0.0.128/25")
    assert [c.message for c in wan_conflicts(wan)] == [
        "The services range 10.0.0.128/25 overlaps the tunnel range 10.0.0.0/24."
    ]
    assert wan_conflicts(make_wan(peer(1, "a", "10.0.0.0")))[0].message == (
        "Tunnel IP 10.0.0.0 of peer 'a' is not an assignable address of the tunnel range 10.0.0.0/24."
    )


def test_wan_conflicts_at_1000_peers_2000_subnets() -> None:
    peers = []
    for i in range(1000):
        a, b = divmod(i, 250)
        subnets = (
            sub(2 * i, f"10.{100 + a}.{b}.0/24"),
            sub(2 * i + 1, f"192.168.{i % 256}.{(i // 256) * 64}/26"),
        )
        peers.append(peer(i + 1, f"p{i}", f"10.0.{i // 250}.{i % 250 + 1}", subnets))
    wan = make_wan(*peers, tunnel="10.0.0.0/22")
    # Speed is measured in bench/scale.py; here only the answers at that size.
    assert wan_conflicts(wan) == []
    for j in range(20):
        assert check_subnet(wan, 1, N(f"10.200.{j}.0/24"), True, False).nat_cidr is None
    assert check_subnet(wan, 1, N("192.168.5.0/24"), True, True).nat_cidr == N("172.16.0.0/24")


# --- tunnel IPs --------------------------------------------------------------------------------


def test_assign_tunnel_ip() -> None:
    assert assign_tunnel_ip(WAN) == A("10.0.0.4")
    assert assign_tunnel_ip(WAN, A("10.0.0.9")) == A("10.0.0.9")
    assert assign_tunnel_ip(WAN, A("10.0.0.2"), exclude_peer_id=2) == A("10.0.0.2")
    err = conflict_of(assign_tunnel_ip, WAN, A("10.0.0.2"))
    assert isinstance(err, ConflictError)
    assert (err.field, err.other_peer_id) == ("tunnel_ip", 2)
    assert err.message == (
        "Tunnel IP 10.0.0.2 is already used by peer 'home'; leave it empty to get the lowest free address (10.0.0.4)."
    )
    small = make_wan(*WAN.peers, tunnel="10.0.0.0/30")
    assert conflict_of(assign_tunnel_ip, small, A("10.0.0.2")).message == (
        "Tunnel IP 10.0.0.2 is already used by peer 'home'; leave it empty to get the lowest free address, "
        "but the tunnel range is full; widen it in the WAN settings."
    )
    err = conflict_of(assign_tunnel_ip, WAN, A("10.0.0.255"))
    assert isinstance(err, ValidationError)
    assert err.message == (
        "Tunnel IP 10.0.0.255 is the broadcast address of the tunnel range 10.0.0.0/24; it cannot be assigned."
    )
    assert isinstance(conflict_of(assign_tunnel_ip, small), RangeFullError)


# --- services ----------------------------------------------------------------------------------

SVC_WAN = make_wan(
    peer(1, "office", "10.0.0.1", (sub(11, "192.168.1.0/24"),), (svc(101, "web", "10.0.5.1", 443),)),
    peer(2, "home", "10.0.0.2", (sub(21, "192.168.2.0/24"),)),
)


def test_service_allocates_lowest_free_shared_ip_and_defaults_the_port() -> None:
    d = check_service(SVC_WAN, 2, "tcp", A("192.168.2.10"), 8080, name="nas")
    assert (d.shared_ip, d.shared_port) == (A("10.0.5.2"), 8080)
    d = check_service(SVC_WAN, 2, "udp", A("10.0.0.2"), 53, None, 5353)
    assert (d.shared_ip, d.shared_port) == (A("10.0.5.2"), 5353)


def test_service_may_share_its_own_peers_ip_on_another_port_or_protocol() -> None:
    d = check_service(SVC_WAN, 1, "tcp", A("192.168.1.10"), 80, A("10.0.5.1"), name="http")
    assert (d.shared_ip, d.shared_port) == (A("10.0.5.1"), 80)
    assert check_service(SVC_WAN, 1, "udp", A("192.168.1.10"), 443, A("10.0.5.1")).shared_port == 443
    # Editing a service does not clash with itself.
    assert check_service(SVC_WAN, 1, "tcp", A("192.168.1.10"), 443, A("10.0.5.1"), name="web", exclude_service_id=101)


def test_service_golden_messages() -> None:
    err = conflict_of(check_service, SVC_WAN, 1, "tcp", A("192.168.1.10"), 8443, name="web")
    assert isinstance(err, ConflictError)
    assert (err.message, err.field, err.other_service_id) == (
        "Peer 'office' already publishes a service named 'web'.",
        "name",
        101,
    )
    err = conflict_of(check_service, SVC_WAN, 1, "tcp", A("192.168.1.20"), 443, A("10.0.5.1"), 443)
    assert isinstance(err, ConflictError)
    assert (err.message, err.field, err.fixes) == (
        "10.0.5.1:443/tcp is already published by service 'web' of peer 'office'; choose another shared port.",
        "shared_port",
        ("other_port",),
    )
    err = conflict_of(check_service, SVC_WAN, 2, "tcp", A("192.168.2.10"), 80, A("10.0.5.1"))
    assert isinstance(err, ConflictError)
    assert (err.message, err.field, err.other_peer_id) == (
        "Shared IP 10.0.5.1 already belongs to service 'web' of peer 'office'; a shared IP routes to "
        "one peer "
        "only. Leave it empty to get a free one.",
        "shared_ip",
        1,
    )
    err = conflict_of(check_service, SVC_WAN, 2, "tcp", A("192.168.1.10"), 80)
    assert (err.message, err.field) == (
        "Local IP 192.168.1.10 is neither this peer's tunnel IP (10.0.0.2) nor inside one of its local "
        "networks (192.168.2.0/24); add the LAN under Local Networks first.",
        "local_ip",
    )
    bare = make_wan(peer(5, "laptop", "10.0.0.5"))
    err = conflict_of(check_service, bare, 5, "tcp", A("192.168.1.10"), 80)
    assert err.message == (
        "Local IP 192.168.1.10 is neither this peer's tunnel IP (10.0.0.5) nor inside one of its local "
        "networks (it has none); add the LAN under Local Networks first."
    )
    err = conflict_of(check_service, SVC_WAN, 2, "tcp", IPv6Address("2001:db8::1"), 80)
    assert err.message == (
        "Local IP 2001:db8::1 must be IPv4: published services are reached through the IPv4 services range."
    )
    err = conflict_of(check_service, SVC_WAN, 2, "tcp", A("192.168.2.10"), 80, A("10.0.6.1"))
    assert (err.message, err.field) == (
        "Shared IP 10.0.6.1 is outside the services range 10.0.5.0/24.",
        "shared_ip",
    )
    err = conflict_of(check_service, SVC_WAN, 2, "tcp", A("192.168.2.10"), 80, A("10.0.5.0"))
    assert err.message == (
        "Shared IP 10.0.5.0 is the network address of the services range 10.0.5.0/24; it cannot be assigned."
    )
    full = make_wan(
        peer(
            1,
            "office",
            "10.0.0.1",
            (sub(11, "192.168.1.0/24"),),
            (svc(101, "a", "10.0.5.0", 1), svc(102, "b", "10.0.5.1", 1)),
        ),
        services="10.0.5.0/31",
    )
    err = conflict_of(check_service, full, 1, "tcp", A("192.168.1.5"), 80)
    assert isinstance(err, RangeFullError)
    assert err.message == (
        "The services range 10.0.5.0/31 has no free address left (2 in use); widen it in the WAN settings."
    )


# --- WAN ranges --------------------------------------------------------------------------------


def test_check_wan_ranges() -> None:
    check_wan_ranges(N("10.0.0.0/24"), N("10.0.5.0/24"), N("172.16.0.0/12"))
    check_wan_ranges(N("10.0.0.0/23"), N("10.0.5.0/24"), N("172.16.0.0/12"), WAN)
    err = conflict_of(check_wan_ranges, N("10.0.0.0/16"), N("10.0.5.0/24"), N("172.16.0.0/12"))
    assert isinstance(err, ValidationError)
    assert (err.message, err.field) == (
        "The services range 10.0.5.0/24 overlaps the tunnel range 10.0.0.0/16; the tunnel range, services "
        "range and NAT pool must not overlap.",
        "services_cidr",
    )
    err = conflict_of(check_wan_ranges, N("10.0.0.0/24"), N("172.16.5.0/24"), N("172.16.0.0/12"))
    assert err.field == "nat_pool_cidr"
    # Moving the tunnel range away from the peers' tunnel IPs.
    err = conflict_of(check_wan_ranges, N("10.1.0.0/24"), N("10.0.5.0/24"), N("172.16.0.0/12"), WAN)
    assert isinstance(err, ConflictError)
    assert err.message == (
        "The tunnel range cannot change from 10.0.0.0/24 to 10.1.0.0/24 because it is in use: 10.0.0.1 "
        "(peer 'office') would fall outside it; 10.0.0.2 (peer 'home') would fall outside it; 10.0.0.3 "
        "(peer 'new') would fall outside it. Move or delete those first, or choose a range that still "
        "contains them."
    )
    # A range moved onto a peer's LAN.
    err = conflict_of(check_wan_ranges, N("10.0.0.0/24"), N("192.168.1.0/24"), N("172.16.0.0/12"), WAN)
    assert isinstance(err, ConflictError)
    assert (err.message, err.field, err.other_peer_id, err.other_subnet_id) == (
        "The services range 192.168.1.0/24 would overlap 192.168.1.0/24 of peer 'office'; choose another "
        "range or renumber that LAN.",
        "services_cidr",
        1,
        11,
    )


def test_range_users() -> None:
    wan = make_wan(
        peer(
            1,
            "office",
            "10.0.0.1",
            (sub(11, "192.168.1.0/24", nat="172.16.0.0/24"),),
            (svc(101, "web", "10.0.5.1", 443),),
        )
    )
    assert range_users(wan, "tunnel") == [("peer 'office'", A("10.0.0.1"))]
    assert range_users(wan, "services") == [("service 'web' of peer 'office'", A("10.0.5.1"))]
    assert range_users(wan, "nat_pool") == [("Auto-NAT of 192.168.1.0/24 of peer 'office'", N("172.16.0.0/24"))]
