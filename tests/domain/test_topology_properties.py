"""Property tests: for random WANs, every config routes every reachable prefix to exactly the right
[Peer] section, no prefix sits under two sections, and the edges agree with the views.

The oracle here is written independently of app/domain/topology.py, from DESIGN.md §3.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, collapse_addresses, ip_address, ip_network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.model import (
    PEER_KINDS,
    TOPOLOGIES,
    IPNetwork,
    MikrotikSpec,
    PeerSpec,
    ServiceSpec,
    SubnetSpec,
    WanSpec,
)
from app.domain.topology import PeerSection, TopologyResult, build_topology, prefix_sort_key, relay_peer_id
from app.domain.wireguard import render_all
from tests.domain.test_topology import key, wan_of

LANS = [
    "192.168.0.0/24",
    "192.168.1.0/24",
    "192.168.0.0/23",
    "10.9.0.0/16",
    "10.9.4.0/24",
    "10.9.4.0/25",
    "2001:db8::/64",
    "2001:db8::/48",
    "10.0.0.0/22",  # overlaps the tunnel and services ranges: refused at save, must stay consistent
    "fd20::/64",
    "fd20::/56",
    "fd10:77::/48",  # overlaps the IPv6 tunnel and services ranges of a dual-stack WAN
]
TUNNEL6, SERVICES6 = ip_network("fd10:77::/64"), ip_network("fd10:77:0:5::/64")
NATS = ["172.16.0.0/24", "172.16.1.0/24", "172.16.2.0/24"]


@st.composite
def wans(draw: st.DrawFn) -> WanSpec:
    n = draw(st.integers(1, 7))
    dual = draw(st.booleans())
    hosts = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n, unique=True))
    peers = []
    sid = 0
    for i, host in enumerate(hosts):
        subnets = []
        for _ in range(draw(st.integers(0, 2))):
            sid += 1
            cidr = ip_network(draw(st.sampled_from(LANS)))
            nat = None
            if cidr.version == 4 and cidr.prefixlen == 24 and draw(st.booleans()):
                nat = ip_network(draw(st.sampled_from(NATS)))
            subnets.append(SubnetSpec(sid, cidr, draw(st.booleans()), nat))
        services = []
        for _ in range(draw(st.integers(0, 1))):
            sid += 1
            over6 = dual and draw(st.booleans())
            services.append(
                ServiceSpec(
                    sid,
                    f"s{sid}",
                    "tcp",
                    IPv4Address(f"10.0.0.{host}"),
                    22,
                    ip_address(f"10.0.5.{draw(st.integers(1, 4))}"),
                    2200 + sid,
                    local_ip6=IPv6Address(f"fd10:77::{host}") if over6 else None,
                    shared_ip6=IPv6Address(f"fd10:77:0:5::{draw(st.integers(1, 4))}") if over6 else None,
                )
            )
        peers.append(
            PeerSpec(
                id=100 - i,  # ids deliberately not in tunnel order
                uuid=f"u{i}",
                name=f"p{i}",
                kind=draw(st.sampled_from(PEER_KINDS)),
                tunnel_ip=IPv4Address(f"10.0.0.{host}"),
                listen_port=51820,
                public_key=key(i),
                private_key=draw(st.sampled_from([None, key(50 + i)])),
                is_hub=draw(st.booleans()),
                hub_priority=draw(st.none() | st.integers(0, 2)),
                endpoint_host=draw(st.sampled_from([None, f"p{i}.example.net", "2001:db8::9"])),
                keepalive=draw(st.none() | st.integers(0, 60)),
                subnets=tuple(subnets),
                services=tuple(services),
                # Dual stack: mostly ::host, sometimes an address another peer has too (refused at
                # save, must stay consistent).
                tunnel_ip6=IPv6Address(f"fd10:77::{draw(st.sampled_from([host, host, 1]))}") if dual else None,
            )
        )
    return wan_of(
        *peers,
        topology=draw(st.sampled_from(TOPOLOGIES)),
        keepalive=draw(st.sampled_from([0, 25])),
        tunnel_cidr6=TUNNEL6 if dual else None,
        services_cidr6=SERVICES6 if dual else None,
    )


# --- independent oracle --------------------------------------------------------------------------


def advertised(p: PeerSpec) -> set[IPNetwork]:
    out: set[IPNetwork] = {ip_network(p.tunnel_ip)}
    if p.tunnel_ip6 is not None:
        out.add(ip_network(p.tunnel_ip6))
    out |= {s.nat_cidr or s.cidr for s in p.subnets if s.routed}
    out |= {ip_network(s.shared_ip) for s in p.services}
    out |= {ip_network(s.shared_ip6) for s in p.services if s.shared_ip6 is not None}
    return out


def collapse(nets: set[IPNetwork]) -> list[IPNetwork]:
    """The union of `nets` as the fewest CIDRs, per IP version."""
    return [
        *collapse_addresses(n for n in nets if n.version == 4),
        *collapse_addresses(n for n in nets if n.version == 6),
    ]


def effective(wan: WanSpec) -> str:
    return "mesh" if wan.topology != "mesh" and not any(p.is_hub for p in wan.peers) else wan.topology


def oracle_direct(wan: WanSpec, a: PeerSpec, b: PeerSpec) -> bool:
    allowed = effective(wan) != "hub_spoke" or a.is_hub or b.is_hub
    return allowed and not (a.cgnat and b.cgnat)


def oracle_relay(wan: WanSpec) -> int | None:
    hubs = [p for p in wan.peers if p.is_hub and not p.cgnat]
    if hubs:
        return min(hubs, key=lambda p: (p.hub_priority is None, p.hub_priority or 0, int(p.tunnel_ip))).id
    if effective(wan) == "hub_spoke":
        return None
    cands = [p for p in wan.peers if p.kind != "client" and not p.cgnat]
    return min(cands, key=lambda p: int(p.tunnel_ip)).id if cands else None


def resolve(sections: tuple[PeerSection, ...], prefix: IPNetwork) -> list[PeerSection]:
    """Sections whose most specific AllowedIP containing `prefix` wins (WireGuard semantics)."""
    best = -1
    winners: list[PeerSection] = []
    for s in sections:
        for e in s.allowed_ips:
            if e.version == prefix.version and prefix.subnet_of(e):  # type: ignore[arg-type]
                if e.prefixlen > best:
                    best, winners = e.prefixlen, [s]
                elif e.prefixlen == best:
                    winners.append(s)
    return winners


# --- the properties --------------------------------------------------------------------------------


def check(wan: WanSpec, topo: TopologyResult) -> None:
    by_id = {p.id: p for p in wan.peers}
    relay = oracle_relay(wan)
    assert relay_peer_id(wan) == relay
    aggregates = {r for r in (wan.tunnel_cidr, wan.services_cidr, wan.tunnel_cidr6, wan.services_cidr6) if r}
    assert list(topo.views) == [p.id for p in sorted(wan.peers, key=lambda p: (p.tunnel_ip, p.id))]

    for x in wan.peers:
        view = topo.view(x.id)
        secs = view.sections
        # Sections ordered by tunnel IP, one per peer, never X itself.
        ips = [by_id[s.peer_id].tunnel_ip for s in secs]
        assert ips == sorted(ips) and x.id not in {s.peer_id for s in secs}
        # No prefix under two sections; each section sorted and duplicate-free.
        every = [e for s in secs for e in s.allowed_ips]
        assert len(every) == len(set(every))
        for s in secs:
            keys = [prefix_sort_key(e) for e in s.allowed_ips]
            assert keys == sorted(set(keys))
        # Nothing overlapping X's own LANs; nothing X advertises itself.
        for e in every:
            assert not any(e.version == lan.cidr.version and e.overlaps(lan.cidr) for lan in x.subnets)
            assert e not in advertised(x)
        # Every entry is justified: a direct section lists the peer's own prefixes; a relay section
        # aggregates, so each of its CIDRs lies within what the relay and the peers behind it own.
        for s in secs:
            mine = advertised(by_id[s.peer_id])
            if not s.relayed_peer_ids:
                assert set(s.allowed_ips) <= mine | (aggregates if s.peer_id == relay else set()), (x.name, s)
                continue
            through = set().union(*(advertised(by_id[z]) for z in s.relayed_peer_ids))
            union = mine | through | (aggregates if s.peer_id == relay else set())
            for e in s.allowed_ips:
                assert any(e.version == u.version and e.subnet_of(u) for u in collapse(union)), (x.name, s, e)  # type: ignore[arg-type]

        reported = {(u.peer_id, u.prefix) for u in view.unreachable}
        for u in view.unreachable:
            assert u.from_peer_id == x.id and u.prefix in advertised(by_id[u.peer_id])
            assert f"unreachable from '{x.name}'" in u.message and "Fix:" in u.message
        direct = {s.peer_id: s for s in secs}
        via = {z: s for s in secs for z in s.relayed_peer_ids}
        for z in wan.peers:
            if z.id == x.id:
                continue
            # Who sees whom, against the oracle.
            assert (z.id in direct) == oracle_direct(wan, x, z), (x.name, z.name)
            if z.id not in direct:
                assert (z.id in via) == (relay is not None)
                if relay is not None:
                    assert via[z.id].peer_id == relay
            expected = direct.get(z.id) or via.get(z.id)
            # Every reachable prefix is routed to exactly the right section, exactly once.
            for prefix in advertised(z):
                if (z.id, prefix) in reported:
                    continue
                assert expected is not None, (x.name, z.name, prefix)
                assert resolve(secs, prefix) == [expected], (x.name, z.name, prefix)
            if expected is None:
                assert {(z.id, p) for p in advertised(z)} <= reported

    # Edges agree with the views.
    pairs = [(e.a, e.b) for e in topo.edges]
    assert len(pairs) == len(set(pairs)) and all(a < b for a, b in pairs)
    edge_of = {(e.a, e.b): e.via for e in topo.edges}
    for a in wan.peers:
        for b in wan.peers:
            if a.id >= b.id:
                continue
            va, vb = topo.view(a.id), topo.view(b.id)
            if (a.id, b.id) not in edge_of:
                assert not oracle_direct(wan, a, b) and relay is None
                continue
            v = edge_of[(a.id, b.id)]
            if v is None:
                assert b.id in {s.peer_id for s in va.sections} and a.id in {s.peer_id for s in vb.sections}
            else:
                assert v == relay
                sa = next(s for s in va.sections if s.peer_id == v)
                sb = next(s for s in vb.sections if s.peer_id == v)
                assert b.id in sa.relayed_peer_ids and a.id in sb.relayed_peer_ids
                # The relay tunnels to both directly, and routes each to its own section.
                rv = topo.view(v)
                assert {a.id, b.id} <= {s.peer_id for s in rv.sections}
                assert rv.relays and rv.forwards
                for one, other in ((a, b), (b, a)):
                    for addr in (other.tunnel_ip, other.tunnel_ip6):
                        if addr is None:
                            continue
                        target = ip_network(addr)
                        if (other.id, target) not in {(u.peer_id, u.prefix) for u in rv.unreachable}:
                            assert [s.peer_id for s in resolve(rv.sections, target)] == [other.id], one


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wans())
def test_random_wans_route_every_reachable_prefix_exactly_once(wan: WanSpec) -> None:
    check(wan, build_topology(wan))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wans())
def test_random_wans_render_what_the_topology_says(wan: WanSpec) -> None:
    topo = build_topology(wan)
    configs = render_all(wan)
    assert set(configs) == {p.id for p in wan.peers}
    for pid, cfg in configs.items():
        text = cfg.text
        assert text.count("[Peer]") == len(topo.view(pid).sections)
        got = [line.removeprefix("AllowedIPs = ") for line in text.splitlines() if line.startswith("AllowedIPs")]
        want = [", ".join(map(str, s.allowed_ips)) for s in topo.view(pid).sections if s.allowed_ips]
        assert got == want
        up = [line for line in text.splitlines() if line.startswith("PostUp")]
        assert not up or by_kind(wan, pid) == "server"


def by_kind(wan: WanSpec, pid: int) -> str:
    return wan.peer(pid).kind


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wans(), st.data())
def test_a_topology_is_made_of_the_routing_inputs_alone(wan: WanSpec, data: st.DataObject) -> None:
    """services.configs.wan_topology reuses a topology while `routing_inputs()` is unchanged: what
    that leaves out (keys, router settings, MTU, DNS, names of the WAN and interface, management
    ranges, the PSK seed) must never change a topology, whatever values it takes."""
    other = replace(
        wan,
        name=data.draw(st.sampled_from(["acme", "other"])),
        interface_name=data.draw(st.sampled_from(["wg-wan-overlay", "wg9"])),
        mtu=data.draw(st.integers(1280, 1500)),
        dns=tuple(ip_address(a) for a in data.draw(st.lists(st.sampled_from(["1.1.1.1", "10.0.0.1", "fd10:77::1"])))),
        mgmt_cidrs=tuple(ip_network(c) for c in data.draw(st.lists(st.sampled_from(["10.0.0.0/24", "192.168.88.0/24"])))),
        psk_seed=data.draw(st.none() | st.just("seed")),
        peers=tuple(
            replace(
                p,
                uuid=f"other-{p.id}",
                public_key=key(200 + i),
                private_key=data.draw(st.none() | st.just(key(300 + i))),
                mikrotik=data.draw(st.none() | st.just(MikrotikSpec(host=f"192.0.2.{i + 1}", password="pw"))),
            )
            for i, p in enumerate(wan.peers)
        ),
    )  # fmt: skip
    built = build_topology(wan)
    assert build_topology(wan.routing_inputs()) == built
    assert build_topology(other) == built and other.routing_inputs() == wan.routing_inputs()
