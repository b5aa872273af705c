"""configs.zip over HTTP, as a user gets it (issue 15): a 200-peer mesh saved in a real database,
the app served by a real HTTP server in this process, `GET /api/wan/{id}/configs.zip` fetched
with a bearer token. Two medians: of the unchanged WAN (after one warm-up; the topology is reused),
and of fetches each right after a change (the topology is built again). Also each step of the
request in-process: load (rows → WanSpec), decrypt (every secret), topology (the cache's lookup),
render (every file's text), zip (deflate level 1), the rest (auth, audit, HTTP); and the topology
build a change costs.

    .venv/bin/python -m bench.zip_http                # median of 5 fetches of a 200-peer mesh
    .venv/bin/python -m bench.zip_http --routers 10   # 10 of the servers MikroTiks (.rsc files)
    .venv/bin/python -m bench.zip_http --database-url postgresql://postgres@127.0.0.1:5432/bench
    .venv/bin/python -m bench.zip_http --peers 300 --fetches 7 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402

SECRETS = {
    "SECRET_KEY": "bench-secret-key-bench-secret-key",
    "ENCRYPTION_KEY": "bench-encryption-key-0123456789abcdef",
    "ENCRYPTION_SALT": "bench-salt-0123456789",
}
HOME_LANS = ("192.168.1.0/24", "192.168.0.0/24", "192.168.88.0/24")


def build_app(folder: Path, database_url: str | None = None) -> Any:
    """The app on a file SQLite database in `folder`, or on `database_url` (PostgreSQL; its tables are
    dropped and created again, and dropped at the end)."""
    from app.config import normalize_database_url

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url)
            if database_url
            else f"sqlite:///{folder / 'bench.db'}",
            **({"SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True}} if database_url else {}),
            "INSTANCE_PATH": str(folder / "instance"),
            "RQ_QUEUE": "bench-zip",
            "BCRYPT_ROUNDS": 4,
            **SECRETS,
        }
    )


def populate(app: Any, peers: int, routers: int = 0) -> tuple[int, str]:
    """A mesh like bench.configs.build_mesh (servers, CGNAT laptops, LANs, Auto-NAT'd home LANs), saved
    through the services, `routers` of its servers MikroTiks (their files in the zip are bootstrap
    scripts); returns (WAN id, an operator's API token)."""
    from app.models import Wan
    from app.services import accounts, subnets, wans
    from app.services import peers as peer_service
    from app.services.tx import commit

    with app.app_context():
        db.drop_all()
        db.create_all()
        user = accounts.create_user("bench@example.com", "correct-horse-battery", "operator")
        token = accounts.create_token(user, "bench")
        wan = wans.create_wan({"name": "bench", "tunnel_cidr": "10.0.0.0/22" if peers > 250 else "10.0.0.0/24"})
        commit()
        for i in range(peers):
            cgnat = i % 4 == 3
            data = {"name": f"peer-{i:03d}", "kind": "client" if cgnat else "server"}
            if not cgnat:
                data["endpoint"] = f"203.0.{113 + i // 250}.{i % 250 + 1}"
            if i % 20 == 0 and i // 20 < routers:
                data.update(kind="mikrotik", mikrotik_host=f"192.0.2.{i // 20 + 1}", mikrotik_password=f"pw-{i}")
            peer = peer_service.create_peer(db.session.get(Wan, wan.id), data)
            if i % 5 in (0, 2):
                subnets.add_subnet(peer, f"10.{100 + i // 256}.{i % 256}.0/24")
            if i % 10 == 1:
                subnets.add_subnet(peer, HOME_LANS[(i // 10) % len(HOME_LANS)], auto_nat=True)
            commit()
        return wan.id, token


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def fetch(url: str, token: str) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
        return bytes(resp.read())


def measure(
    peers: int, fetches: int, profile: bool, routers: int = 0, database_url: str | None = None
) -> dict[str, Any]:
    """`fetches` timed fetches of the unchanged WAN after a warm-up, then `fetches` each after a
    change (a peer's keepalive, saved through the services, not timed), and the phases in-process."""
    with tempfile.TemporaryDirectory(prefix="wirewan-bench-zip-") as tmp:
        app = build_app(Path(tmp), database_url)
        started = time.perf_counter()
        wan_id, token = populate(app, peers, routers)
        print(
            f"  {peers}-peer mesh ({routers} MikroTik) saved in {time.perf_counter() - started:.1f} s (not timed below)"
        )
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}/api/wan/{wan_id}/configs.zip"
        try:
            data = fetch(url, token)  # warm-up: imports, the cipher's key derivation, caches
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = zf.namelist()
                text_bytes = sum(i.file_size for i in zf.infolist())
            times = []
            for _ in range(fetches):
                t0 = time.perf_counter()
                fetch(url, token)
                times.append(time.perf_counter() - t0)
            changed = []
            for i in range(fetches):
                change_wan(app, wan_id, i)
                t0 = time.perf_counter()
                fetch(url, token)
                changed.append(time.perf_counter() - t0)
            phases = phase_times(app, wan_id, fetches)
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                fetch_in_process(app, wan_id, token)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        finally:
            server.shutdown()
            with app.app_context():
                db.session.remove()
                if database_url:
                    db.drop_all()
                db.engine.dispose()
    return {
        "files": len(names),
        "bytes": len(data),
        "text_bytes": text_bytes,
        "times": times,
        "median": statistics.median(times),
        "changed": changed,
        "changed_median": statistics.median(changed),
        "phases": phases,
    }


def change_wan(app: Any, wan_id: int, step: int) -> None:
    """A change every peer's config sees: the first CGNAT peer's keepalive, through the services."""
    from sqlalchemy import select

    from app.models import Peer
    from app.services import peers as peer_service
    from app.services.tx import commit

    with app.app_context():
        peer = db.session.scalars(
            select(Peer).where(Peer.wan_id == wan_id, Peer.kind == "client").order_by(Peer.id).limit(1)
        ).one()
        peer_service.update_peer(peer, {"keepalive": 20 + step % 2 + (peer.keepalive == 20 + step % 2)})
        commit()


def phase_times(app: Any, wan_id: int, reps: int) -> dict[str, float]:
    """Median time of each step of the request, in-process, as `services.configs.configs_zip` runs
    them: load (rows → WanSpec), decrypt (the same with every secret), topology (the cache's lookup:
    an unchanged WAN), render (every file's text), zip (the writer); and the topology build a
    changed WAN pays instead of the lookup."""
    from app.domain.topology import build_topology
    from app.services import configs
    from app.services.specs import load_spec

    samples: dict[str, list[float]] = {}
    with app.app_context():
        for _ in range(reps):
            t0 = time.perf_counter()
            load_spec(wan_id)
            t1 = time.perf_counter()
            spec = load_spec(wan_id, all_secrets=True)
            t2 = time.perf_counter()
            assert spec is not None
            topology = configs.wan_topology(spec)
            t3 = time.perf_counter()
            files = configs.zip_files(spec, topology)
            t4 = time.perf_counter()
            configs.write_zip(files)
            t5 = time.perf_counter()
            build_topology(spec.routing_inputs())
            t6 = time.perf_counter()
            for name, value in (("load", t1 - t0), ("decrypt", t2 - t1 - (t1 - t0)), ("topology", t3 - t2),
                                ("render", t4 - t3), ("zip", t5 - t4), ("topology build", t6 - t5)):  # fmt: skip
                samples.setdefault(name, []).append(value)
        db.session.rollback()
    return {name: statistics.median(values) for name, values in samples.items()}


def phase_line(r: dict[str, Any]) -> str:
    phases = dict(r["phases"])
    build = phases.pop("topology build")
    rest = r["median"] - sum(phases.values())
    parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in phases.items())
    # Phases and fetches are timed at different moments: on a busy machine the difference can go negative.
    rest_text = f"~{rest * 1000:.0f} ms" if rest >= 0 else "lost in the noise of a busy machine"
    return (
        f"  median phases in-process: {parts}; the rest (auth, audit, HTTP) {rest_text}\n"
        f"  after a change the topology is built instead of reused: {build * 1000:.0f} ms"
    )


def result_lines(r: dict[str, Any], fetches: int) -> str:
    return (
        f"  {r['files']} files, {r['text_bytes']:,} bytes zipped into {r['bytes']:,}\n"
        f"  unchanged WAN, median of {fetches}: {r['median'] * 1000:.0f} ms (min {min(r['times']) * 1000:.0f} ms)\n"
        f"  each fetch after a change, median of {fetches}: {r['changed_median'] * 1000:.0f} ms "
        f"(min {min(r['changed']) * 1000:.0f} ms)\n" + phase_line(r)
    )


def fetch_in_process(app: Any, wan_id: int, token: str) -> None:
    client = app.test_client()
    resp = client.get(f"/api/wan/{wan_id}/configs.zip", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--routers", type=int, default=0, help="how many of the servers are MikroTiks (.rsc files)")
    parser.add_argument("--fetches", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one request (in-process)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a file SQLite DB in a temp dir)")
    args = parser.parse_args()
    r = measure(args.peers, args.fetches, args.profile, args.routers, args.database_url)
    where = args.database_url.rsplit("@", 1)[-1] if args.database_url else "file SQLite"
    print(f"configs.zip over HTTP, {args.peers}-peer mesh with {args.routers} MikroTik, {where}:")
    print(result_lines(r, args.fetches))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
