"""Scale-out, proven (issue 12): two gunicorn instances and three RQ workers on one PostgreSQL and one
Redis, with 30 simulated routers, all on 127.0.0.1.

- Status polling (RQ's cron) and a topology change that auto-deploys to all 30 both converge.
- Each router is deployed once per change, and no two jobs ever hold one router at the same time.
- A worker SIGKILLed mid-round loses nothing: its job ends `abandoned` and the next round converges.

Runs on PostgreSQL only (TEST_DATABASE_URL; CI's second pass), in the test's own schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import select, update

from app.extensions import db
from app.models import AuditEntry, Job, Peer
from tests.conftest import TEST_SECRETS
from tests.ports import free_port
from tests.routeros_sim.server import SimRouter

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv" / "bin"
ROUTERS = int(os.environ.get("SCALE_ROUTERS", "30"))
PASSWORD = "router-pw"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


# Several web and worker processes on one database is PostgreSQL's job: on the SQLite pass this
# module is deselected (tests/conftest.py), and CI's PostgreSQL pass runs it.
pytestmark = pytest.mark.postgresql


class Stack:
    """The processes of one WireWAN installation, started like run.sh does."""

    def __init__(self, app: Flask, tmp: Path) -> None:
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"]  # -csearch_path=<schema>
        url = str(app.config["SQLALCHEMY_DATABASE_URI"]) + "?options=" + quote(options)
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)},
            **TEST_SECRETS,
            "DATABASE_URL": url,
            "REDIS_URL": app.config["REDIS_URL"],
            "RQ_QUEUE": app.config["RQ_QUEUE"],
            "WIREWAN_INSTANCE": str(tmp / "instance"),
            "STATUS_INTERVAL": "3",
            "VERIFY_INTERVAL": "3600",
            "WIREWAN_PROBE_SECONDS": "1",
            "WIREWAN_JOB_HEARTBEAT": "1",
            "WIREWAN_ROUTER_LOCK_TTL": "8",
        }
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Any] = []
        self.ports: list[int] = []

    def start(self, name: str, args: list[str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def worker(self, n: int) -> None:
        self.start(f"worker{n}", [str(VENV / "rq"), "worker", "--url", self.env["REDIS_URL"], "--path", str(ROOT),
                                  "-w", "jobs.worker.PreloadWorker", "--worker-ttl", "15",
                                  "--maintenance-interval", "2", self.env["RQ_QUEUE"]])  # fmt: skip

    def up(self) -> None:
        for n in range(3):
            self.worker(n)
        self.start("cron", [str(VENV / "rq"), "cron", "--url", self.env["REDIS_URL"], "--path", str(ROOT),
                            str(ROOT / "jobs" / "cron.py")])  # fmt: skip
        for n in range(2):
            port = free_port()
            self.ports.append(port)
            self.start(f"web{n}", [str(VENV / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                   "--threads", "4", "--no-control-socket", "wsgi:app"])  # fmt: skip
        for port in self.ports:
            wait_for(f"gunicorn on {port}", lambda p=port: self._healthy(p), timeout=60, every=0.3)

    def _healthy(self, port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                return bool(json.load(resp)["status"] == "ok")
        except OSError:
            return False

    def signal_tree(self, name: str, sig: signal.Signals) -> None:
        """Signal a process and everything under it (RQ's work horse runs in a session of its own)."""
        pid = self.procs[name].pid
        for victim in [pid, *_descendants(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, sig)

    def kill(self, name: str) -> None:
        self.signal_tree(name, signal.SIGKILL)
        self.procs[name].wait()

    def kill_worker_mid_job(self, name: str, app: Flask, kind: str = "deploy", timeout: float = 120) -> int:
        """SIGKILL a worker while it runs a job of `kind`, and return that job's id. The worker is
        frozen (SIGSTOP) while its current job is looked up, so the job cannot end between the look and
        the kill: a kill landing between two jobs would prove nothing."""
        pid = self.procs[name].pid
        deadline = time.monotonic() + timeout
        with Redis.from_url(self.env["REDIS_URL"]) as connection:
            queue = Queue(self.env["RQ_QUEUE"], connection=connection)
            while True:
                self.signal_tree(name, signal.SIGSTOP)
                rq_id = next((w.get_current_job_id() for w in Worker.all(queue=queue) if w.pid == pid), None)
                with app.app_context():
                    job_id = db.session.scalar(
                        select(Job.id).where(Job.rq_id == rq_id, Job.kind == kind, Job.status == "running")
                    )
                if rq_id is not None and job_id is not None:
                    self.kill(name)
                    return int(job_id)
                self.signal_tree(name, signal.SIGCONT)
                assert time.monotonic() < deadline, f"{name} was never caught running a {kind} job"
                time.sleep(0.05)

    def down(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self.logs:
            log.close()


@pytest.fixture
def stack(app: Flask, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(app, tmp_path)
    try:
        s.up()
        yield s
    finally:
        s.down()


@pytest.fixture
def routers() -> Iterator[list[SimRouter]]:
    sims = [SimRouter(user="admin", password=PASSWORD, auto_handshake=True) for _ in range(ROUTERS)]
    for sim in sims:
        sim.start()
    yield sims
    for sim in sims:
        sim.stop()


def test_two_webs_three_workers_thirty_routers_converge_and_survive_a_killed_worker(
    app: Flask, operator_token: str, stack: Stack, routers: list[SimRouter]
) -> None:
    calls = {"n": 0}

    def api(method: str, path: str, body: Any = None) -> Any:
        port = stack.ports[calls["n"] % 2]  # alternate between the two web instances
        calls["n"] += 1
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Authorization": f"Bearer {operator_token}",
                                              "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 — http://127.0.0.1 only
            text = resp.read()
            return json.loads(text) if text else None

    wan = api("POST", "/api/wan", {"name": "scale", "tunnel_cidr": "10.0.0.0/24"})
    ids = []
    for i, sim in enumerate(routers):
        peer = api("POST", f"/api/peers/wan/{wan['id']}", {
            "name": f"r{i:02d}", "kind": "mikrotik", "endpoint": f"198.51.100.{i + 1}",
            "mikrotik": {"host": "127.0.0.1", "port": sim.port, "username": "admin", "password": PASSWORD,
                         "auto_deploy": True},
        })  # fmt: skip
        ids.append(peer["id"])
    # As if each router had been bootstrapped once (with an older config): changes now auto-deploy.
    with app.app_context():
        db.session.execute(update(Peer).where(Peer.id.in_(ids)).values(applied_config_hash="bootstrap"))
        db.session.commit()

    def deploys() -> list[Job]:
        with app.app_context():
            return list(db.session.scalars(select(Job).where(Job.kind == "deploy").order_by(Job.id)))

    def settled(count: int) -> list[Job] | None:
        jobs = deploys()
        return jobs if len(jobs) >= count and all(j.terminal for j in jobs) else None

    # Change 1: a server joins; every router gets exactly one auto-deploy.
    api("POST", f"/api/peers/wan/{wan['id']}", {"name": "vps1", "kind": "server", "endpoint": "203.0.113.10"})
    first = wait_for("the first round of deploys", lambda: settled(ROUTERS))
    assert len(first) == ROUTERS and sorted(j.peer_id for j in first) == sorted(ids)
    assert {j.status for j in first} == {"succeeded"}, [(j.peer_name, j.error) for j in first if j.error]

    # Status polling converges: every router reachable, every router seen online by the others.
    def all_online() -> bool:
        status = api("GET", f"/api/wan/{wan['id']}/status")
        routers_ok = all(r["reachable"] for r in status["routers"])
        peers = {p["peer_id"]: p for p in status["peers"]}
        return routers_ok and all(peers[i]["online"] for i in ids)

    wait_for("status polling to see every router online", all_online)

    # Change 2, and a worker SIGKILLed while all three are busy.
    api("POST", f"/api/peers/wan/{wan['id']}", {"name": "vps2", "kind": "server", "endpoint": "203.0.113.11"})

    def busy() -> bool:
        with app.app_context():
            return (
                len(db.session.scalars(select(Job.id).where(Job.kind == "deploy", Job.status == "running")).all()) >= 3
            )

    wait_for("three deploys running at once", busy, every=0.1)
    killed = stack.kill_worker_mid_job("worker0", app)
    second = wait_for("the second round to end (the killed worker's job reaped)", lambda: settled(2 * ROUTERS))
    round2 = second[ROUTERS:]
    assert len(round2) == ROUTERS and sorted(j.peer_id for j in round2) == sorted(ids)
    assert [j.status for j in round2 if j.id == killed] == ["abandoned"]
    assert {j.status for j in round2} <= {"succeeded", "abandoned", "failed"}
    stack.worker(3)  # as run.sh would restart it

    # The next round converges: change 3 deploys every router again (the interrupted ones too).
    api("POST", f"/api/peers/wan/{wan['id']}", {"name": "vps3", "kind": "server", "endpoint": "203.0.113.12"})
    third = wait_for("the third round", lambda: settled(3 * ROUTERS))[2 * ROUTERS :]
    assert len(third) == ROUTERS and {j.status for j in third} == {"succeeded"}, [j.error for j in third]
    for rid in ids:
        job = api("GET", f"/api/peers/{rid}/mikrotik/verify")
        assert job["job_id"]
    wait_for("every verify", lambda: settled(0) is not None and _verifies_done(app, ROUTERS))
    with app.app_context():
        verifies = db.session.scalars(select(Job).where(Job.kind == "verify", Job.trigger == "manual")).all()
        assert [j.peer_name for j in verifies if not (j.result or {}).get("in_sync")] == []

        # No two jobs ever talked to one router at the same time. A job is marked running when a
        # worker takes it and may then wait for the router's lock, so its started_at can precede the
        # previous holder's finished_at; its router calls (audited with the time each ended) cannot.
        abandoned_ids = set(db.session.scalars(select(Job.id).where(Job.status == "abandoned")))
        for rid in ids:
            calls: dict[int, list[Any]] = {}
            for entry in db.session.scalars(
                select(AuditEntry).where(AuditEntry.action == "router-call", AuditEntry.object_id == rid)
            ):
                job_id = (entry.details or {}).get("job_id")
                if job_id is not None and job_id not in abandoned_ids:
                    calls.setdefault(job_id, []).append(entry.created_at)
            held = sorted((min(times), max(times), job_id) for job_id, times in calls.items())
            assert len(held) >= 3, f"router {rid}: expected its deploys and a verify, got {held}"
            for (_, end, a), (start, _, b) in zip(held, held[1:], strict=False):
                assert end <= start, f"jobs {a} and {b} talked to router {rid} at the same time"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _verifies_done(app: Flask, count: int) -> bool:
    with app.app_context():
        jobs = db.session.scalars(select(Job).where(Job.kind == "verify", Job.trigger == "manual")).all()
        return len(jobs) >= count and all(j.terminal for j in jobs)
