"""A real `rq worker` process: it deploys a job enqueued through the API, and when it is killed with
SIGKILL mid-deploy the job shows `abandoned`, the router lock expires, and the next worker converges."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from app.extensions import db
from app.models import Peer
from app.services.jobs import reap_abandoned
from app.services.mikrotik import router_key
from jobs.runtime import router_lock_key
from tests.jobs.conftest import rollback_leftovers, tagged_rows
from tests.routeros_sim.server import SimRouter

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.5  # the worker beats every half second ...
LOCK_TTL = 6  # ... and a lock it dies holding expires after six


def database_url(config: dict[str, Any]) -> str:
    """The test database as a URL a separate process can open (PostgreSQL: the per-test schema too)."""
    url = str(config["SQLALCHEMY_DATABASE_URI"])
    options = config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {}).get("options")
    if options:
        url += ("&" if "?" in url else "?") + "options=" + quote(options, safe="")
    return url


@pytest.fixture
def start_worker(app_config: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `rq worker` processes on the test queue, each in its own process group; all are killed
    (group and forked work-horse included) when the test ends, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *extra: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(app_config),
            "REDIS_URL": os.environ["REDIS_URL"],
            "RQ_QUEUE": app_config["RQ_QUEUE"],
            "WIREWAN_INSTANCE": app_config["INSTANCE_PATH"],
            "SECRET_KEY": app_config["SECRET_KEY"],
            "ENCRYPTION_KEY": app_config["ENCRYPTION_KEY"],
            "ENCRYPTION_SALT": app_config["ENCRYPTION_SALT"],
            "WIREWAN_JOB_HEARTBEAT": str(HEARTBEAT),
            "WIREWAN_ROUTER_LOCK_TTL": str(LOCK_TTL),
            "WIREWAN_PROBE_SECONDS": "1",
            "WIREWAN_ROLLBACK_SECONDS": "60",
            "WIREWAN_ROUTER_CONNECT_TIMEOUT": "5",
            "WIREWAN_ROUTER_COMMAND_TIMEOUT": "30",
        }
        log = tmp_path / f"worker-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "rq"),
                    "worker",
                    "--url",
                    os.environ["REDIS_URL"],
                    "--path",
                    str(ROOT),
                    "-w",
                    "jobs.worker.PreloadWorker",  # the worker run.sh starts
                    "--worker-ttl",
                    "15",
                    "--name",
                    f"test-{name}-{uuid.uuid4().hex[:6]}",
                    *extra,
                    app_config["RQ_QUEUE"],
                ],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches the work-horse too
            )
        proc.log_path = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill_group(proc)


def children(pid: int) -> list[int]:
    """Child processes of `pid` (from /proc; the worker's forked work-horses)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _state(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return "gone"


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its work-horse. RQ's horse calls setpgrp(), so it has a process group
    of its own: find it before the parent dies (it would be re-parented and lost), then kill both."""
    groups = {proc.pid}
    for child in children(proc.pid):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(child))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=10)


def worker_logs(*procs: subprocess.Popen[bytes]) -> str:
    return "\n".join(Path(p.log_path).read_text(errors="replace")[-3000:] for p in procs)  # type: ignore[attr-defined]


def wait_for(check: Callable[[], Any], what: str, procs: tuple[Any, ...], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n--- worker log ---\n{worker_logs(*procs)}")


def job_done(api: Any, resp: Any, *procs: Any) -> dict[str, Any]:
    assert resp.status_code == 202, resp.get_json()
    url = resp.headers["Location"]

    def finished() -> dict[str, Any] | None:
        job = api.get(url).get_json()
        return job if job["status"] in ("succeeded", "failed", "abandoned") else None

    return wait_for(finished, f"job {url}", procs)  # type: ignore[no-any-return]


def preflight_and_deploy(api: Any, router: int, *procs: Any) -> dict[str, Any]:
    pre = job_done(api, api.get(f"/api/peers/{router}/mikrotik/preflight"), *procs)
    assert pre["status"] == "succeeded", pre
    return job_done(
        api,
        api.post(
            f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
        ),
        *procs,
    )


def test_a_worker_killed_mid_deploy_leaves_an_abandoned_job_and_the_next_worker_converges(
    app: Flask, api: Any, sim: SimRouter, router_wan: dict[str, Any], start_worker: Any, redis_client: Any
) -> None:
    router = router_wan["router"]["id"]
    first = start_worker("a")

    # End to end: API → Redis → a separate worker process → the simulator over TCP → the Job row.
    dep = preflight_and_deploy(api, router, first)
    assert dep["status"] == "succeeded", (dep, worker_logs(first))
    assert dep["result"]["rollback_armed"] and rollback_leftovers(sim) == []
    assert tagged_rows(sim) and api.get(f"/api/peers/{router}").get_json()["stale"] is False

    # A new subnet behind the VPS: the redeploy updates its peer entry, then adds a route (risky:
    # the rollback is armed first). The router takes its time over the route ...
    assert (
        api.post(f"/api/peers/{router_wan['server']['id']}/subnets", json={"cidr": "10.30.0.0/16"}).status_code == 201
    )
    pre = job_done(api, api.get(f"/api/peers/{router}/mikrotik/preflight"), first)
    assert any("/ip route add" in line for line in pre["result"]["plan_lines"]), pre["result"]["plan_lines"]
    # Long enough for the checks below on a loaded machine, short of the client's command timeout.
    sim.faults.delay_on("/ip/route/add", 12, times=1)
    sim.reset_counters()
    resp = api.post(
        f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
    )
    assert resp.status_code == 202
    url = resp.headers["Location"]
    wait_for(lambda: any(c.command == "/ip/route/add" for c in sim.commands), "the route add", (first,))
    assert api.get(url).get_json()["status"] == "running"
    assert rollback_leftovers(sim), "the deploy armed its rollback before the route"

    # ... while the worker beats, the job is not abandoned ...
    time.sleep(10 * HEARTBEAT)
    with app.app_context():
        assert reap_abandoned(stale_after_seconds=8 * HEARTBEAT) == 0
        db.session.rollback()

    # ... then the worker (and its work-horse) dies without a word.
    horses = children(first.pid)
    assert len(horses) == 1, horses
    kill_group(first)
    wait_for(lambda: not Path(f"/proc/{horses[0]}").exists() or "Z" in _state(horses[0]), "the horse to die", ())
    with app.app_context():
        lock = router_lock_key(router_key(db.session.get(Peer, router)))
    assert 0 < redis_client.pttl(lock) <= LOCK_TTL * 1000, "the dead worker's lock must expire on its own"
    time.sleep(5 * HEARTBEAT)
    assert api.get(url).get_json()["status"] == "running"  # pages only read: no page view reaps

    # The router finishes what it was asked before the next worker looks (keeps the plan stable).
    wait_for(lambda: sim.active_connections == 0, "the simulator to finish the delayed command", (first,))

    # The next worker reaps the dead one's job in its own maintenance (at start, then every second).
    second = start_worker("b", "--maintenance-interval", "1")
    wait_for(lambda: api.get(url).get_json()["status"] == "abandoned", "the new worker to reap the job", (second,))
    job = api.get(url).get_json()
    assert job["finished_at"], job
    assert "stopped" in job["error"] and "run the job again" in job["error"]
    assert job["log"][-1].endswith("ABANDONED: worker stopped")
    started = time.monotonic()
    again = preflight_and_deploy(api, router, second)
    assert again["status"] == "succeeded", (again, worker_logs(second))
    assert time.monotonic() - started < 20, "the dead worker's router lock held the next deploy up"
    verify = job_done(api, api.get(f"/api/peers/{router}/mikrotik/verify"), second)
    assert verify["result"]["in_sync"] is True, verify
    assert rollback_leftovers(sim) == [], "the dead job's rollback is still armed"
    assert len([r for r in sim.rows("/ip/route") if r.get("dst-address") == "10.30.0.0/16"]) == 1
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False
    assert api.get(url).get_json()["status"] == "abandoned"  # history is not rewritten


def test_the_worker_warm_up_leaves_nothing_behind_and_does_not_fail(
    app: Flask, router_wan: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The worker rehearses a job's statements on throwaway rows before forking (jobs.runtime.warm_up):
    # none of them may show up in the WAN list, the job list or the audit log, and a rehearsal that
    # broke (a model changed under it) is logged rather than silently doing nothing.
    from app.models import AuditEntry, Deployment, Job, Wan
    from jobs.runtime import warm_up

    tables = (Wan, Peer, Job, AuditEntry, Deployment)

    def counts() -> list[int]:
        with app.app_context():
            return [db.session.query(t).count() for t in tables]

    before = counts()
    with caplog.at_level("WARNING"):
        warm_up(app)
    assert counts() == before
    assert "warm-up failed" not in caplog.text
