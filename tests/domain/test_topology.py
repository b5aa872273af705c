"""Who sees whom, relays, AllowedIPs, keepalive and unreachable prefixes (DESIGN.md §3)."""

from __future__ import annotations

import base64
from ipaddress import IPv4Address, ip_address, ip_network

import pytest

from app.domain.model import IPNetwork, PeerKind, PeerSpec, ServiceSpec, SubnetSpec, Topology, WanSpec
from app.domain.topology import (
    Edge,
    PeerSection,
    TopologyResult,
    Unreachable,
    build_topology,
    prefix_sort_key,
    relay_peer_id,
    sort_prefixes,
)

# --- builders shared by the wireguard and property tests --------------------------------------------


def key(n: int) -> str:
    """A well-formed, deterministic WireGuard key (44 base64 characters)."""
    return base64.b64encode(bytes([n % 256]) * 32).decode()


def net(text: str) -> IPNetwork:
    return ip_network(text)


def subnet(sid: int, cidr: str, *, routed: bool = True, nat: str | None = None) -> SubnetSpec:
    return SubnetSpec(sid, net(cidr), routed, net(nat) if nat else None)


def service(sid: int, shared: str, shared_port: int, local: str, local_port: int, proto: str = "tcp") -> ServiceSpec:
    assert proto in ("tcp", "udp")
    return ServiceSpec(
        sid,
        f"svc{sid}",
        "tcp" if proto == "tcp" else "udp",
        ip_address(local),
        local_port,
        ip_address(shared),
        shared_port,
    )


def peer(
    pid: int,
    name: str,
    *,
    kind: PeerKind = "server",
    ip: str | None = None,
    endpoint: bool | str = True,
    port: int | None = None,
    hub: bool = False,
    prio: int | None = None,
    subnets: tuple[SubnetSpec, ...] = (),
    services: tuple[ServiceSpec, ...] = (),
    byok: bool = False,
    keepalive: int | None = None,
    listen_port: int = 51820,
) -> PeerSpec:
    host: str | None
    if endpoint is True:
        host = f"{name}.example.net"
    elif endpoint is False:
        host = None
    else:
        host = endpoint
    return PeerSpec(
        id=pid,
        uuid=f"00000000-0000-4000-8000-{pid:012d}",
        name=name,
        kind=kind,
        tunnel_ip=IPv4Address(ip or f"10.0.0.{pid}"),
        listen_port=listen_port,
        public_key=key(pid),
        private_key=None if byok else key(100 + pid),
        is_hub=hub,
        hub_priority=prio,
        endpoint_host=host,
        endpoint_port=port,
        keepalive=keepalive,
        subnets=subnets,
        services=services,
    )


def wan_of(*peers: PeerSpec, topology: Topology = "mesh", name: str = "acme", **kw: object) -> WanSpec:
    return WanSpec(
        id=1,
        name=name,
        tunnel_cidr=ip_network("10.0.0.0/24"),  # type: ignore[arg-type]
        services_cidr=ip_network("10.0.5.0/24"),  # type: ignore[arg-type]
        nat_pool_cidr=ip_network("172.16.0.0/12"),  # type: ignore[arg-type]
        topology=topology,
        peers=peers,
        **kw,  # type: ignore[arg-type]
    )


