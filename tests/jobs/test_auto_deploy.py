"""Auto-redeploy: a topology change that alters an auto-deploy router's desired state queues one
deploy for it; bursts coalesce (at most one queued, at most one more once it runs); the router ends
in the final desired state. Routers without auto-deploy only turn stale."""

from __future__ import annotations

import os
import threading
import time
from ipaddress import ip_network
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select

from app.extensions import db
from app.models import Job
from tests.jobs.conftest import ROUTER_PASSWORD
from tests.routeros_sim.server import SimRouter


def deploys(app: Flask, peer_id: int) -> list[Job]:
    with app.app_context():
        jobs = db.session.scalars(select(Job).where(Job.peer_id == peer_id, Job.kind == "deploy").order_by(Job.id))
        return [j for j in jobs if j.trigger == "auto"]


def statuses(app: Flask, peer_id: int) -> list[str]:
    return [j.status for j in deploys(app, peer_id)]


def queue_length(app: Flask) -> int:
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        return Queue(app.config["RQ_QUEUE"], connection=redis).count
    finally:
        redis.close()


@pytest.fixture
def auto_router(api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]) -> dict[str, Any]:
    """The lab WAN with its router on auto-deploy, bootstrapped (deployed once, so it is 'applied')."""
    router = router_wan["router"]["id"]
    resp = api.patch(f"/api/peers/{router}", json={"mikrotik": {"auto_deploy": True}})
    assert resp.status_code == 200 and resp.get_json()["mikrotik"]["auto_deploy"] is True
    assert run_direct("deploy", router)["status"] == "succeeded"
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False
    return router_wan


def five_changes(api: Any, wan: dict[str, Any], server: dict[str, Any], start: int = 0) -> list[str]:
    """Three routed subnets behind the VPS and two new public servers: each one alters the router's
    desired state (a peer entry's allowed addresses and a route, or a new peer entry)."""
    cidrs = []
    for i in range(start, start + 5):
        if i % 2 == 0:
            cidr = f"10.{40 + i}.0.0/16"
            assert api.post(f"/api/peers/{server['id']}/subnets", json={"cidr": cidr}).status_code == 201
            cidrs.append(cidr)
        else:
            resp = api.post(
                f"/api/peers/wan/{wan['id']}",
                json={"name": f"edge{i}", "kind": "server", "endpoint": f"203.0.113.{60 + i}"},
            )
            assert resp.status_code == 201, resp.get_json()
    return cidrs


def assert_final_state(api: Any, run_direct: Any, sim: SimRouter, router: int, cidrs: list[str]) -> None:
    verify = run_direct("verify", router)
    assert verify["result"]["in_sync"] is True, verify
    routes = [
        ip_network(str(r.get("dst-address")))
        for r in sim.rows("/ip/route")
        if str(r.get("comment", "")).startswith("WAN-")
    ]
    # Every new LAN is routed; adjacent ones share an aggregated route (10.50/16 + 10.51/16 = 10.50/15).
    for cidr in map(ip_network, cidrs):
        assert any(cidr.version == r.version and cidr.subnet_of(r) for r in routes), (cidr, routes)  # type: ignore[arg-type]
    names = {
        p["name"]
        for p in api.get(f"/api/wan/{api.get(f'/api/peers/{router}').get_json()['wan_id']}/topology").get_json()[
            "nodes"
        ]
    }
    peers = [r for r in sim.rows("/interface/wireguard/peers") if str(r.get("comment", "")).startswith("WAN-")]
    assert len(peers) == len(names) - 1  # every other peer of the WAN, once
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False


def test_a_burst_of_five_changes_queues_one_deploy_that_reads_the_final_state(
    app: Flask, api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter, auto_router: dict[str, Any]
) -> None:
    router = auto_router["router"]["id"]
    cidrs = five_changes(api, auto_router["wan"], auto_router["server"])
    assert statuses(app, router) == ["queued"]
    assert queue_length(app) == 1
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is True
    queued = deploys(app, router)[0]
    assert queued.actor.startswith("auto-deploy") and queued.params == {"auto": True}

    run_jobs()
    assert statuses(app, router) == ["succeeded"]
    assert_final_state(api, run_direct, sim, router, cidrs)
    # Nothing left over: a later change queues a fresh deploy (the coalescing marker was released).
    assert (
        api.post(f"/api/peers/{auto_router['server']['id']}/subnets", json={"cidr": "10.60.0.0/16"}).status_code == 201
    )
    assert statuses(app, router) == ["succeeded", "queued"]


