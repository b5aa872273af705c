"""One desired state, two ways onto a router: the pasted .rsc and the API plan end identical.

The simulator runs the bootstrap script with its .rsc executor; a second simulator, from the same
start state, gets the plan applied through librouteros by app.routeros_api. Their state dumps must
match, a second paste must change nothing, and after either the plan is empty and verify is clean.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from app.domain.routeros.desired import ADDRESS, FILTER, NAT, ROUTE, SERVICE, USER, WG, WG_PEERS
from app.domain.routeros.plan import plan
from app.domain.routeros.script import render_script
from app.domain.routeros.verify import verify
from app.routeros_api import RouterSession, RouterTarget
from tests.domain.routeros import fixtures
from tests.domain.routeros.fixtures import mesh_wan
from tests.routeros_sim.server import SimRouter

MENUS = (USER, SERVICE, WG, WG_PEERS, ADDRESS, ROUTE, FILTER, NAT)
PASSWORD = "secret"
LOOPBACK = IPv4Address("127.0.0.1")


def desired_x(wan=None):
    # WireWAN connects from loopback here; step 0 must keep admitting it (DESIGN.md §6).
    return fixtures.desired_x(wan, source=LOOPBACK)


def session(sim: SimRouter) -> RouterSession:
    host, port = sim.address
    return RouterSession(RouterTarget(host=host, port=port, username="admin", password=PASSWORD))


def deploy_over_api(sim: SimRouter, desired) -> int:
    with session(sim) as s:
        p = plan(desired, s.read_state(MENUS))
        assert not p.conflicts
        s.apply(p)
        return s.writes


def fresh_plan(sim: SimRouter, desired):
    with session(sim) as s:
        actual = s.read_state(MENUS)
    return plan(desired, actual), verify(desired, actual)


@pytest.mark.parametrize("preset", ["defconf", "existing"])
def test_script_and_api_plan_reach_the_same_state(preset):
    desired = desired_x(wan_routing_the_existing_lan() if preset == "existing" else None)
    script = render_script(desired, "homelab", "office-mikrotik")
    with (
        SimRouter(password=PASSWORD, preset=preset) as by_script,
        SimRouter(password=PASSWORD, preset=preset) as by_api,
    ):
        before = by_script.normalized_dump()
        by_script.run_script(script)
        writes = deploy_over_api(by_api, desired)
        assert writes > 10
        assert by_script.normalized_dump() == by_api.normalized_dump()
        assert by_script.normalized_dump() != before
        for sim in (by_script, by_api):
            leftover, drift = fresh_plan(sim, desired)
            assert leftover.cli_lines() == [] and drift == []
        assert by_script.internal_errors == [] and by_api.internal_errors == []


def test_script_pasted_twice_changes_nothing():
    script = render_script(desired_x(), "homelab", "office-mikrotik")
    with SimRouter(password=PASSWORD) as sim:
        sim.run_script(script)
        once = sim.dump()
        assert sim.dump() == once
        comments = [r.get("comment", "") for r in sim.rows("/interface/wireguard/peers")]
        managed = [c for c in comments if c.startswith("WAN-Overlay-Manager:")]
        assert len(managed) == len(set(managed)) == 2


def wan_routing_the_existing_lan():
    """home-b hosts 192.168.1.0/24: the 'existing' router already has a distance-1 route to it."""
    from ipaddress import ip_network

    from app.domain.model import SubnetSpec
    from tests.domain.routeros.fixtures import mikrotik_x, remote_a, remote_b

    x = mikrotik_x(subnets=(SubnetSpec(id=11, cidr=ip_network("192.168.10.0/24")),))
    b = remote_b(subnets=(SubnetSpec(id=41, cidr=ip_network("192.168.1.0/24")),))
    return mesh_wan(x, remote_a(), b)


def test_unmanaged_look_alikes_survive_the_script():
    with SimRouter(password=PASSWORD, preset="existing") as sim:
        home = [r for r in sim.rows("/interface/wireguard") if r["name"] == "wg-home"]
        rules = [r for r in sim.rows("/ip/firewall/filter") if not r.get("comment", "").startswith("WAN-Overlay")]
        sim.run_script(render_script(desired_x(wan_routing_the_existing_lan()), "homelab", "office-mikrotik"))
        assert [r for r in sim.rows("/interface/wireguard") if r["name"] == "wg-home"] == home
        after = [r for r in sim.rows("/ip/firewall/filter") if not r.get("comment", "").startswith("WAN-Overlay")]
        assert [r["comment"] for r in after if "comment" in r] == [r["comment"] for r in rules if "comment" in r]
        # The distance-1 route to a LAN we route is demoted to 11, not removed.
        demoted = sim.rows("/ip/route", **{"dst-address": "192.168.1.0/24"})
        assert sorted(r["distance"] for r in demoted if r.get("dynamic") == "false") == ["10", "11"]


def test_accept_rules_sit_before_the_defconf_drop():
    with SimRouter(password=PASSWORD) as sim:
        deploy_over_api(sim, desired_x())
        inputs = [r for r in sim.rows("/ip/firewall/filter") if r["chain"] == "input"]
        comments = [r.get("comment", "") for r in inputs]
        drop = comments.index("defconf: drop all not coming from LAN")
        ours = [i for i, c in enumerate(comments) if c.startswith("WAN-Overlay-Manager:w") and ":allow-" in c]
        assert ours and max(ours) < drop


def test_no_change_redeploy_writes_nothing():
    desired = desired_x()
    with SimRouter(password=PASSWORD) as sim:
        deploy_over_api(sim, desired)
        sim.reset_counters()
        assert deploy_over_api(sim, desired) == 0
        assert sim.counters.writes == 0 and sim.counters.reads == len(MENUS)


def test_endpoint_change_is_one_set_and_the_session_survives():
    from tests.domain.routeros.fixtures import mikrotik_x, remote_a, remote_b

    with SimRouter(password=PASSWORD) as sim:
        deploy_over_api(sim, desired_x())
        key = remote_a().public_key
        sim.set_handshake(key, seconds_ago=3)
        entry = sim.rows("/interface/wireguard/peers", **{"public-key": key})[0]
        sim.reset_counters()
        moved = mesh_wan(mikrotik_x(), remote_a(endpoint_host="203.0.113.99"), remote_b())
        assert deploy_over_api(sim, desired_x(moved)) == 1
        [write] = sim.writes()
        assert write.command == "/interface/wireguard/peers/set"
        after = sim.rows("/interface/wireguard/peers", **{"public-key": key})[0]
        assert after[".id"] == entry[".id"] and after["endpoint-address"] == "203.0.113.99"
        assert "last-handshake" in after  # same entry, session kept


def test_the_script_retags_a_router_deployed_before_tags_named_their_wan():
    """Pasting today's script on a router with old-format tags updates those rows (no duplicates)."""
    from app.domain.routeros.desired import legacy_key

    desired = desired_x()
    with SimRouter(password=PASSWORD, preset="defconf") as sim:
        deploy_over_api(sim, desired)
        with sim.state.lock:
            for rows in sim.state.tables.values():
                for row in rows:
                    if str(row.get("comment", "")).startswith("WAN-Overlay-Manager:w"):
                        row["comment"] = legacy_key(row["comment"])
        sim.run_script(render_script(desired, "homelab", "office-mikrotik"))
        p, drift = fresh_plan(sim, desired)
        assert p.empty and drift == [], [op.cli() for op in p.ops]