def nets(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(net(t) for t in texts)


def section(topo: TopologyResult, x: int, y: int) -> PeerSection:
    for s in topo.view(x).sections:
        if s.peer_id == y:
            return s
    raise AssertionError(f"peer {x} has no section for {y}")


def section_ids(topo: TopologyResult, x: int) -> list[int]:
    return [s.peer_id for s in topo.view(x).sections]


AGG = ("10.0.0.0/24", "10.0.5.0/24")


# --- mesh --------------------------------------------------------------------------------------------


def test_mesh_everyone_sees_everyone_with_own_prefixes() -> None:
    wan = wan_of(
        peer(1, "hq", subnets=(subnet(1, "192.168.1.0/24"), subnet(2, "192.168.9.0/24", routed=False))),
        peer(2, "b", services=(service(1, "10.0.5.1", 8080, "192.168.2.10", 80),)),
        peer(3, "c", kind="mikrotik"),
    )
    topo = build_topology(wan)
    assert section_ids(topo, 1) == [2, 3]
    assert section_ids(topo, 2) == [1, 3]
    assert section(topo, 2, 1).allowed_ips == nets("10.0.0.1/32", "192.168.1.0/24")
    assert section(topo, 1, 2).allowed_ips == nets("10.0.0.2/32", "10.0.5.1/32")
    assert section(topo, 1, 2).endpoint == "b.example.net:51820"
    assert section(topo, 1, 2).persistent_keepalive == 25
    assert all(s.relayed_peer_ids == () for v in topo.views.values() for s in v.sections)
    assert topo.edges == (Edge(1, 2, None), Edge(1, 3, None), Edge(2, 3, None))
    assert topo.unreachable == ()
    assert topo.view(1).forwards and not topo.view(1).relays
    assert topo.view(2).forwards  # publishes a LAN host
    assert not topo.view(3).forwards


def test_sections_are_ordered_by_tunnel_ip_not_id() -> None:
    wan = wan_of(peer(1, "a", ip="10.0.0.9"), peer(2, "b", ip="10.0.0.3"), peer(3, "c", ip="10.0.0.5"))
    topo = build_topology(wan)
    assert list(topo.views) == [2, 3, 1]
    assert section_ids(topo, 1) == [2, 3]


def test_cgnat_pair_in_mesh_goes_through_a_server_never_a_client() -> None:
    wan = wan_of(
        peer(1, "laptop", kind="client"),  # a client with an endpoint: never a relay
        peer(2, "vps", subnets=(subnet(1, "192.168.2.0/24"),)),
        peer(3, "a", kind="client", endpoint=False, subnets=(subnet(2, "192.168.3.0/24"),)),
        peer(4, "b", kind="client", endpoint=False),
    )
    assert relay_peer_id(wan) == 2
    topo = build_topology(wan)
    # a and b cannot handshake: each routes the other through vps.
    assert section_ids(topo, 3) == [1, 2]
    relay = section(topo, 4, 2)
    assert relay.relayed_peer_ids == (3,)
    # vps's LAN and a's adjacent LAN are aggregated into one /23.
    assert relay.allowed_ips == nets("10.0.0.0/24", "10.0.5.0/24", "192.168.2.0/23")
    assert section(topo, 3, 2).allowed_ips == nets(*AGG, "192.168.2.0/24")
    assert section(topo, 3, 2).relayed_peer_ids == (4,)
    # Direct peers keep their own /32 (more specific than the relay's aggregate).
    assert section(topo, 3, 1).allowed_ips == nets("10.0.0.1/32")
    # The relay sees both directly and forwards.
    assert section_ids(topo, 2) == [1, 3, 4]
    assert topo.view(2).relays and topo.view(2).forwards
    assert not topo.view(1).relays
    assert Edge(3, 4, 2) in topo.edges
    assert topo.unreachable == ()


def test_everybody_cgnat_is_unreachable_and_reported() -> None:
    wan = wan_of(
        peer(1, "a", endpoint=False),
        peer(2, "b", endpoint=False, subnets=(subnet(7, "192.168.2.0/24"),)),
    )
    assert relay_peer_id(wan) is None
    topo = build_topology(wan)
    assert topo.view(1).sections == ()
    assert topo.edges == ()
    got = {(u.from_peer_id, u.peer_id, str(u.prefix), u.subnet_id) for u in topo.unreachable}
    assert got == {(1, 2, "10.0.0.2/32", None), (1, 2, "192.168.2.0/24", 7), (2, 1, "10.0.0.1/32", None)}
    msg = topo.view(1).unreachable[0].message
    assert msg.startswith("10.0.0.2/32 of peer 'b' is unreachable from 'a': neither has an endpoint")
    assert "Fix:" in msg


# --- hub_spoke / hybrid --------------------------------------------------------------------------


def hub_spoke_wan(topology: Topology = "hub_spoke") -> WanSpec:
    return wan_of(
        peer(1, "h1", hub=True, subnets=(subnet(1, "192.168.1.0/24"),)),
        peer(2, "h2", hub=True, kind="mikrotik", subnets=(subnet(2, "192.168.2.0/24"),)),
        peer(3, "s1", kind="mikrotik", subnets=(subnet(3, "192.168.3.0/24"),)),
        peer(4, "s2", kind="client", endpoint=False),
        peer(5, "s3", endpoint=False, services=(service(1, "10.0.5.5", 443, "10.0.0.5", 8443),)),
        topology=topology,
    )


def test_hub_spoke_spokes_see_only_hubs_and_the_first_hub_relays() -> None:
    topo = build_topology(hub_spoke_wan())
    assert section_ids(topo, 1) == [2, 3, 4, 5]
    assert section_ids(topo, 2) == [1, 3, 4, 5]
    assert section_ids(topo, 3) == [1, 2]
    assert section_ids(topo, 4) == [1, 2]
    h1 = section(topo, 3, 1)
    assert h1.relayed_peer_ids == (4, 5)
    assert h1.allowed_ips == nets(*AGG, "192.168.1.0/24")
    # The second hub carries only its own prefixes.
    assert section(topo, 3, 2).allowed_ips == nets("10.0.0.2/32", "192.168.2.0/24")
    assert section(topo, 3, 2).relayed_peer_ids == ()
    assert section(topo, 4, 1).allowed_ips == nets(*AGG, "192.168.1.0/24", "192.168.3.0/24")
    assert topo.view(1).relays and not topo.view(2).relays
    assert Edge(3, 4, 1) in topo.edges and Edge(4, 5, 1) in topo.edges and Edge(2, 3, None) in topo.edges
    assert len(topo.edges) == 10


def test_hub_priority_picks_the_relay() -> None:
    wan = wan_of(
        peer(1, "h1", hub=True),
        peer(2, "h2", hub=True, prio=1),
        peer(3, "s1"),
        peer(4, "s2"),
        topology="hub_spoke",
    )
    assert relay_peer_id(wan) == 2
    topo = build_topology(wan)
    assert section(topo, 3, 2).relayed_peer_ids == (4,)
    assert section(topo, 3, 1).allowed_ips == nets("10.0.0.1/32")


def test_a_hub_without_endpoint_never_relays() -> None:
    wan = wan_of(
        peer(1, "h1", hub=True, endpoint=False),
        peer(2, "h2", hub=True),
        peer(3, "s1", endpoint=False),
        topology="hub_spoke",
    )
    assert relay_peer_id(wan) == 2
    topo = build_topology(wan)
    # h1 and s1 are both CGNAT: they meet through h2.
    assert section_ids(topo, 1) == [2]
    assert section(topo, 1, 2).relayed_peer_ids == (3,)
    assert section(topo, 3, 2).relayed_peer_ids == (1,)


def test_hub_spoke_without_a_reachable_hub_reports_spoke_pairs() -> None:
    wan = wan_of(
        peer(1, "h1", hub=True, endpoint=False),
        peer(2, "s1", kind="mikrotik"),
        peer(3, "s2", kind="mikrotik"),
        topology="hub_spoke",
    )
    assert relay_peer_id(wan) is None  # a server spoke may not see other spokes in hub_spoke
    topo = build_topology(wan)
    assert section_ids(topo, 2) == [1]
    msgs = {u.message for u in topo.view(2).unreachable}
    assert msgs == {
        "10.0.0.3/32 of peer 's2' is unreachable from 's1': spokes reach each other only through a "
        "hub, and no hub has an endpoint. Fix: give a hub an endpoint."
    }


def test_hybrid_spokes_with_an_endpoint_talk_directly() -> None:
    topo = build_topology(hub_spoke_wan("hybrid"))
    # s1 has an endpoint: it sees everybody directly.
    assert section_ids(topo, 3) == [1, 2, 4, 5]
    assert section(topo, 3, 1).relayed_peer_ids == ()
    # s2 and s3 are both CGNAT: they go through h1, but reach s1 directly.
    assert section_ids(topo, 4) == [1, 2, 3]
    assert section(topo, 4, 1).relayed_peer_ids == (5,)
    assert section(topo, 4, 3).allowed_ips == nets("10.0.0.3/32", "192.168.3.0/24")
    assert Edge(3, 4, None) in topo.edges and Edge(4, 5, 1) in topo.edges


@pytest.mark.parametrize("topology", ["hub_spoke", "hybrid"])
def test_no_hub_falls_back_to_mesh(topology: Topology) -> None:
    peers = (peer(1, "a"), peer(2, "b", endpoint=False), peer(3, "c", endpoint=False))
    assert build_topology(wan_of(*peers, topology=topology)) == build_topology(wan_of(*peers))


def test_adding_a_spoke_does_not_change_other_spokes() -> None:
    base = hub_spoke_wan()
    more = wan_of(*base.peers, peer(6, "s4", endpoint=False), topology="hub_spoke")
    a, b = build_topology(base), build_topology(more)
    for pid in (3, 4, 5):
        assert a.view(pid).sections[1:] == b.view(pid).sections[1:]
        assert a.view(pid).sections[0].allowed_ips == b.view(pid).sections[0].allowed_ips
    assert section(b, 3, 1).relayed_peer_ids == (4, 5, 6)


# --- overlaps, NAT, duplicates ----------------------------------------------------------------


def test_nat_subnet_is_seen_under_its_translation() -> None:
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "192.168.1.0/24"),)),
        peer(2, "b", subnets=(subnet(2, "192.168.1.0/24", nat="172.16.0.0/24"),)),
        peer(3, "c"),
    )
    topo = build_topology(wan)
    assert section(topo, 3, 2).allowed_ips == nets("10.0.0.2/32", "172.16.0.0/24")
    assert section(topo, 1, 2).allowed_ips == nets("10.0.0.2/32", "172.16.0.0/24")
    # b's own LAN is 192.168.1.0/24 too: a's LAN is left out of b's config and reported.
    assert section(topo, 2, 1).allowed_ips == nets("10.0.0.1/32")
    assert topo.unreachable == (
        Unreachable(
            2,
            1,
            1,
            net("192.168.1.0/24"),
            "192.168.1.0/24 of peer 'a' is unreachable from 'b': it overlaps b's own LAN "
            "192.168.1.0/24. b's LAN is published to the others as 172.16.0.0/24, but inside b that range "
            "is its own. Fix: Auto-NAT 192.168.1.0/24 on 'a' too (b then reaches it under its translation), "
            "or mark one not routed.",
        ),
    )


