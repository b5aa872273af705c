"""``python -m tests.routeros_sim --port 18728 --user admin --password secret``

Runs a simulated router until interrupted (the demo router a new user can deploy
to).  The virtual clock follows wall time here -- advanced once a second -- so
scheduler entries fire and handshake ages grow as on a real router.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .defconf import PRESETS
from .server import SimRouter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.routeros_sim", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8728)
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default="")
    p.add_argument("--version", default="7.16.2", help="simulated RouterOS version (gates properties)")
    p.add_argument("--state", type=Path, help='JSON: a dump, or {"script": ".rsc text"} applied on defconf')
    p.add_argument("--save-state", type=Path, help="write a dump here on exit")
    p.add_argument("--preset", choices=sorted(PRESETS), default="defconf")
    p.add_argument("--auto-handshake", action="store_true", help="peers with an endpoint handshake at once")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = json.loads(args.state.read_text()) if args.state else None
    sim = SimRouter(
        state,
        version=args.version,
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        preset=args.preset,
        auto_handshake=args.auto_handshake,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers first: whoever reads the "listening" line may signal us right away.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    port = sim.start()
    print(f"RouterOS {args.version} simulator listening on {args.host}:{port}", flush=True)
    try:
        while not stop.wait(1.0):
            sim.advance(1.0)
    finally:
        if args.save_state:
            sim.save(args.save_state)
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
