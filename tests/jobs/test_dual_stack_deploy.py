"""Deploy, verify, redeploy and clear on a dual-stack WAN (issue 14): the router gets its IPv6 tunnel
address, routes and filter accepts; a shadowing unmanaged IPv6 route is demoted and restored on clear."""

from __future__ import annotations

from typing import Any

from tests.jobs.conftest import TAG
from tests.routeros_sim.server import SimRouter

AUTO = {"auto": True}


def tagged(sim: SimRouter, menu: str) -> list[dict[str, str]]:
    return [r for r in sim.rows(menu) if str(r.get("comment", "")).startswith(TAG)]


def test_dual_stack_deploy_demotes_and_clear_restores(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    assert api.patch(f"/api/wan/{router_wan['wan']['id']}", json={"tunnel_cidr6": "fd10:77::/64"}).status_code == 200
    assert api.post(f"/api/peers/{router_wan['server']['id']}/subnets", json={"cidr": "fd30::/64"}).status_code == 201
    sim.state.add("/ipv6/route", {"dst-address": "fd30::/64", "gateway": "bridge", "distance": "1", "comment": "old"})

    done = run_direct("deploy", router, AUTO)
    assert done["status"] == "succeeded", done
    assert [r["address"] for r in tagged(sim, "/ipv6/address")] == ["fd10:77::1/64"]
    routes = {r.get("comment"): r["distance"] for r in sim.rows("/ipv6/route")}
    assert routes == {"old": "11", f"{TAG}w{router_wan['wan']['id']}:route-fd30::/64": "10"}
    assert len(tagged(sim, "/ipv6/firewall/filter")) == 4
    assert run_direct("verify", router)["result"]["in_sync"] is True
    assert run_direct("deploy", router, AUTO)["result"]["writes"] == 0
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False

    clear = run_direct("clear", router)
    assert clear["status"] == "succeeded" and clear["result"]["restored_routes"] == 1, clear
    assert [(r.get("comment"), r["distance"]) for r in sim.rows("/ipv6/route")] == [("old", "1")]
    for menu in ("/ipv6/address", "/ipv6/firewall/filter"):
        assert tagged(sim, menu) == []