def test_overlap_with_a_non_routed_own_lan_is_also_left_out() -> None:
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "192.168.0.0/16", routed=False),)),
        peer(2, "b", subnets=(subnet(2, "192.168.7.0/24"), subnet(3, "10.20.0.0/16"))),
    )
    topo = build_topology(wan)
    assert section(topo, 1, 2).allowed_ips == nets("10.0.0.2/32", "10.20.0.0/16")
    assert [(u.subnet_id, str(u.prefix)) for u in topo.unreachable] == [(2, "192.168.7.0/24")]
    assert section(topo, 2, 1).allowed_ips == nets("10.0.0.1/32")


def test_same_prefix_on_two_peers_goes_to_the_first_only() -> None:
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "192.168.1.0/24"),)),
        peer(2, "b", subnets=(subnet(2, "192.168.1.0/24"),)),
        peer(3, "c"),
    )
    topo = build_topology(wan)
    assert section(topo, 3, 1).allowed_ips == nets("10.0.0.1/32", "192.168.1.0/24")
    assert section(topo, 3, 2).allowed_ips == nets("10.0.0.2/32")
    mine = [u for u in topo.unreachable if u.from_peer_id == 3]
    assert [u.message for u in mine] == [
        "192.168.1.0/24 of peer 'b' is unreachable from 'c': peer 'a' advertises the same prefix. "
        "Fix: NAT one side (Auto-NAT) or mark one not routed."
    ]


