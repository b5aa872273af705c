"""What a deploy must never do to a router: touch what is not ours, leave a shadowing route in
charge, put our accepts behind the drop rule, lock WireWAN out, fight another WireGuard interface for
its port, or try on a RouterOS without WireGuard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.jobs.conftest import ROUTER_PASSWORD, TAG, tagged_rows
from tests.routeros_sim.server import SimRouter

AUTO = {"auto": True}
DEFCONF_INPUT_DROP = "defconf: drop all not coming from LAN"
DEFCONF_FORWARD_DROP = "defconf: drop all from WAN not DSTNATed"
# Step 0 rewrites the API user's and the api service's allowed addresses on purpose.
STEP0 = ("/user", "/ip/service")


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimRouter]:
    """As tests/jobs/conftest.py's, with `preset`/`version` chosen by indirect parametrization."""
    options = {"preset": "defconf", **getattr(request, "param", {})}
    with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True, **options) as router:
        yield router
    assert router.internal_errors == []


def unmanaged(dump: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Rows WireWAN must leave alone: untagged, not dynamic, outside Step 0 and the rollback's menus."""
    return {
        menu: [r for r in rows if not str(r.get("comment", "")).startswith(TAG) and r.get("dynamic") != "true"]
        for menu, rows in dump.items()
        if menu not in (*STEP0, "/system/scheduler", "/file")
    }


def deploy_ok(run_direct: Any, router: int) -> dict[str, Any]:
    done: dict[str, Any] = run_direct("deploy", router, AUTO)
    assert done["status"] == "succeeded", done
    return done


@pytest.mark.parametrize("sim", [{"preset": "existing"}], indirect=True)
def test_unmanaged_lookalikes_are_untouched(run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]) -> None:
    router = router_wan["router"]["id"]
    before = sim.normalized_dump()
    # The look-alikes: another WireGuard interface with its own peer and address, user firewall rules.
    assert [r["name"] for r in sim.rows("/interface/wireguard")] == ["wg-home"]
    assert sim.rows("/interface/wireguard/peers")[0]["comment"] == "phone"

    deploy_ok(run_direct, router)
    after = sim.normalized_dump()
    assert unmanaged(after) == unmanaged(before)
    assert tagged_rows(sim), "the deploy put nothing on the router"
    # Of the users, only the API user's allowed addresses moved; the others are as they were.
    assert [u for u in after["/user"] if u["name"] != "admin"] == [u for u in before["/user"] if u["name"] != "admin"]

    verify = run_direct("verify", router)
    assert verify["result"]["in_sync"] is True, verify  # the look-alikes are not 'extra' managed rows

    assert run_direct("clear", router)["status"] == "succeeded"
    cleared = sim.normalized_dump()
    assert {m: r for m, r in cleared.items() if m not in STEP0} == {m: r for m, r in before.items() if m not in STEP0}


