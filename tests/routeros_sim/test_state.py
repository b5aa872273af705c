"""Dump/load, normalized comparison, scheduler + rollback, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import librouteros
import pytest
from librouteros.exceptions import ConnectionClosed

from . import testing
from .server import SimRouter

# Shared fixtures (no conftest on purpose; see testing.py).
api = testing.api
sim = testing.sim

PEER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
REPO = Path(__file__).resolve().parents[2]


def test_dump_load_round_trip_preserves_everything(tmp_path: Path) -> None:
    with SimRouter(password="p", preset="existing") as a:
        a.set_handshake(PEER, 30)
        a.save(tmp_path / "r.json")
        original = a.dump()
        rows = a.rows("/interface/wireguard/peers")
    data = json.loads((tmp_path / "r.json").read_text())
    with SimRouter(data, password="other") as b:
        assert b.dump() == original
        assert b.rows("/interface/wireguard/peers") == rows  # incl. last-handshake=30s
        # Users come from the dump: the constructor's password no longer applies.
        b.connect(password="p").close()
        # New ids continue after the loaded ones instead of colliding.
        new_id = b.state.add("/ip/route", {"dst-address": "10.9.0.0/16", "gateway": "bridge"})
        assert new_id not in {r[".id"] for r in rows} | {r[".id"] for r in b.rows("/ip/route") if r[".id"] != new_id}


def test_load_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        SimRouter({"tables": {}})
    with pytest.raises(ValueError):
        SimRouter({"format": "wirewan-routeros-sim/1", "tables": {"/ip/nope": []}})


def test_state_file_may_be_a_script_on_top_of_defconf() -> None:
    sim = SimRouter({"script": "/interface wireguard add name=wg-x listen-port=13231"})
    assert [w["name"] for w in sim.rows("/interface/wireguard")] == ["wg-x"]


def test_normalized_dump_equal_via_different_paths(sim: SimRouter, api: Any) -> None:
    """Same configuration reached by API calls in one order and by a script in another."""
    api.path("interface", "wireguard").add(name="wg0", mtu=1400)  # generated key
    api.path("ip", "address").add(address="10.8.0.1/24", interface="wg0")
    rid = api.path("ip", "route").add(**{"dst-address": "10.20.0.0/16", "gateway": "wg0", "distance": 10})
    api.path("ip", "route").add(**{"dst-address": "10.21.0.0/16", "gateway": "wg0", "distance": 10})
    api.path("ip", "route").update(**{".id": rid, "comment": "c"})
    via_api = sim.normalized_dump()
    with SimRouter(password="secret") as other:
        other.run_script(
            """/ip route
            add dst-address=10.21.0.0/16 gateway=wg0 distance=10
            /interface wireguard add name=wg0 mtu=1400
            /ip address add address=10.8.0.1/24 interface=wg0
            /ip route add dst-address=10.20.0.0/16 gateway=wg0 distance=10 comment=c"""
        )
        assert other.normalized_dump() == via_api
        # ... and a real difference shows.
        other.run_script("/ip firewall filter add chain=input action=accept comment=extra")
        assert other.normalized_dump() != via_api


def test_normalized_dump_keeps_firewall_order(sim: SimRouter) -> None:
    before = sim.normalized_dump()
    nat = sim.rows("/ip/firewall/nat")
    sim.state.add("/ip/firewall/nat", {"chain": "srcnat", "action": "accept", "place-before": nat[0][".id"]})
    first = sim.normalized_dump()
    sim.state.move("/ip/firewall/nat", sim.rows("/ip/firewall/nat")[0][".id"], None)
    assert first != sim.normalized_dump() != before


def test_scheduler_runs_on_event_after_interval(sim: SimRouter) -> None:
    sim.run_script('/system scheduler add name=t interval=30s on-event=":log info tick"')
    assert sim.advance(29) == [] and sim.logs == []
    sim.advance(1)
    assert sim.logs == [("info", "tick")]
    sim.advance(60)
    assert len(sim.logs) == 3 and sim.rows("/system/scheduler")[0]["run-count"] == "3"
    sim.run_script(
        '/system script add name=undo source="/ip route add dst-address=10.77.0.0/16 gateway=bridge"\n'
        "/system scheduler set t on-event=undo"
    )
    sim.advance(30)
    assert len(sim.rows("/ip/route", dst_address="10.77.0.0/16")) == 1
    sim.run_script('/system scheduler set t on-event="/nope"')
    sim.advance(30)
    assert sim.logs[-1][0] == "error" and "bad command name" in sim.logs[-1][1]


def test_commit_confirmed_rollback_with_librouteros(sim: SimRouter, api: Any) -> None:
    """librouteros's arm_rollback: backup, scheduler that loads it; unconfirmed -> restored + reboot."""
    cfg = api.config()
    cfg.arm_rollback(60)
    api.path("ip", "route").add(**{"dst-address": "10.66.0.0/16", "gateway": "bridge"})
    assert cfg.rollback_pending()
    sim.advance(59)
    assert len(sim.rows("/ip/route", dst_address="10.66.0.0/16")) == 1
    sim.advance(1)
    assert sim.rows("/ip/route", dst_address="10.66.0.0/16") == []
    assert sim.rows("/system/scheduler") == [] and sim.state.reboots == 1
    with pytest.raises((ConnectionClosed, OSError)):
        list(api.path("ip", "route"))  # the "reboot" dropped the session
    again = sim.connect()
    again.config().arm_rollback(60)
    again.config().cancel_rollback()  # the confirm path
    again.close()
    sim.advance(120)
    assert sim.state.reboots == 1 and sim.rows("/file") == []


def test_cli_serves_librouteros(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    state.write_text(json.dumps({"script": "/system identity set name=cli-router"}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.routeros_sim",
            "--port",
            "0",
            "--password",
            "pw",
            "--version",
            "7.18",
            "--state",
            str(state),
            "--save-state",
            str(tmp_path / "out.json"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        conn = librouteros.connect("127.0.0.1", "admin", "pw", port=port)
        assert next(iter(conn.path("system", "identity")))["name"] == "cli-router"
        assert str(next(iter(conn.path("system", "resource")))["version"]).startswith("7.18")
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["tables"]["/system/identity"] == [{"name": "cli-router"}]


def test_many_parallel_clients() -> None:
    """Threads: concurrent connections each get their own answers."""
    import threading

    errors: list[BaseException] = []
    with SimRouter(password="p") as sim:

        def worker(n: int) -> None:
            try:
                c = sim.connect(password="p")
                try:
                    for _ in range(10):
                        c.path("ip", "route").add(**{"dst-address": f"10.{n}.0.0/16", "gateway": "bridge"})
                        c.path("ip", "route").remove(
                            *[str(r[".id"]) for r in c.path("ip", "route") if r["dst-address"] == f"10.{n}.0.0/16"]
                        )
                finally:
                    c.close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors and time.monotonic() - started < 30
        assert len(sim.rows("/ip/route")) == 3
        assert sim.counters.writes == 160
