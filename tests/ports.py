"""A free TCP port on 127.0.0.1 for a server started a moment later (by a test, or by ./run.sh).

Not from the kernel's ephemeral range (port 0): until the server binds, any outgoing connection of
the machine (to Redis, PostgreSQL, a health check) may be given that very port, and the server then
fails with "Address already in use". Below the range only servers bind, and a random pick keeps two
callers apart."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    high = min(_ephemeral_start(), 32768)
    for _ in range(200):
        port = random.randrange(20000, high) if high > 20000 else 0  # noqa: S311 — not a secret
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":  # ./run.sh picks its private Redis's and demo routers' ports with this
    print(free_port())