def _old_route(sim: SimRouter, dst: str, gateway: str = "192.168.88.254") -> None:
    sim.state.add(ROUTE, {"dst-address": dst, "gateway": gateway, "comment": "old IPsec"})


def test_script_and_api_take_over_a_route_inside_a_managed_one_alike():
    """10.20.5.0/24 lies inside WireWAN's 10.20.0.0/16 and would win by prefix length: both ways add
    a WireWAN route to exactly 10.20.5.0/24 and demote the old one, and then agree there is nothing to do."""
    desired = desired_x()
    script = render_script(desired, "homelab", "office-mikrotik")
    with SimRouter(password=PASSWORD) as by_script, SimRouter(password=PASSWORD) as by_api:
        for sim in (by_script, by_api):
            _old_route(sim, "10.20.5.0/24")
        by_script.run_script(script)
        deploy_over_api(by_api, desired)
        assert by_script.normalized_dump() == by_api.normalized_dump()
        routes = sorted(
            (r.get("comment", ""), r["distance"]) for r in by_script.rows(ROUTE, **{"dst-address": "10.20.5.0/24"})
        )
        assert routes == [("WAN-Overlay-Manager:w7:route-10.20.5.0/24", "10"), ("old IPsec", "11")]
        for sim in (by_script, by_api):
            leftover, drift = fresh_plan(sim, desired)
            assert leftover.cli_lines() == [] and drift == []
        once = by_script.normalized_dump()
        by_script.run_script(script)
        assert by_script.normalized_dump() == once
        assert by_script.internal_errors == [] and by_api.internal_errors == []


def test_a_route_to_a_remote_endpoint_inside_a_managed_prefix_is_left_alone_both_ways():
    from tests.domain.routeros.fixtures import mikrotik_x, remote_a, remote_b

    desired = desired_x(mesh_wan(mikrotik_x(), remote_a(endpoint_host="10.20.0.1"), remote_b()))
    with SimRouter(password=PASSWORD) as by_script, SimRouter(password=PASSWORD) as by_api:
        for sim in (by_script, by_api):
            _old_route(sim, "10.20.0.1/32", gateway="ether1")
        by_script.run_script(render_script(desired, "homelab", "office-mikrotik"))
        deploy_over_api(by_api, desired)
        for sim in (by_script, by_api):
            assert [(r.get("comment"), r["distance"]) for r in sim.rows(ROUTE, **{"dst-address": "10.20.0.1/32"})] == [
                ("old IPsec", "1")
            ]
            assert fresh_plan(sim, desired)[0].cli_lines() == []
