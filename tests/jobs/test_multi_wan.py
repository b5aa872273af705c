"""One router, several WANs (issue 16 §1): each WAN has its own interface and listen port on the same
MikroTik; every job of one WAN reads, plans and touches only its own rows, and the API user and
services keep admitting what every WAN needs. On the simulator over TCP, jobs run by RQ."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.jobs.conftest import ROUTER_PASSWORD
from tests.jobs.test_deploy_lifecycle import finished, preflight_and_deploy
from tests.routeros_sim.server import SimRouter

TAG = "WAN-Overlay-Manager:"


def make_wan(api: Any, sim: SimRouter, name: str, n: int, *, port: int | None = None) -> dict[str, Any]:
    """A WAN whose MikroTik peer is the shared simulator, plus one public server with a LAN."""
    wan = api.post(
        "/api/wan",
        json={
            "name": name,
            "tunnel_cidr": f"10.{n}.0.0/24",
            "services_cidr": f"10.{n}.5.0/24",
            "nat_pool_cidr": f"172.{16 + n}.0.0/16",
            "mgmt_cidrs": [f"192.0.2.{n * 16}/28"],
        },
    ).get_json()
    host, sim_port = sim.address
    router = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={
            "name": f"office-{name}",
            "kind": "mikrotik",
            "endpoint": "198.51.100.7",
            "listen_port": port or 51820 + n,
            "mikrotik": {"host": host, "port": sim_port, "username": "admin", "password": ROUTER_PASSWORD},
        },
    )
    assert router.status_code == 201, router.get_json()
    server = api.post(
        f"/api/peers/wan/{wan['id']}", json={"name": f"vps-{name}", "kind": "server", "endpoint": f"203.0.113.{n}"}
    ).get_json()
    api.post(f"/api/peers/{server['id']}/subnets", json={"cidr": f"10.{100 + n}.0.0/16"})
    return {"wan": wan, "router": router.get_json(), "server": server}


def rows_of(sim: SimRouter, wan_id: int) -> dict[str, list[dict[str, str]]]:
    """The normalised dump of the rows tagged for one WAN."""
    mine = f"{TAG}w{wan_id}:"
    return {
        menu: [r for r in rows if str(r.get("comment", "")).startswith(mine)]
        for menu, rows in sim.normalized_dump().items()
    }


def admitted(sim: SimRouter) -> dict[str, set[str]]:
    """Allowed addresses of the API user and the API service."""
    user = sim.rows("/user", name="admin")[0]
    api_svc = sim.rows("/ip/service", name="api")[0]
    return {
        "user": set(str(user.get("address", "")).split(",")),
        "api": set(str(api_svc.get("address", "")).split(",")),
    }


def needs(n: int) -> set[str]:
    return {f"10.{n}.0.0/24", f"192.0.2.{n * 16}/28"}


@pytest.fixture
def wans(api: Any, sim: SimRouter) -> list[dict[str, Any]]:
    return [make_wan(api, sim, name, n) for n, name in ((1, "alpha"), (2, "beta"), (3, "gamma"))]


def test_interface_names_differ_per_wan(wans: list[dict[str, Any]]) -> None:
    assert [w["wan"]["interface_name"] for w in wans] == ["wg-alpha", "wg-beta", "wg-gamma"]


def test_three_wans_share_a_router_and_each_jobs_leave_the_others_alone(
    app: Flask, api: Any, run_jobs: Any, sim: SimRouter, wans: list[dict[str, Any]]
) -> None:
    for w in wans:
        pre, dep = preflight_and_deploy(api, run_jobs, w["router"]["id"])
        assert dep["status"] == "succeeded", dep
        # Nothing of the WANs deployed before is planned away.
        assert not [line for line in pre["result"]["plan_lines"] if " remove " in line], pre["result"]["plan_lines"]
    names = {r["name"] for r in sim.rows("/interface/wireguard")}
    assert {"wg-alpha", "wg-beta", "wg-gamma"} <= names
    for n in (1, 2, 3):
        assert needs(n) <= admitted(sim)["user"] and needs(n) <= admitted(sim)["api"]

    # Every WAN verifies in sync; a redeploy of each writes nothing (no ping-pong over shared rows).
    for w in wans:
        verify = finished(api, run_jobs, api.get(f"/api/peers/{w['router']['id']}/mikrotik/verify"))
        assert verify["result"]["in_sync"] is True, verify["result"]["drift"]
    sim.reset_counters()
    for w in wans:
        pre, dep = preflight_and_deploy(api, run_jobs, w["router"]["id"])
        assert pre["result"]["plan"] == [] and dep["result"]["writes"] == 0
    assert sim.counters.writes == 0

    alpha, beta, gamma = wans
    others = {w["wan"]["id"]: rows_of(sim, w["wan"]["id"]) for w in (alpha, gamma)}
    access = admitted(sim)

    # beta: a change, a revert, and a clear — alpha's and gamma's rows never move.
    assert api.patch(f"/api/peers/{beta['server']['id']}", json={"endpoint": "203.0.113.99"}).status_code == 200
    _, dep = preflight_and_deploy(api, run_jobs, beta["router"]["id"])
    assert dep["status"] == "succeeded" and dep["result"]["operations"] == 1, dep
    rev = finished(api, run_jobs, api.post(f"/api/peers/{beta['router']['id']}/mikrotik/revert"))
    assert rev["status"] == "succeeded", rev
    assert {k: rows_of(sim, k) for k in others} == others
    assert admitted(sim) == access

    clear = finished(api, run_jobs, api.post(f"/api/peers/{beta['router']['id']}/mikrotik/clear"))
    assert clear["status"] == "succeeded", clear
    assert {k: rows_of(sim, k) for k in others} == others
    assert not any(rows_of(sim, beta["wan"]["id"]).values()), "beta's rows are gone"
    assert "wg-beta" not in {r["name"] for r in sim.rows("/interface/wireguard")}
    # beta's own ranges are no longer admitted; what alpha and gamma need still is.
    left = admitted(sim)
    for n in (1, 3):
        assert needs(n) <= left["user"] and needs(n) <= left["api"]
    assert not needs(2) & left["api"]

    for w in (alpha, gamma):
        verify = finished(api, run_jobs, api.get(f"/api/peers/{w['router']['id']}/mikrotik/verify"))
        assert verify["result"]["in_sync"] is True, verify["result"]["drift"]


def test_two_wans_on_auto_deploy_converge_with_no_writes_after_the_first_round(
    app: Flask, api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter
) -> None:
    alpha, beta = make_wan(api, sim, "alpha", 1), make_wan(api, sim, "beta", 2)
    for w in (alpha, beta):
        rid = w["router"]["id"]
        assert api.patch(f"/api/peers/{rid}", json={"mikrotik": {"auto_deploy": True}}).status_code == 200
        assert run_direct("deploy", rid)["status"] == "succeeded"
    # A change in each WAN queues one auto deploy per router row; both run.
    for n, w in ((1, alpha), (2, beta)):
        resp = api.post(f"/api/peers/{w['server']['id']}/subnets", json={"cidr": f"10.{120 + n}.0.0/16"})
        assert resp.status_code == 201
    run_jobs()
    for w in (alpha, beta):
        assert api.get(f"/api/peers/{w['router']['id']}").get_json()["stale"] is False
    # The second round finds nothing to do, for either WAN.
    sim.reset_counters()
    for w in (alpha, beta):
        dep = run_direct("deploy", w["router"]["id"])
        assert dep["status"] == "succeeded" and dep["result"]["writes"] == 0, dep
    assert sim.counters.writes == 0
    for w in (alpha, beta):
        assert run_direct("verify", w["router"]["id"])["result"]["in_sync"] is True


def test_a_router_with_old_format_tags_is_retagged_with_sets_only(
    app: Flask, api: Any, run_jobs: Any, sim: SimRouter
) -> None:
    alpha = make_wan(api, sim, "alpha", 1)
    rid = alpha["router"]["id"]
    _, dep = preflight_and_deploy(api, run_jobs, rid)
    assert dep["status"] == "succeeded"
    # Turn the router into one deployed before tags named their WAN.
    prefix = f"{TAG}w{alpha['wan']['id']}:"
    with sim.state.lock:
        for rows in sim.state.tables.values():
            for row in rows:
                if str(row.get("comment", "")).startswith(prefix):
                    row["comment"] = TAG + row["comment"][len(prefix) :]
    ids_before = {(r["comment"][len(TAG) :], r[".id"]) for r in sim.rows("/interface/wireguard/peers")}
    verify = finished(api, run_jobs, api.get(f"/api/peers/{rid}/mikrotik/verify"))
    assert verify["result"]["in_sync"] is False
    assert any("old format" in d["details"] for d in verify["result"]["drift"])

    sim.reset_counters()
    pre, dep = preflight_and_deploy(api, run_jobs, rid)
    assert dep["status"] == "succeeded", dep
    writes = [c.command for c in sim.writes()]
    # Only sets: no remove/add (no session drops), and nothing risky, so no rollback to arm.
    assert len(writes) == dep["result"]["plan_writes"] > 0
    assert all(c.endswith("/set") for c in writes), writes
    assert all(" set " in line and "comment=" in line for line in pre["result"]["plan_lines"])
    # Same rows (same .id), now with the new tags: no WireGuard session was dropped.
    ids_after = {(r["comment"][len(prefix) :], r[".id"]) for r in sim.rows("/interface/wireguard/peers")}
    assert ids_after == ids_before
    verify = finished(api, run_jobs, api.get(f"/api/peers/{rid}/mikrotik/verify"))
    assert verify["result"]["in_sync"] is True, verify["result"]["drift"]


def test_two_wans_with_one_listen_port_on_one_router_is_a_named_conflict(
    app: Flask, api: Any, run_jobs: Any, sim: SimRouter
) -> None:
    alpha = make_wan(api, sim, "alpha", 1, port=51820)
    beta = make_wan(api, sim, "beta", 2, port=51820)
    pre = finished(api, run_jobs, api.get(f"/api/peers/{beta['router']['id']}/mikrotik/preflight"))
    blocking = pre["result"]["blocking"]
    assert any("WAN 'alpha'" in b and "UDP 51820" in b and "listen port" in b for b in blocking), blocking
    resp = api.post(
        f"/api/peers/{beta['router']['id']}/mikrotik/deploy",
        json={"approve": True, "plan_hash": pre["result"]["plan_hash"]},
    )
    assert resp.status_code == 409
    # The same interface name: named too, with the fix.
    assert api.patch(f"/api/wan/{beta['wan']['id']}", json={"interface_name": "wg-alpha"}).status_code == 200
    pre = finished(api, run_jobs, api.get(f"/api/peers/{alpha['router']['id']}/mikrotik/preflight"))
    assert any("WAN 'beta'" in b and "interface name 'wg-alpha'" in b for b in pre["result"]["blocking"])


def test_another_wans_route_inside_ours_is_not_taken_over(api: Any, run_jobs: Any, sim: SimRouter, wans) -> None:
    """beta routes 10.101.7.0/24, inside alpha's 10.101.0.0/16: it is beta's route, not an unmanaged
    one, so alpha neither adds its own route to 10.101.7.0/24 nor demotes beta's."""
    alpha, beta = wans[0], wans[1]
    assert api.post(f"/api/peers/{beta['server']['id']}/subnets", json={"cidr": "10.101.7.0/24"}).status_code == 201
    for w in (beta, alpha):
        _, dep = preflight_and_deploy(api, run_jobs, w["router"]["id"])
        assert dep["status"] == "succeeded", dep
    routes = sorted(
        (str(r.get("comment")), r["distance"]) for r in sim.rows("/ip/route", **{"dst-address": "10.101.7.0/24"})
    )
    assert routes == [(f"{TAG}w{beta['wan']['id']}:route-10.101.7.0/24", "10")]
    verify = finished(api, run_jobs, api.get(f"/api/peers/{alpha['router']['id']}/mikrotik/verify"))
    assert verify["result"]["in_sync"] is True, verify