@pytest.mark.parametrize("sim", [{"preset": "existing"}], indirect=True)
def test_a_shadowing_route_is_demoted_to_11_and_clear_restores_it(
    api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    before = sim.normalized_dump()
    old = sim.rows("/ip/route", **{"dst-address": "192.168.1.0/24"})
    assert len(old) == 1 and old[0].get("distance", "1") == "1" and old[0]["comment"] == "office LAN via old VPN box"
    # The VPS now hosts 192.168.1.0/24: the router's own static route would win over the tunnel.
    assert (
        api.post(f"/api/peers/{router_wan['server']['id']}/subnets", json={"cidr": "192.168.1.0/24"}).status_code == 201
    )

    pre = api.get(f"/api/peers/{router}/mikrotik/preflight")
    run_jobs()
    preflight = api.get(pre.headers["Location"]).get_json()
    assert preflight["status"] == "succeeded", preflight
    assert any(c.startswith("note:") and "192.168.1.0/24" in c for c in preflight["result"]["conflicts"])

    deploy_ok(run_direct, router)
    routes = sim.rows("/ip/route", **{"dst-address": "192.168.1.0/24"})
    theirs = [r for r in routes if r.get("comment") == "office LAN via old VPN box"]
    ours = [r for r in routes if str(r.get("comment", "")).startswith(TAG)]
    assert len(theirs) == 1 and theirs[0]["distance"] == "11" and theirs[0][".id"] == old[0][".id"]
    assert len(ours) == 1 and int(ours[0]["distance"]) < 11
    assert run_direct("verify", router)["result"]["in_sync"] is True
    # A redeploy does not demote again (nor record 11 as the original distance).
    assert deploy_ok(run_direct, router)["result"]["writes"] == 0

    clear = run_direct("clear", router)
    assert clear["status"] == "succeeded" and clear["result"]["restored_routes"] == 1, clear
    restored = sim.rows("/ip/route", **{"dst-address": "192.168.1.0/24"})
    assert len(restored) == 1 and restored[0].get("distance", "1") == "1"
    assert {m: r for m, r in sim.normalized_dump().items() if m not in STEP0} == {
        m: r for m, r in before.items() if m not in STEP0
    }


def _aggregated_wan(api: Any, router_wan: dict[str, Any]) -> None:
    """The VPS hosts four adjacent /24s: the router gets one aggregated 10.1.0.0/22 route."""
    for third in range(4):
        cidr = f"10.1.{third}.0/24"
        assert api.post(f"/api/peers/{router_wan['server']['id']}/subnets", json={"cidr": cidr}).status_code == 201


def _route(sim: SimRouter, dst: str, tagged: bool) -> list[dict[str, str]]:
    rows = sim.rows("/ip/route", **{"dst-address": dst})
    return [r for r in rows if str(r.get("comment", "")).startswith(TAG) == tagged and r.get("dynamic") != "true"]


def test_a_route_inside_an_aggregated_route_is_taken_over_and_clear_restores_it(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    _aggregated_wan(api, router_wan)
    sim.state.add("/ip/route", {"dst-address": "10.1.2.0/24", "gateway": "192.168.88.254", "comment": "old IPsec"})
    before = sim.normalized_dump()
    (old,) = _route(sim, "10.1.2.0/24", tagged=False)
    assert old.get("distance", "1") == "1"

    deploy_ok(run_direct, router)
    assert [r["distance"] for r in _route(sim, "10.1.0.0/22", tagged=True)] == ["10"]
    (ours,) = _route(sim, "10.1.2.0/24", tagged=True)
    (theirs,) = _route(sim, "10.1.2.0/24", tagged=False)
    assert (ours["distance"], ours["gateway"]) == ("10", sim.rows("/interface/wireguard")[0]["name"])
    assert ours["active"] == "true" and ours["comment"].startswith(TAG + f"w{router_wan['wan']['id']}:")
    assert (theirs[".id"], theirs["distance"], theirs["active"]) == (old[".id"], "11", "false")
    assert run_direct("verify", router)["result"]["in_sync"] is True
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False
    assert deploy_ok(run_direct, router)["result"]["writes"] == 0

    clear = run_direct("clear", router)
    assert clear["status"] == "succeeded" and clear["result"]["restored_routes"] == 1, clear
    assert [r["distance"] for r in _route(sim, "10.1.2.0/24", tagged=False)] == ["1"]
    assert not tagged_rows(sim)
    assert {m: r for m, r in sim.normalized_dump().items() if m not in STEP0} == {
        m: r for m, r in before.items() if m not in STEP0
    }


def test_the_exact_managed_route_goes_when_the_unmanaged_one_does(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    _aggregated_wan(api, router_wan)
    rid = sim.state.add("/ip/route", {"dst-address": "10.1.2.0/24", "gateway": "192.168.88.254"})
    deploy_ok(run_direct, router)
    assert len(_route(sim, "10.1.2.0/24", tagged=True)) == 1

    sim.state.remove("/ip/route", rid)
    drift = run_direct("verify", router)["result"]
    assert drift["in_sync"] is False and [d["kind"] for d in drift["drift"]] == ["extra"]
    deploy_ok(run_direct, router)
    assert _route(sim, "10.1.2.0/24", tagged=True) == []
    assert [r["distance"] for r in _route(sim, "10.1.0.0/22", tagged=True)] == ["10"]
    assert run_direct("verify", router)["result"]["in_sync"] is True


def test_filter_accepts_go_before_the_defconf_drops(
    run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    deploy_ok(run_direct, router)
    rules = sim.rows("/ip/firewall/filter")
    for chain, drop_comment in (("input", DEFCONF_INPUT_DROP), ("forward", DEFCONF_FORWARD_DROP)):
        chain_rules = [r for r in rules if r.get("chain") == chain]
        comments = [str(r.get("comment", "")) for r in chain_rules]
        ours = [i for i, c in enumerate(comments) if c.startswith(TAG)]
        drop = comments.index(drop_comment)
        assert ours, f"no managed accept in {chain}"
        assert max(ours) < drop, (chain, comments)
        assert all(chain_rules[i]["action"] == "accept" for i in ours)
        # Nothing of ours is shadowed by any drop (defconf's "drop invalid" only drops invalid state).
        for i in ours:
            assert not [
                r for r in chain_rules[:i] if r.get("action") == "drop" and r.get("connection-state") != "invalid"
            ], (chain, comments)


def test_step0_keeps_admitting_the_address_wirewan_connects_from(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    wan = router_wan["wan"]["id"]
    resp = api.patch(f"/api/wan/{wan}", json={"mgmt_cidrs": ["10.200.0.0/24"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["mgmt_cidrs"] == ["10.200.0.0/24"]

    deploy_ok(run_direct, router)
    user = sim.rows("/user", name="admin")[0]["address"].split(",")
    service = sim.rows("/ip/service", name="api")[0]["address"].split(",")
    for allowed in (user, service):
        assert "10.200.0.0/24" in allowed  # what the WAN asked for ...
        assert "127.0.0.1/32" in allowed or "127.0.0.1" in allowed  # ... and where WireWAN is
        assert "192.168.0.0/16" not in allowed

    # The next connection still gets in, and a redeploy does not take 127.0.0.1 away.
    test = run_direct("test_connection", router)
    assert test["status"] == "succeeded", test
    assert deploy_ok(run_direct, router)["result"]["writes"] == 0
    assert run_direct("verify", router)["result"]["in_sync"] is True


def test_another_wireguard_interface_on_our_port_is_a_preflight_conflict(
    api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    port = router_wan["router"]["listen_port"] or router_wan["wan"]["listen_port"]
    sim.state.add("/interface/wireguard", {"name": "wg-clients", "listen-port": str(port)})
    sim.state.add("/ip/address", {"address": "10.0.0.1/24", "interface": "wg-clients"})
    before = sim.normalized_dump()

    resp = api.get(f"/api/peers/{router}/mikrotik/preflight")
    run_jobs()
    pre = api.get(resp.headers["Location"]).get_json()
    assert pre["status"] == "succeeded", pre
    conflicts = pre["result"]["conflicts"]
    assert f"WireGuard interface 'wg-clients' already listens on UDP {port}." in conflicts, conflicts
    assert any("10.0.0.1/24 on wg-clients overlaps the tunnel address" in c for c in conflicts), conflicts
    assert pre["result"]["writes"] == 0 and sim.normalized_dump() == before
    # RouterOS would refuse our interface half-way through the plan: the deploy is refused up front.
    assert pre["result"]["blocking"] == [f"WireGuard interface 'wg-clients' already listens on UDP {port}."]
    resp = api.post(
        f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
    )
    assert resp.status_code == 409 and "wg-clients" in resp.get_json()["message"]
    sim.reset_counters()
    auto = run_direct("deploy", router, AUTO)
    assert auto["status"] == "failed" and "already listens on UDP" in auto["error"], auto
    assert sim.counters.writes == 0 and sim.normalized_dump() == before


@pytest.mark.parametrize("sim", [{"version": "6.49.10"}], indirect=True)
@pytest.mark.parametrize("kind", ["deploy", "preflight", "test_connection"])
def test_routeros_6_is_refused_clearly(run_direct: Any, sim: SimRouter, router_wan: dict[str, Any], kind: str) -> None:
    router = router_wan["router"]["id"]
    before = sim.normalized_dump()
    done = run_direct(kind, router, AUTO if kind == "deploy" else None)
    assert done["status"] == "failed", done
    assert done["error"].startswith("RouterOS 6.49.10"), done["error"]
    assert done["error"].endswith("is too old: WireGuard needs RouterOS 7 or newer."), done["error"]
    assert sim.counters.writes == 0 and sim.normalized_dump() == before
