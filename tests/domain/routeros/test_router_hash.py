"""The cheap router staleness hash changes exactly when the desired state (desired_hash) changes.

For random WANs and random edits of them, two WANs give a MikroTik peer the same `router_hash` if
and only if they give it the same `desired_hash(build_desired(...))`. Building one peer's view
(`build_topology(wan, [peer_id])`) gives exactly that view of the full build.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_address, ip_network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.model import MikrotikSpec, PeerSpec, ServiceSpec, SubnetSpec, WanSpec
from app.domain.routeros.desired import RouterHasher, build_desired, desired_hash, router_hash
from app.domain.topology import TopologyInvariantError, build_topology
from tests.domain.test_topology_properties import wans

ROUTER = MikrotikSpec(host="192.0.2.1", username="wirewan", password="secret-1")


def _with_routers(wan: WanSpec, flags: list[bool]) -> WanSpec:
    peers = []
    for p, flag in zip(wan.peers, flags + [False] * len(wan.peers), strict=False):
        if flag or p.kind == "mikrotik":
            p = replace(p, kind="mikrotik", mikrotik=ROUTER if flag else None)
        peers.append(p)
    return replace(wan, peers=tuple(peers))


def _edit(wan: WanSpec, which: int, what: int, value: int) -> WanSpec:
    """One small edit: some change a router's desired state, some only display text or nothing."""
    peers = list(wan.peers)
    i = which % len(peers)
    p = peers[i]
    edits = [
        lambda: replace(p, name=f"renamed{value}"),
        lambda: replace(p, keepalive=[None, 0, 25, value][value % 4]),
        lambda: replace(p, subnets=tuple(replace(s, routed=not s.routed) for s in p.subnets)),
        lambda: replace(p, subnets=(*p.subnets, SubnetSpec(900 + value, ip_network(f"10.77.{value % 3}.0/24"), False))),
        lambda: replace(p, subnets=(*p.subnets, SubnetSpec(900 + value, ip_network(f"10.77.{value % 3}.0/24"), True))),
        lambda: replace(p, endpoint_host=[None, "x.example.net", "2001:db8::7"][value % 3]),
        lambda: replace(p, endpoint_port=[None, 51820, 51821][value % 3]),
        lambda: replace(p, public_key=("B" * 43 + "=") if value % 2 else p.public_key),
        lambda: replace(p, private_key=None if value % 2 else "C" * 43 + "="),
        lambda: replace(p, uuid=f"u-new-{value % 2}"),
        lambda: replace(p, listen_port=51820 + value % 2),
        lambda: replace(p, services=tuple(replace(s, name=f"n{value}") for s in p.services)),
        lambda: replace(p, services=tuple(replace(s, local_port=s.local_port + value % 2) for s in p.services)),
        lambda: replace(
            p,
            services=(
                *p.services,
                ServiceSpec(950, "web", "tcp", IPv4Address("192.168.9.9"), 80, ip_address("10.0.5.9"), 8080),
            ),
        ),
        lambda: replace(p, mikrotik=None if p.mikrotik is None else replace(p.mikrotik, password=f"pw{value % 2}")),
        lambda: replace(p, mikrotik=None if p.mikrotik is None else replace(p.mikrotik, use_tls=bool(value % 2))),
        lambda: replace(p, mikrotik=None if p.mikrotik is None else replace(p.mikrotik, host=f"192.0.2.{value}")),
        lambda: replace(p, mikrotik=None if p.mikrotik is None else replace(p.mikrotik, auto_deploy=bool(value % 2))),
        lambda: replace(p, hub_priority=[None, 0, 1][value % 3]),
        lambda: replace(p, is_hub=not p.is_hub),
        lambda: replace(
            p,
            subnets=tuple(
                replace(s, nat_cidr=ip_network(f"172.16.{7 + value % 2}.0/24"))
                if s.cidr.version == 4 and s.cidr.prefixlen == 24
                else s
                for s in p.subnets
            ),
        ),
    ]
    wan_edits = [
        lambda: replace(wan, name=f"wan{value}"),
        lambda: replace(wan, mtu=1420 - value % 2 * 20),
        lambda: replace(wan, keepalive=[0, 25, 30][value % 3]),
        lambda: replace(wan, mgmt_cidrs=[(), (ip_network("192.168.0.0/16"),), (ip_network("10.9.0.0/16"),)][value % 3]),
        lambda: replace(wan, interface_name=["wg-wan-overlay", "wg1"][value % 2]),
        lambda: replace(wan, dns=[(), (ip_address("10.0.0.53"),)][value % 2]),
    ]
    if what < len(edits):
        peers[i] = edits[what]()
        return replace(wan, peers=tuple(peers))
    return wan_edits[(what - len(edits)) % len(wan_edits)]()