def test_relayed_lan_overlapping_own_lan_is_left_out_of_the_relay_section() -> None:
    wan = wan_of(
        peer(1, "hub"),
        peer(2, "a", endpoint=False, subnets=(subnet(1, "192.168.1.0/24"),)),
        peer(3, "b", endpoint=False, subnets=(subnet(2, "192.168.1.0/25"), subnet(3, "192.168.8.0/24"))),
    )
    topo = build_topology(wan)
    assert section(topo, 2, 1).allowed_ips == nets(*AGG, "192.168.8.0/24")
    assert section(topo, 2, 1).relayed_peer_ids == (3,)
    assert [str(u.prefix) for u in topo.view(2).unreachable] == ["192.168.1.0/25"]
    assert [str(u.prefix) for u in topo.view(3).unreachable] == ["192.168.1.0/24"]


def test_lan_overlapping_the_tunnel_range_drops_the_aggregate() -> None:
    # A critical conflict refused at save time; the topology must still stay consistent.
    wan = wan_of(
        peer(1, "hub"),
        peer(2, "a", endpoint=False, subnets=(subnet(1, "10.0.0.0/16", routed=False),)),
        peer(3, "b", endpoint=False, services=(service(1, "10.0.5.3", 80, "10.0.0.3", 80),)),
    )
    topo = build_topology(wan)
    relay = section(topo, 2, 1)
    assert relay.allowed_ips == ()
    assert relay.relayed_peer_ids == (3,)
    assert {str(u.prefix) for u in topo.view(2).unreachable} == {"10.0.0.1/32", "10.0.0.3/32", "10.0.5.3/32"}
    assert "renumber a's LAN" in topo.view(2).unreachable[0].message


# --- keepalive, endpoints ------------------------------------------------------------------------


