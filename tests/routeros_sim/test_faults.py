"""Fault injection and the read/write counters."""

from __future__ import annotations

import time
from typing import Any

import librouteros
import pytest
from librouteros.exceptions import ConnectionClosed, FatalError, TrapError

from . import testing
from .faults import Faults
from .server import SimRouter
from .testing import RawClient

# Shared fixtures (no conftest on purpose; see testing.py).
api = testing.api
sim = testing.sim


def test_close_after_n_sentences(sim: SimRouter) -> None:
    sim.faults.close_after_sentences = 2  # login + one command, then the next one dies
    conn = sim.connect()
    try:
        assert list(conn.path("system", "identity"))
        with pytest.raises(ConnectionClosed):
            list(conn.path("ip", "route"))
    finally:
        conn.close()
    assert sim.counters.sentences == 2  # the dropped sentence is not counted


def test_per_connection_faults_apply_to_next_connection_only(sim: SimRouter) -> None:
    sim.queue_connection_faults(Faults(close_after_sentences=1))
    first = sim.connect()
    with pytest.raises(ConnectionClosed):
        list(first.path("ip", "route"))
    first.close()
    second = sim.connect()
    assert len(list(second.path("ip", "route"))) == 3
    second.close()


def test_trap_on_command_changes_nothing(sim: SimRouter, api: Any) -> None:
    sim.faults.trap_on("/ip/route/add", "failure: injected", times=1)
    routes = api.path("ip", "route")
    with pytest.raises(TrapError, match="failure: injected"):
        routes.add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge"})
    assert len(list(routes)) == 3
    routes.add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge"})  # only once
    assert len(list(routes)) == 4


def test_fatal_on_command(sim: SimRouter, api: Any) -> None:
    sim.faults.fatal_on("/interface/wireguard/print", "out of memory")
    with pytest.raises(FatalError, match="out of memory"):
        list(api.path("interface", "wireguard"))
    assert sim.counters.fatals == 1


def test_close_on_any_command(sim: SimRouter, api: Any) -> None:
    sim.faults.close_on("*", times=1)
    with pytest.raises(ConnectionClosed):
        list(api.path("ip", "route"))


def test_refuse_connections(sim: SimRouter) -> None:
    sim.faults.refuse_connections = True
    with pytest.raises((ConnectionClosed, OSError)):
        sim.connect()
    sim.faults.clear()
    sim.connect().close()
    assert sim.counters.refused == 1


def test_reply_delay_hits_client_timeout(sim: SimRouter) -> None:
    conn = sim.connect(timeout=0.2)
    # The reply comes far later than the timeout, so a stalled test process cannot see it arrive.
    sim.faults.delay_on("/ip/route/print", 3.0, times=1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        list(conn.path("ip", "route"))
    assert time.monotonic() - started < 2.5
    conn.close()
    sim.faults.reply_delay = 0.1
    started = time.monotonic()
    sim.connect().close()
    assert time.monotonic() - started >= 0.1


def test_counters_and_reset(sim: SimRouter, api: Any) -> None:
    assert (sim.counters.session, sim.counters.reads, sim.counters.writes) == (1, 0, 0)
    routes = api.path("ip", "route")
    list(routes)
    rid = routes.add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge"})
    routes.update(**{".id": rid, "distance": 3})
    with pytest.raises(TrapError):
        routes.update(**{".id": "*FFF", "distance": 3})  # failed writes count too
    assert (sim.counters.reads, sim.counters.writes) == (1, 3)
    assert [c.command for c in sim.writes()] == ["/ip/route/add", "/ip/route/set", "/ip/route/set"]
    sim.reset_counters()
    list(routes)
    assert (sim.counters.reads, sim.counters.writes, sim.writes()) == (1, 0, [])


def test_stop_closes_live_connections() -> None:
    sim = SimRouter(password="p")
    sim.start()
    conn = librouteros.connect("127.0.0.1", "admin", "p", port=sim.port)
    raw = RawClient(sim)
    raw.login(password="p")  # make sure it was accepted, not still in the listen backlog
    sim.stop()
    assert sim.active_connections == 0
    with pytest.raises((ConnectionClosed, OSError)):
        list(conn.path("ip", "route"))
    assert raw.read() is None
    raw.close()
    conn.close()