def _desired(wan: WanSpec, peer_id: int) -> str | None:
    try:
        return desired_hash(build_desired(wan, peer_id, build_topology(wan)))
    except (TopologyInvariantError, ValueError):
        return None


def _cheap(wan: WanSpec, peer_id: int) -> str | None:
    try:
        return RouterHasher(wan, build_topology(wan)).hash(peer_id)
    except (TopologyInvariantError, ValueError):
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    wans(),
    st.lists(st.booleans(), min_size=7, max_size=7),
    st.integers(0, 10),
    st.integers(0, 30),
    st.integers(0, 9),
)
def test_router_hash_changes_exactly_with_the_desired_state(wan, flags, which, what, value):
    before = _with_routers(wan, flags)
    after = _edit(before, which, what, value)
    for p in before.peers:
        if p.kind != "mikrotik" or p.id not in {q.id for q in after.peers} or after.peer(p.id).kind != "mikrotik":
            continue
        d1, d2 = _desired(before, p.id), _desired(after, p.id)
        c1, c2 = _cheap(before, p.id), _cheap(after, p.id)
        assert (d1 is None) == (c1 is None) and (d2 is None) == (c2 is None)
        if d1 is not None and d2 is not None:
            assert (d1 == d2) == (c1 == c2), (p.name, what)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(wans())
def test_one_peers_view_equals_its_view_in_the_full_build(wan):
    try:
        full = build_topology(wan)
    except TopologyInvariantError:
        return
    for p in wan.peers:
        part = build_topology(wan, [p.id])
        assert part.views[p.id] == full.views[p.id]
        assert part.unreachable == full.views[p.id].unreachable
        if p.kind == "mikrotik":
            assert router_hash(wan, p.id) == RouterHasher(wan, full).hash(p.id)


def test_router_hash_ignores_display_names():
    wan = _with_routers(
        WanSpec(
            id=1,
            name="acme",
            tunnel_cidr=ip_network("10.0.0.0/24"),  # type: ignore[arg-type]
            services_cidr=ip_network("10.0.5.0/24"),  # type: ignore[arg-type]
            nat_pool_cidr=ip_network("172.16.0.0/12"),  # type: ignore[arg-type]
            peers=(
                PeerSpec(
                    1,
                    "u1",
                    "r1",
                    "mikrotik",
                    IPv4Address("10.0.0.1"),
                    51820,
                    "A" * 43 + "=",
                    endpoint_host="r1.example.net",
                ),
                PeerSpec(2, "u2", "s2", "server", IPv4Address("10.0.0.2"), 51820, "D" * 43 + "="),
            ),
        ),
        [True],
    )
    renamed = replace(wan, name="other", peers=tuple(replace(p, name=p.name + "x") for p in wan.peers))
    assert router_hash(wan, 1) == router_hash(renamed, 1)
    moved = replace(wan, peers=(wan.peers[0], replace(wan.peers[1], endpoint_host="s2.example.net")))
    assert router_hash(wan, 1) != router_hash(moved, 1)