def test_keepalive_rules() -> None:
    wan = wan_of(
        peer(1, "a"),
        peer(2, "b"),
        peer(3, "c", endpoint=False, keepalive=15),
        peer(4, "d", endpoint=False),
        keepalive=0,
    )
    topo = build_topology(wan)
    assert section(topo, 1, 2).persistent_keepalive is None  # WAN keepalive 0, no CGNAT side
    assert section(topo, 1, 3).persistent_keepalive == 15  # towards c: c's override
    assert section(topo, 3, 1).persistent_keepalive == 15  # c's own sections
    assert section(topo, 1, 4).persistent_keepalive == 25  # CGNAT needs one even when WAN says 0
    assert section(topo, 4, 1).persistent_keepalive == 25
    wan30 = wan_of(*wan.peers, keepalive=30)
    topo30 = build_topology(wan30)
    assert section(topo30, 1, 2).persistent_keepalive == 30
    assert section(topo30, 1, 4).persistent_keepalive == 30
    assert section(topo30, 1, 3).persistent_keepalive == 15


def test_endpoint_only_when_known_and_ipv6_bracketed() -> None:
    wan = wan_of(
        peer(1, "a", endpoint="2001:db8::1", port=51999),
        peer(2, "b", endpoint="198.51.100.7"),
        peer(3, "c", endpoint=False),
    )
    topo = build_topology(wan)
    assert section(topo, 2, 1).endpoint == "[2001:db8::1]:51999"
    assert section(topo, 1, 2).endpoint == "198.51.100.7:51820"
    assert section(topo, 1, 3).endpoint is None


# --- relay choice, helpers ------------------------------------------------------------------------


def test_relay_choice_without_hubs_prefers_lowest_server_or_mikrotik() -> None:
    wan = wan_of(
        peer(1, "c1", kind="client"),
        peer(2, "m", kind="mikrotik", ip="10.0.0.20"),
        peer(3, "s", ip="10.0.0.10"),
        peer(4, "x", endpoint=False),
    )
    assert relay_peer_id(wan) == 3
    hub_client = wan_of(peer(1, "c1", kind="client", hub=True), peer(2, "s"), topology="hybrid")
    assert relay_peer_id(hub_client) == 1  # the user made the client a hub


def test_prefix_order_v4_before_v6_then_address_then_length() -> None:
    got = sort_prefixes(nets("2001:db8::/64", "10.0.0.0/24", "10.0.0.0/8", "9.0.0.0/8", "10.0.0.0/24"))
    assert got == nets("9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/24", "2001:db8::/64")
    assert prefix_sort_key(net("10.0.0.0/8")) < prefix_sort_key(net("::/0"))


def test_view_lookup_and_unknown_peer() -> None:
    topo = build_topology(wan_of(peer(1, "a")))
    assert topo.view(1).sections == ()
    with pytest.raises(KeyError):
        topo.view(99)


def test_ipv6_lans_are_routed_and_sorted_after_v4() -> None:
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "2001:db8:1::/64"), subnet(2, "192.168.1.0/24"))),
        peer(2, "b"),
    )
    topo = build_topology(wan)
    assert section(topo, 2, 1).allowed_ips == nets("10.0.0.1/32", "192.168.1.0/24", "2001:db8:1::/64")


def test_with_both_overlapping_lans_natted_nothing_is_unreachable() -> None:
    # The demo WAN after Auto-NAT on both sides: no conflict is left to report.
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "192.168.1.0/24", nat="172.16.1.0/24"),)),
        peer(2, "b", subnets=(subnet(2, "192.168.1.0/24", nat="172.16.0.0/24"),)),
        peer(3, "c"),
    )
    topo = build_topology(wan)
    assert topo.unreachable == ()
    assert section(topo, 2, 1).allowed_ips == nets("10.0.0.1/32", "172.16.1.0/24")


def test_without_nat_on_either_side_the_fix_names_both_lans() -> None:
    wan = wan_of(
        peer(1, "a", subnets=(subnet(1, "192.168.1.0/24"),)),
        peer(2, "b", subnets=(subnet(2, "192.168.1.0/25"),)),
    )
    messages = [u.message for u in build_topology(wan).unreachable]
    assert messages and all("Auto-NAT both LANs" in m for m in messages)


def test_a_build_leaves_the_garbage_collector_as_it_found_it() -> None:
    # The build pauses cycle collection for speed; a web process must not be left without it.
    import gc

    wan = wan_of(peer(1, "a"), peer(2, "b", endpoint=False))
    assert gc.isenabled()
    build_topology(wan)
    assert gc.isenabled()
    gc.disable()
    try:
        build_topology(wan)
        assert not gc.isenabled()
    finally:
        gc.enable()
