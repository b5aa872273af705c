"""Operations (issue 12): the scheduled status poll and verify, driven by the simulator's handshake
model, seen through the API, and told to a webhook receiver on 127.0.0.1.

Rounds are queued by RQ's own cron scheduler (rq.cron.CronScheduler, as `rq cron jobs/cron.py` runs
it) and run by a real RQ worker against a real Redis; the router is the TCP simulator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.cron import CronScheduler

from jobs.ops import schedule_round
from tests.conftest import make_token
from tests.routeros_sim.server import SimRouter

AUTO = {"auto": True}
SECRET = "hook-secret"
INTERVAL = 1  # seconds: STATUS_INTERVAL and VERIFY_INTERVAL of these tests


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "STATUS_INTERVAL": INTERVAL, "VERIFY_INTERVAL": INTERVAL, "WEBHOOK_RETRY_INTERVALS": "0,0"}


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST (answering `codes` in turn, then 200)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.codes: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.calls.append({"headers": self.headers, "body": body})  # case-insensitive
                self.send_response(receiver.codes.pop(0) if receiver.codes else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(c["body"])["event"] for c in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def admin(app: Flask, operator_token: str, client: Any) -> Any:
    token = make_token(app, "admin@example.com", "admin-t")
    headers = {"Authorization": f"Bearer {token}"}

    class Admin:
        def get(self, url: str) -> Any:
            return client.get(url, headers=headers)

        def post(self, url: str, **kw: Any) -> Any:
            return client.post(url, headers=headers, **kw)

    return Admin()


@pytest.fixture
def rounds(app: Flask, run_jobs: Any) -> Iterator[Any]:
    """Run one scheduled round: wait for RQ's cron to find it due, then let the worker run it all."""
    redis = Redis.from_url(os.environ["REDIS_URL"])
    cron = CronScheduler(connection=redis, logging_level="WARNING")
    cron.register(schedule_round, app.config["RQ_QUEUE"], args=("status",), interval=INTERVAL)
    verify_cron = CronScheduler(connection=redis, logging_level="WARNING")
    verify_cron.register(schedule_round, app.config["RQ_QUEUE"], args=("verify",), interval=INTERVAL)

    def run(kind: str = "status") -> None:
        scheduler = cron if kind == "status" else verify_cron
        deadline = time.monotonic() + 5
        while not scheduler.enqueue_jobs():
            assert time.monotonic() < deadline, "the cron scheduler never found the round due"
            time.sleep(0.1)
        run_jobs()

    yield run
    redis.close()


def deployed(run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]) -> dict[str, Any]:
    sim.auto_handshake = False  # the test drives handshakes
    assert run_direct("deploy", router_wan["router"]["id"], AUTO)["status"] == "succeeded"
    return router_wan


def wait_for_round_marker() -> None:
    # One round per interval (the Redis marker lives 0.8 of it): the next round is due after that.
    time.sleep(INTERVAL * 0.85)


def test_poll_drives_status_api_and_webhooks_from_the_simulators_handshakes(
    app: Flask, api: Any, admin: Any, sim: SimRouter, router_wan: dict[str, Any], run_direct: Any,
    rounds: Any, receiver: Receiver,
) -> None:  # fmt: skip
    wan = deployed(run_direct, sim, router_wan)
    vps, laptop, router = wan["server"], wan["laptop"], wan["router"]
    hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["peer.down", "peer.up"], "secret": SECRET})
    assert hook.status_code == 201, hook.get_json()
    assert "secret" not in hook.get_json() and hook.get_json()["has_secret"] is True

    sim.set_handshake(vps["public_key"], 42, rx=5000, tx=3000, endpoint_address="203.0.113.10", endpoint_port=51820)
    rounds()
    status = api.get(f"/api/peers/{vps['id']}/status").get_json()
    assert status["online"] is True
    assert status["source"] == f"router:{router['id']}"
    assert status["rx_bytes"] == 5000 and status["tx_bytes"] == 3000
    assert status["endpoint"] == "203.0.113.10:51820"
    assert api.get(f"/api/peers/{laptop['id']}/status").get_json()["online"] is False  # no handshake ever
    assert api.get(f"/api/peers/{router['id']}").get_json()["status"]["online"] is None  # nobody observes it
    wan_status = api.get(f"/api/wan/{wan['wan']['id']}/status").get_json()
    assert wan_status["routers"] == [
        {**wan_status["routers"][0], "peer_id": router["id"], "reachable": True, "error": None}
    ]
    assert receiver.calls == []  # unknown → up is not a change anyone is told about

    # The tunnel goes quiet: 200 s later the last handshake is past the 180 s window.
    sim.advance(200)
    wait_for_round_marker()
    rounds()
    assert api.get(f"/api/peers/{vps['id']}/status").get_json()["online"] is False
    # Counters restarted (the router rebooted) and traffic flows again.
    sim.set_handshake(vps["public_key"], 1, rx=100, tx=50)
    wait_for_round_marker()
    rounds()
    status = api.get(f"/api/peers/{vps['id']}/status").get_json()
    assert status["online"] is True
    assert (status["rx_bytes"], status["tx_bytes"]) == (5100, 3050)  # never backwards
    wait_for_round_marker()
    rounds()  # no change: nothing more is told

    assert receiver.events() == ["peer.down", "peer.up"]
    for call in receiver.calls:
        body = json.loads(call["body"])
        assert call["headers"]["X-WireWAN-Event"] == body["event"]
        expected = "sha256=" + hmac.new(SECRET.encode(), call["body"], hashlib.sha256).hexdigest()
        assert call["headers"]["X-WireWAN-Signature"] == expected
        assert body["peer_id"] == vps["id"] and body["wan_id"] == wan["wan"]["id"]
        assert "vps" in body["text"] and body["at"]
    deliveries = admin.get(f"/api/webhooks/{hook.get_json()['id']}/deliveries").get_json()
    assert [(d["event"], d["status_code"], d["attempts"]) for d in deliveries] == [
        ("peer.up", 200, 1),
        ("peer.down", 200, 1),
    ]


