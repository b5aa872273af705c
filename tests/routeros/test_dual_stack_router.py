"""A dual-stack WAN on a MikroTik (issue 14): /ipv6/address, IPv6 routes with demotion and IPv6 filter
accepts before the defconf IPv6 drops. Script and API plan end identical on the simulator (whose
default configuration carries RouterOS 7's IPv6 firewall), and a second paste changes nothing."""

from __future__ import annotations

from ipaddress import IPv4Address

from app.domain.routeros.desired import ADDRESS6, FILTER6, IPV6_MENUS, ROUTE6, DesiredState, build_desired
from app.domain.routeros.plan import plan
from app.domain.routeros.script import render_script
from app.domain.routeros.verify import verify
from app.routeros_api import RouterSession, RouterTarget
from tests.domain.routeros.fixtures import dual_stack_wan
from tests.routeros.test_script_and_plan_agree import MENUS, PASSWORD
from tests.routeros_sim.server import SimRouter

ALL = (*MENUS, *IPV6_MENUS)


def desired() -> DesiredState:
    return build_desired(dual_stack_wan(), 1, management_source=IPv4Address("127.0.0.1"))


def session(sim: SimRouter) -> RouterSession:
    host, port = sim.address
    return RouterSession(RouterTarget(host=host, port=port, username="admin", password=PASSWORD))


def deploy(sim: SimRouter, want: DesiredState) -> None:
    with session(sim) as s:
        p = plan(want, s.read_state(ALL))
        assert not p.conflicts
        s.apply(p)


def test_script_and_api_reach_the_same_dual_stack_router() -> None:
    want = desired()
    script = render_script(want, "homelab", "office-mikrotik")
    with SimRouter(password=PASSWORD) as by_script, SimRouter(password=PASSWORD) as by_api:
        by_script.run_script(script)
        once = by_script.normalized_dump()
        by_script.run_script(script)  # pasted twice: nothing changes
        assert by_script.normalized_dump() == once
        deploy(by_api, want)
        assert by_api.normalized_dump() == once
        for sim in (by_script, by_api):
            with session(sim) as s:
                actual = s.read_state(ALL)
            assert plan(want, actual).cli_lines() == [] and verify(want, actual) == []
        assert by_script.internal_errors == [] and by_api.internal_errors == []

        [address] = [r for r in by_api.rows(ADDRESS6) if r.get("comment", "").startswith("WAN-Overlay-Manager:")]
        assert (address["address"], address["interface"], address["advertise"]) == (
            "fd10:77::1/64",
            "wg-wan-overlay",
            "false",
        )
        # Remote IPv6 LANs get a distance-10 route; the tunnel /128s ride the connected /64.
        routes = {r["dst-address"]: r["distance"] for r in by_api.rows(ROUTE6)}
        assert routes == {"fd30::/64": "10"}


def test_ipv6_accepts_sit_before_the_defconf_ipv6_drops() -> None:
    with SimRouter(password=PASSWORD) as sim:
        deploy(sim, desired())
        rows = sim.rows(FILTER6)
        for chain in ("input", "forward"):
            in_chain = [r for r in rows if r["chain"] == chain]
            first_drop = next(i for i, r in enumerate(in_chain) if r["action"] == "drop")
            ours = [i for i, r in enumerate(in_chain) if r.get("comment", "").startswith("WAN-Overlay-Manager:")]
            assert len(ours) == 2 and max(ours) < first_drop, chain
        # The IPv4 filter got its own accepts; the defconf IPv6 rules are all still there.
        assert sum(r.get("comment", "").startswith("defconf:") for r in rows) == 22


def test_an_unmanaged_ipv6_route_is_demoted_not_removed() -> None:
    with SimRouter(password=PASSWORD) as sim:
        sim.state.add(ROUTE6, {"dst-address": "fd30::/64", "gateway": "bridge", "distance": "1", "comment": "old"})
        deploy(sim, desired())
        distances = sorted((r.get("comment", ""), r["distance"]) for r in sim.rows(ROUTE6))
        assert distances == [("WAN-Overlay-Manager:w7:route-fd30::/64", "10"), ("old", "11")]
