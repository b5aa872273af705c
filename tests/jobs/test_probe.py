"""The post-deploy handshake probe judges tunnels as WireGuard behaves (issue 16 §2), on the simulator:
new entries must handshake after the change; entries that only moved keep their session; the probe
stops reading as soon as it knows; roaming peers offline are information, not a warning."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.test_deploy_lifecycle import preflight_and_deploy
from tests.routeros_sim.server import SimRouter

PEERS_PRINT = "/interface/wireguard/peers/print"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # A long wait: a probe that polled instead of stopping at its verdict would read many times.
    return {**app_config, "WIREWAN_PROBE_SECONDS": 20}


def probe_reads(sim: SimRouter) -> int:
    return sum(c.command == PEERS_PRINT for c in sim.commands)


def test_first_deploy_new_entries_handshake_at_once_and_the_probe_reads_once(
    api: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    sim.reset_counters()
    _, dep = preflight_and_deploy(api, run_jobs, router_wan["router"]["id"])
    assert dep["status"] == "succeeded", dep
    assert dep["result"]["handshakes"] == {"vps": "0 s ago", "laptop": "none (offline)"}
    assert dep["warnings"] == [], dep["warnings"]
    assert any("'laptop' is offline: it has no endpoint" in line for line in dep["log"])
    # preflight read + deploy read + one probe read: the verdict was known at once.
    assert probe_reads(sim) == 3


def test_a_moved_endpoint_keeps_its_session_and_is_up_without_waiting(
    api: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    assert preflight_and_deploy(api, run_jobs, router)[1]["status"] == "succeeded"
    sim.advance(100)  # the session is 100 s old: alive, but older than any change to come
    assert api.patch(f"/api/peers/{router_wan['server']['id']}", json={"endpoint": "203.0.113.99"}).status_code == 200
    sim.reset_counters()
    _, dep = preflight_and_deploy(api, run_jobs, router)
    assert dep["status"] == "succeeded" and dep["result"]["operations"] == 1, dep
    assert dep["result"]["handshakes"]["vps"] == "100 s ago"
    assert dep["warnings"] == [], dep["warnings"]
    assert any("'vps' has a new endpoint 203.0.113.99:51820" in line and "next rekey" in line for line in dep["log"])
    assert probe_reads(sim) == 3


def test_a_dead_session_is_a_warning_naming_the_peer_and_what_to_check(
    api: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    assert preflight_and_deploy(api, run_jobs, router)[1]["status"] == "succeeded"
    sim.advance(600)  # no handshake for ten minutes: the tunnel to the VPS is down
    assert api.patch(f"/api/peers/{router_wan['server']['id']}", json={"endpoint": "203.0.113.99"}).status_code == 200
    _, dep = preflight_and_deploy(api, run_jobs, router)
    assert dep["status"] == "succeeded"
    assert dep["result"]["handshakes"]["vps"] == "600 s ago (down)"
    (warning,) = dep["warnings"]
    assert warning.startswith("'vps' has not completed a handshake in the last 180 s.")
    assert "endpoint 203.0.113.99:51820 is right" in warning and "UDP 51820" in warning


def test_a_no_change_deploy_does_not_probe(api: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]) -> None:
    router = router_wan["router"]["id"]
    assert preflight_and_deploy(api, run_jobs, router)[1]["status"] == "succeeded"
    sim.reset_counters()
    _, dep = preflight_and_deploy(api, run_jobs, router)
    assert dep["result"]["writes"] == 0 and dep["result"]["handshakes"] == {}
    assert probe_reads(sim) == 2  # the preflight's and the deploy's reads only
