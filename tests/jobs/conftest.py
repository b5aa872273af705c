"""Jobs against the RouterOS simulator over TCP, queued through a real Redis and run by RQ workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker

from jobs import runtime
from tests.routeros_sim.server import SimRouter

ROUTER_PASSWORD = "router-pw"


@pytest.fixture(autouse=True)
def _needs_redis() -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs a Redis server: run through ./run.sh test (it starts one)")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Short waits: the simulator answers at once and its handshake model is driven by the tests.
    return {
        **app_config,
        "WIREWAN_PROBE_SECONDS": 1,
        "WIREWAN_ROLLBACK_SECONDS": 60,
        "WIREWAN_ROUTER_CONNECT_TIMEOUT": 3,
        "WIREWAN_ROUTER_COMMAND_TIMEOUT": 3,
    }


@pytest.fixture
def sim() -> Iterator[SimRouter]:
    with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True) as router:
        yield router
    assert router.internal_errors == []


@pytest.fixture
def run_jobs(app: Flask) -> Any:
    """Run every queued job in this process (rq's SimpleWorker, burst) against the test app."""
    runtime.set_app(app)
    redis = Redis.from_url(os.environ["REDIS_URL"])

    def run() -> None:
        queue = Queue(app.config["RQ_QUEUE"], connection=redis)
        SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")

    yield run
    runtime.set_app(None)  # type: ignore[arg-type]
    redis.close()


@pytest.fixture
def router_wan(api: Any, sim: SimRouter) -> dict[str, Any]:
    """A mesh with a MikroTik (the simulator), a public server and a CGNAT laptop."""
    wan = api.post("/api/wan", json={"name": "lab"}).get_json()
    host, port = sim.address
    router = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={
            "name": "office",
            "kind": "mikrotik",
            "endpoint": "198.51.100.7",
            "mikrotik": {"host": host, "port": port, "username": "admin", "password": ROUTER_PASSWORD},
        },
    ).get_json()
    api.post(f"/api/peers/{router['id']}/subnets", json={"cidr": "192.168.88.0/24"})
    server = api.post(
        f"/api/peers/wan/{wan['id']}", json={"name": "vps", "kind": "server", "endpoint": "203.0.113.10"}
    ).get_json()
    api.post(f"/api/peers/{server['id']}/subnets", json={"cidr": "10.20.0.0/16"})
    laptop = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "laptop", "kind": "client"}).get_json()
    return {"wan": wan, "router": router, "server": server, "laptop": laptop}