def test_changes_while_the_deploy_runs_queue_exactly_one_more(
    app: Flask, api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter, auto_router: dict[str, Any]
) -> None:
    router = auto_router["router"]["id"]
    wan, server = auto_router["wan"], auto_router["server"]
    cidrs = five_changes(api, wan, server)[:1]  # ... the first two of five arrive before the worker looks
    assert statuses(app, router) == ["queued"]

    # The router is slow on routes: while the first deploy is applying, three more changes arrive.
    # (Slow enough for the three changes below to land within it on a loaded machine; the deployer
    # waits for it.)
    app.config["WIREWAN_ROUTER_COMMAND_TIMEOUT"] = 20
    sim.faults.delay_on("/ip/route/add", 8, times=1)
    sim.reset_counters()
    seen: dict[str, Any] = {}

    def meanwhile() -> None:
        try:
            deadline = time.monotonic() + 10
            while not any(c.command == "/ip/route/add" for c in sim.commands) and time.monotonic() < deadline:
                time.sleep(0.02)
            seen["during"] = statuses(app, router)
            for i, cidr in enumerate(["10.50.0.0/16", "10.51.0.0/16", "10.52.0.0/16"]):
                assert api.post(f"/api/peers/{server['id']}/subnets", json={"cidr": cidr}).status_code == 201
                cidrs.append(cidr)
                seen[f"after-{i}"] = statuses(app, router)
        except BaseException as exc:  # shown by the assertion below, not lost with the thread
            seen["error"] = exc

    thread = threading.Thread(target=meanwhile)
    thread.start()
    try:
        run_jobs()  # rq's SimpleWorker installs signal handlers: it must run in the main thread
    finally:
        thread.join(timeout=20)
    assert "error" not in seen, repr(seen.get("error"))
    assert seen["during"] == ["running"]
    assert seen["after-0"] == seen["after-1"] == seen["after-2"] == ["running", "queued"]
    run_jobs()  # in case the worker's burst ended before the last change was queued

    assert statuses(app, router) == ["succeeded", "succeeded"], "at most two deploys for five changes"
    assert_final_state(api, run_direct, sim, router, cidrs)


def test_a_router_without_auto_deploy_gets_no_job_but_shows_stale(
    app: Flask, api: Any, run_jobs: Any, run_direct: Any, sim: SimRouter, auto_router: dict[str, Any]
) -> None:
    with SimRouter(user="admin", password=ROUTER_PASSWORD) as other:
        host, port = other.address
        branch = api.post(
            f"/api/peers/wan/{auto_router['wan']['id']}",
            json={
                "name": "branch",
                "kind": "mikrotik",
                "endpoint": "198.51.100.9",
                "mikrotik": {"host": host, "port": port, "username": "admin", "password": ROUTER_PASSWORD},
            },
        ).get_json()
        assert branch["mikrotik"]["auto_deploy"] is False
        assert run_direct("deploy", branch["id"])["status"] == "succeeded"
        run_jobs()  # the office router's auto-deploy for the new branch peer
        other.reset_counters()

        cidrs = five_changes(api, auto_router["wan"], auto_router["server"])
        assert [j.status for j in deploys(app, branch["id"])] == []
        assert api.get(f"/api/peers/{branch['id']}").get_json()["stale"] is True
        run_jobs()
        assert other.counters.connections == 0, "nobody may touch a router without auto-deploy"
        assert_final_state(api, run_direct, sim, auto_router["router"]["id"], cidrs)


def test_a_router_never_deployed_is_left_alone(
    app: Flask, api: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    assert api.patch(f"/api/peers/{router}", json={"mikrotik": {"auto_deploy": True}}).status_code == 200
    five_changes(api, router_wan["wan"], router_wan["server"])
    assert statuses(app, router) == [] and sim.counters.connections == 0


def test_a_change_that_does_not_touch_the_router_queues_nothing(
    app: Flask, api: Any, sim: SimRouter, auto_router: dict[str, Any]
) -> None:
    router = auto_router["router"]["id"]
    # A LAN behind the laptop that is not routed through the WAN: nothing on the router changes.
    laptop = auto_router["laptop"]["id"]
    resp = api.post(f"/api/peers/{laptop}/subnets", json={"cidr": "192.168.77.0/24", "routed": False})
    assert resp.status_code == 201, resp.get_json()
    assert statuses(app, router) == []
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False
    # Renaming another peer: the router's entry for it is keyed by the peer's id, not its name.
    assert api.patch(f"/api/peers/{laptop}", json={"name": "laptop-2"}).status_code == 200
    assert statuses(app, router) == []


def test_renaming_the_wan_queues_nothing(
    app: Flask, api: Any, run_jobs: Any, sim: SimRouter, auto_router: dict[str, Any]
) -> None:
    router = auto_router["router"]["id"]
    assert api.patch(f"/api/wan/{auto_router['wan']['id']}", json={"name": "lab-renamed"}).status_code == 200
    assert statuses(app, router) == []
