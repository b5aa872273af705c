"""Unmanaged static routes inside an aggregated WireWAN route: RouterOS prefers the longer prefix
whatever the distance, so WireWAN adds a route to exactly that destination and demotes the old one."""

from __future__ import annotations

from ipaddress import ip_address

from app.domain.routeros.plan import plan, shadowed_routes, with_shadowed_routes
from app.domain.routeros.rules import cleared
from app.domain.routeros.undo import undo_lines
from app.domain.routeros.verify import verify

from .fixtures import apply_ops, default_router, desired_x, dual_stack_wan, mesh_wan, mikrotik_x, remote_a, remote_b

ROUTE = "/ip/route"
ROUTE6 = "/ipv6/route"
WAN = "WAN-Overlay-Manager:w7:"


def _in_sync() -> dict[str, list[dict[str, str]]]:
    return apply_ops(default_router(), plan(desired_x(), default_router()).ops)


def _static(rid: str, dst: str, **props: str) -> dict[str, str]:
    return {".id": rid, "dst-address": dst, "gateway": "192.168.88.254", "distance": "1", "dynamic": "false",
            "disabled": "false", **props}  # fmt: skip


def test_a_route_inside_a_managed_one_gets_an_exact_managed_route() -> None:
    state = _in_sync()
    state[ROUTE].append(_static("*50", "10.20.5.0/24", comment="old IPsec"))
    (extra,) = shadowed_routes(desired_x(), state)
    # The covering 10.20.0.0/16's gateway and distance, this WAN's route tag.
    assert (extra.menu, extra.key) == (ROUTE, WAN + "route-10.20.5.0/24")
    assert dict(extra.props) == {"dst-address": "10.20.5.0/24", "gateway": "wg-wan-overlay", "distance": "10"}


def test_routes_that_are_not_unmanaged_static_ones_inside_ours_are_left_alone() -> None:
    state = _in_sync()
    state[ROUTE] += [
        _static("*51", "10.20.6.0/24", dynamic="true"),
        _static("*52", "10.20.7.0/24", connect="true"),
        _static("*53", "10.20.8.0/24", comment="WAN-Overlay-Manager:w8:route-10.20.8.0/24"),  # another WAN's
        _static("*54", "10.20.9.0/24", **{"routing-table": "vrf-guests"}),
        _static("*55", "10.20.0.0/16"),  # exactly ours: the plain demotion handles it
        _static("*56", "10.0.0.0/8"),  # broader: ours wins by prefix length
        _static("*57", "172.16.5.0/24"),  # outside every managed route
    ]
    assert shadowed_routes(desired_x(), state) == []
    assert [op.id for op in plan(desired_x(), state).ops] == ["*55"]


def test_a_route_to_a_remote_peers_endpoint_is_not_taken_over() -> None:
    # vps-a's endpoint lies in a LAN the overlay routes: the host route keeps its tunnel off the tunnel.
    wan = mesh_wan(mikrotik_x(), remote_a(endpoint_host="10.20.0.1"), remote_b())
    router = apply_ops(default_router(), plan(desired_x(wan), default_router()).ops)
    router[ROUTE].append(_static("*58", "10.20.0.1/32", gateway="ether1"))
    assert shadowed_routes(desired_x(wan), router) == []


def test_deploy_adds_the_route_before_demoting_then_is_in_sync_and_plans_nothing() -> None:
    state = _in_sync()
    state[ROUTE].append(_static("*50", "10.20.5.0/24", comment="old IPsec"))
    drift = verify(desired_x(), state)
    assert sorted((d.kind, d.key) for d in drift) == [
        ("demotion-undone", "10.20.5.0/24"),
        ("missing", WAN + "route-10.20.5.0/24"),
    ]

    p = plan(desired_x(), state)
    assert p.cli_lines() == [
        f'/ip route add dst-address=10.20.5.0/24 gateway=wg-wan-overlay distance=10 comment="{WAN}route-10.20.5.0/24"',
        "/ip route set *50 distance=11",
    ]
    after = apply_ops(state, p.ops)
    assert verify(desired_x(), after) == []
    assert plan(desired_x(), after).empty
    # The commit-confirmed undo takes both back.
    assert undo_lines(p, state) == [
        "/ip route set *50 distance=1",
        f'/ip route remove [find comment="{WAN}route-10.20.5.0/24"]',
    ]


def test_when_the_unmanaged_route_goes_the_exact_managed_route_goes() -> None:
    state = _in_sync()
    state[ROUTE].append(_static("*50", "10.20.5.0/24"))
    deployed = apply_ops(state, plan(desired_x(), state).ops)
    deployed[ROUTE] = [r for r in deployed[ROUTE] if r[".id"] != "*50"]
    assert [(d.kind, d.key) for d in verify(desired_x(), deployed)] == [("extra", WAN + "route-10.20.5.0/24")]
    (op,) = plan(desired_x(), deployed).ops
    assert (op.action, op.key) == ("remove", WAN + "route-10.20.5.0/24")


def test_clear_removes_the_exact_managed_route() -> None:
    state = _in_sync()
    state[ROUTE].append(_static("*50", "10.20.5.0/24"))
    deployed = apply_ops(state, plan(desired_x(), state).ops)
    empty = cleared(desired_x(), [], ip_address("192.168.88.10"))
    removed = {op.key for op in plan(empty, deployed).ops if op.action == "remove"}
    assert WAN + "route-10.20.5.0/24" in removed


def test_ipv6_routes_inside_a_managed_prefix_are_covered_too() -> None:
    desired = desired_x(dual_stack_wan())
    router = apply_ops(default_router(), plan(desired, default_router()).ops)
    router[ROUTE6] = [*router.get(ROUTE6, []), _static("*60", "fd30::/80", gateway="bridge")]
    augmented = with_shadowed_routes(desired, router)
    assert augmented.by_key(ROUTE6, WAN + "route-fd30::/80") is not None
    assert [str(p) for p in augmented.demotion.dst_prefixes][-1] == "fd30::/80"
    assert [op.cli() for op in plan(desired, router).ops if op.id == "*60"] == ["/ipv6 route set *60 distance=11"]
