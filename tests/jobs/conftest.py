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


# ---------------------------------------------------------------- helpers for the fault, worker,
# auto-deploy and guard tests (added; the fixtures above are unchanged)

TAG = "WAN-Overlay-Manager:"


def tagged_rows(sim: SimRouter) -> list[tuple[str, str]]:
    """(menu, comment) of every WireWAN-tagged row on the simulated router, duplicates kept."""
    with sim.state.lock:
        return sorted(
            (menu, str(row.get("comment")))
            for menu, rows in sim.state.tables.items()
            for row in rows
            if str(row.get("comment", "")).startswith(TAG)
        )


def rollback_leftovers(sim: SimRouter) -> list[str]:
    """Scheduler entries, scripts and files a commit-confirmed deploy left armed on the router."""
    found = [f"scheduler {r.get('name')}" for r in sim.rows("/system/scheduler") if "wirewan" in str(r.get("name"))]
    found += [f"script {r.get('name')}" for r in sim.rows("/system/script") if "wirewan" in str(r.get("name"))]
    found += [f"file {r.get('name')}" for r in sim.rows("/file") if "wirewan" in str(r.get("name"))]
    return found


@pytest.fixture
def run_direct(app: Flask) -> Any:
    """Create a job row for a peer and run its function right here, without Redis or a worker.

    Returns the finished job as the API shows it. The job function's own exception (it re-raises
    for RQ) is swallowed: the row is what the user sees.
    """
    import contextlib
    import importlib

    from app.blueprints.api.schemas import job_json
    from app.extensions import db
    from app.models import Job, Peer
    from app.models.jobs import JobKind
    from app.services import jobs as job_service

    runtime.set_app(app)

    def run(kind: str, peer_id: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with app.app_context():
            peer = db.session.get(Peer, peer_id)
            assert peer is not None
            job = job_service.create(kind, peer, params)
            job_service.discard_staged()  # run here, not by a worker
            db.session.commit()
            job_id = job.id
        module, _, name = JobKind(kind).function.rpartition(".")
        with contextlib.suppress(Exception):  # the Job row records the failure
            getattr(importlib.import_module(module), name)(job_id)
        with app.app_context():
            finished = db.session.get(Job, job_id)
            assert finished is not None
            return job_json(finished)

    yield run
    runtime.set_app(None)


@pytest.fixture
def redis_client() -> Iterator[Redis]:
    client = Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()