def test_an_unreachable_router_is_unknown_not_every_peer_down_and_is_told_once(
    app: Flask, api: Any, admin: Any, sim: SimRouter, router_wan: dict[str, Any], run_direct: Any,
    rounds: Any, receiver: Receiver,
) -> None:  # fmt: skip
    wan = deployed(run_direct, sim, router_wan)
    vps = wan["server"]
    events = ["peer.down", "peer.up", "router.unreachable"]
    assert admin.post("/api/webhooks", json={"url": receiver.url, "events": events}).status_code == 201
    sim.set_handshake(vps["public_key"], 5)
    rounds()
    assert api.get(f"/api/peers/{vps['id']}/status").get_json()["online"] is True

    sim.faults.refuse_connections = True
    for _ in range(2):
        wait_for_round_marker()
        rounds()
    router = api.get(f"/api/wan/{wan['wan']['id']}/status").get_json()["routers"][0]
    assert router["reachable"] is False and "Cannot reach" in router["error"]
    assert api.get(f"/api/peers/{vps['id']}/status").get_json()["online"] is None  # unknown, not down
    assert receiver.events() == ["router.unreachable"]
    assert receiver.calls[0]["headers"]["X-WireWAN-Signature"] is None  # no secret, no signature
    jobs = api.get(f"/api/jobs?peer_id={wan['router']['id']}").get_json()
    assert {j["status"] for j in jobs if j["kind"] == "status"} == {"succeeded"}


def test_a_manual_change_on_the_router_gives_router_drift_at_the_next_scheduled_verify(
    app: Flask, api: Any, admin: Any, sim: SimRouter, router_wan: dict[str, Any], run_direct: Any,
    rounds: Any, receiver: Receiver,
) -> None:  # fmt: skip
    wan = deployed(run_direct, sim, router_wan)
    assert admin.post("/api/webhooks", json={"url": receiver.url, "events": ["router.drift"]}).status_code == 201
    rounds("verify")
    assert api.get(f"/api/wan/{wan['wan']['id']}/status").get_json()["routers"][0]["in_sync"] is True
    with sim.state.lock:
        row = next(r for r in sim.state.tables["/interface/wireguard/peers"] if r.get("endpoint-address"))
        row["endpoint-port"] = "4242"
    for _ in range(2):
        wait_for_round_marker()
        rounds("verify")
    router = api.get(f"/api/wan/{wan['wan']['id']}/status").get_json()["routers"][0]
    assert router["in_sync"] is False and router["drift_count"] >= 1
    assert receiver.events() == ["router.drift"]
    body = json.loads(receiver.calls[0]["body"])
    assert body["peer_id"] == wan["router"]["id"] and "office" in body["message"]
    # The scheduled verify only read the router.
    verifies = [j for j in api.get(f"/api/jobs?peer_id={wan['router']['id']}").get_json() if j["kind"] == "verify"]
    assert verifies and all(j["result"]["writes"] == 0 and j["trigger"] == "schedule" for j in verifies)


def test_a_failing_receiver_is_retried_and_the_log_says_so(
    app: Flask, api: Any, admin: Any, sim: SimRouter, router_wan: dict[str, Any], run_direct: Any,
    receiver: Receiver, run_jobs: Any,
) -> None:  # fmt: skip
    hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["job.failed"]}).get_json()
    receiver.codes = [500]
    sim.faults.refuse_connections = True
    assert api.post(f"/api/peers/{router_wan['router']['id']}/mikrotik/test-connection").status_code == 202
    run_jobs()
    assert receiver.events() == ["job.failed", "job.failed"]  # a 500, then the retry got through
    assert json.loads(receiver.calls[1]["body"]) == json.loads(receiver.calls[0]["body"])
    [delivery] = admin.get(f"/api/webhooks/{hook['id']}/deliveries").get_json()
    assert (delivery["status_code"], delivery["attempts"], delivery["error"]) == (200, 2, None)


def test_a_round_skips_a_router_still_being_polled_but_not_one_whose_job_was_lost(
    app: Flask, router_wan: dict[str, Any]
) -> None:
    from datetime import timedelta

    from app.extensions import db
    from app.models import Peer
    from app.models.base import utcnow
    from app.models.jobs import JobKind
    from app.services import jobs as job_service
    from jobs.ops import queue_round

    with app.app_context():
        router = db.session.get(Peer, router_wan["router"]["id"])
        job = job_service.create(JobKind.STATUS, router, trigger="schedule")
        job_service.discard_staged()
        db.session.commit()
        assert queue_round(JobKind.STATUS) == []  # its poll is still queued: no second one
        db.session.rollback()
        job.created_at = utcnow() - timedelta(hours=1)  # never started: its RQ entry was lost
        db.session.commit()
        assert len(queue_round(JobKind.STATUS)) == 1
        db.session.rollback()
