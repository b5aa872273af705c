"""A router's whole life through the API: preflight, approved deploy, verify, no-change redeploy,
a one-peer change, revert, clear — on the simulator, queued through Redis, run by RQ."""

from __future__ import annotations

from typing import Any

from tests.routeros_sim.server import SimRouter


def job(api: Any, resp: Any) -> dict[str, Any]:
    assert resp.status_code == 202, resp.get_json()
    assert resp.headers["Location"] == f"/api/jobs/{resp.get_json()['job_id']}"
    return api.get(resp.headers["Location"]).get_json()


def finished(api: Any, run_jobs: Any, resp: Any) -> dict[str, Any]:
    queued = job(api, resp)
    assert queued["status"] == "queued"
    run_jobs()
    done = api.get(f"/api/jobs/{queued['id']}").get_json()
    assert done["status"] in ("succeeded", "failed"), done
    return done


def preflight_and_deploy(api: Any, run_jobs: Any, peer_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    pre = finished(api, run_jobs, api.get(f"/api/peers/{peer_id}/mikrotik/preflight"))
    assert pre["status"] == "succeeded", pre
    dep = finished(
        api,
        run_jobs,
        api.post(
            f"/api/peers/{peer_id}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
        ),
    )
    return pre, dep


def test_full_lifecycle_on_a_default_router(api, run_jobs, sim: SimRouter, router_wan):
    router = router_wan["router"]["id"]
    pristine = sim.normalized_dump()

    pre, dep = preflight_and_deploy(api, run_jobs, router)
    assert dep["status"] == "succeeded", dep
    assert pre["result"]["writes"] == 0 and pre["result"]["plan_lines"]
    # The plan, plus commit-confirmed: undo script + scheduler to arm, both removed to disarm.
    assert dep["result"]["plan_writes"] == len(pre["result"]["plan"])
    assert dep["result"]["writes"] == len(pre["result"]["plan"]) + 4 and dep["result"]["rollback_armed"]
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False
    assert any("handshake" in line for line in dep["log"])

    verify = finished(api, run_jobs, api.get(f"/api/peers/{router}/mikrotik/verify"))
    assert verify["result"] == {**verify["result"], "in_sync": True, "drift": []}

    # Nothing changed: the redeploy reads and writes nothing.
    sim.reset_counters()
    pre2, dep2 = preflight_and_deploy(api, run_jobs, router)
    assert pre2["result"]["plan"] == [] and dep2["result"]["writes"] == 0
    assert sim.counters.writes == 0

    # One remote peer moves: exactly one `set`, on the same entry, and its session survives.
    vps_key = router_wan["server"]["public_key"]
    sim.set_handshake(vps_key, seconds_ago=2)
    entry = sim.rows("/interface/wireguard/peers", **{"public-key": vps_key})[0]
    assert api.patch(f"/api/peers/{router_wan['server']['id']}", json={"endpoint": "203.0.113.99"}).status_code == 200
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is True
    sim.reset_counters()
    _, dep3 = preflight_and_deploy(api, run_jobs, router)
    assert dep3["result"]["writes"] == 1
    assert [c.command for c in sim.writes()] == ["/interface/wireguard/peers/set"]
    after = sim.rows("/interface/wireguard/peers", **{"public-key": vps_key})[0]
    assert after[".id"] == entry[".id"] and after["endpoint-address"] == "203.0.113.99" and "last-handshake" in after

    # Revert puts the previous endpoint back.
    rev = finished(api, run_jobs, api.post(f"/api/peers/{router}/mikrotik/revert"))
    assert rev["status"] == "succeeded", rev
    assert sim.rows("/interface/wireguard/peers", **{"public-key": vps_key})[0]["endpoint-address"] == "203.0.113.10"
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is True

    # Clear leaves the router as it was before WireWAN came.
    clr = finished(api, run_jobs, api.post(f"/api/peers/{router}/mikrotik/clear"))
    assert clr["status"] == "succeeded", clr
    assert not [
        r
        for rows in sim.normalized_dump().values()
        for r in rows
        if str(r.get("comment", "")).startswith("WAN-Overlay-Manager:")
    ]
    assert _without_user_changes(sim.normalized_dump()) == _without_user_changes(pristine)


def _without_user_changes(dump: dict[str, Any]) -> dict[str, Any]:
    # Step 0 tightened the API user's and the api service's allowed addresses; clear keeps that
    # (undoing it could lock WireWAN out of the router it just cleared).
    return {menu: rows for menu, rows in dump.items() if menu not in ("/user", "/ip/service")}


def test_deploy_needs_an_approved_current_plan(api, run_jobs, sim, router_wan):
    router = router_wan["router"]["id"]
    resp = api.post(f"/api/peers/{router}/mikrotik/deploy")
    assert resp.status_code == 422 and resp.get_json()["field"] == "plan_hash"
    resp = api.post(f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": "0" * 64})
    assert resp.status_code == 409
    pre = finished(api, run_jobs, api.get(f"/api/peers/{router}/mikrotik/preflight"))
    # Someone adds a route on the router between preflight and deploy: the plan now also demotes it,
    # so the job refuses to apply what was not approved.
    sim.state.add("/ip/route", {"dst-address": "10.20.0.0/16", "gateway": "192.168.88.254"})
    dep = finished(
        api,
        run_jobs,
        api.post(
            f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
        ),
    )
    assert dep["status"] == "failed"
    assert "changed since the preflight you approved" in dep["error"]


def test_test_connection_reports_the_router(api, run_jobs, sim, router_wan):
    done = finished(api, run_jobs, api.post(f"/api/peers/{router_wan['router']['id']}/mikrotik/test-connection"))
    assert done["status"] == "succeeded", done
    assert done["result"]["version"].startswith("7.") and done["result"]["local_address"] == "127.0.0.1"
    assert done["result"]["writes"] == 0


def test_wrong_password_gives_the_seed_explanation(api, run_jobs, sim, router_wan):
    router = router_wan["router"]["id"]
    api.patch(f"/api/peers/{router}", json={"mikrotik": {"password": "not-it"}})
    done = finished(api, run_jobs, api.post(f"/api/peers/{router}/mikrotik/test-connection"))
    assert done["status"] == "failed"
    assert "invalid user name or password" in done["error"]
    assert "allowed-address" in done["error"] and "does not match" in done["error"]


def test_router_jobs_need_a_router(api, router_wan):
    resp = api.post(f"/api/peers/{router_wan['server']['id']}/mikrotik/test-connection")
    assert resp.status_code == 422 and "not a MikroTik peer" in resp.get_json()["message"]


def test_only_the_newest_preflight_is_approvable(api, run_jobs, sim, router_wan):
    router = router_wan["router"]["id"]
    first = finished(api, run_jobs, api.get(f"/api/peers/{router}/mikrotik/preflight"))
    sim.faults.refuse_connections = True
    failed = finished(api, run_jobs, api.post(f"/api/peers/{router}/mikrotik/preflight"))
    assert failed["status"] == "failed" and "127.0.0.1" in failed["error"]
    sim.faults.refuse_connections = False
    resp = api.post(
        f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": first["result"]["plan_hash"]}
    )
    assert resp.status_code == 409 and "latest preflight" in resp.get_json()["message"]


def test_session_get_that_queues_a_job_needs_csrf(app, admin_browser, router_wan):
    router = router_wan["router"]["id"]
    resp = admin_browser.client.get(f"/api/peers/{router}/mikrotik/preflight")
    assert resp.status_code == 400 and resp.get_json()["error"] == "csrf"
    admin_browser.get("/")
    resp = admin_browser.client.get(
        f"/api/peers/{router}/mikrotik/preflight", headers={"X-CSRFToken": admin_browser.csrf}
    )
    assert resp.status_code == 202
