"""Fixtures for the end-to-end proof on real WireGuard (namespaces, wireguard-go, iptables).

Skipped, with the reason on one line, when not root or when a tool is missing (under CI=true, where
.ci/run installs them, such a skip fails the run: see tests/ci_skips.py). Each test gets a
:class:`~tests.e2e.netns.Network` whose names carry a prefix unique to this pytest run and test;
its teardown removes exactly what it made, also when the test failed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest

from tests.e2e.netns import Network, missing_tools

_SESSION = f"ww{secrets.token_hex(2)}"  # e.g. ww3fa2: namespaces ww3fa2a-inet, interfaces ww3fa2aw1
_TESTS = count()


def _why_skip() -> str | None:
    if os.geteuid() != 0:
        return "e2e WireGuard tests need root (network namespaces, iptables)"
    missing = missing_tools()
    if missing:
        return (
            f"e2e WireGuard tests need {', '.join(missing)}: apt-get install -y --no-install-recommends "
            "wireguard-go wireguard-tools iptables iproute2 iputils-ping curl"
        )
    if not os.path.exists("/dev/net/tun"):
        return "e2e WireGuard tests need /dev/net/tun for wireguard-go"
    return None


@pytest.fixture(autouse=True)
def _e2e_requirements() -> None:
    reason = _why_skip()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def net() -> Iterator[Network]:
    letter = "abcdefghijklmnopqrstuvwxyz"[next(_TESTS) % 26]
    prefix = f"{_SESSION}{letter}"
    existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert f"{prefix}-" not in existing, f"namespace prefix {prefix} already in use"
    network = Network(prefix)
    try:
        yield network
    finally:
        problems = network.close()
        assert not problems, f"teardown left things behind: {problems}"


class WanClient:
    """Builds a WAN through the JSON API and downloads configs the way a user does."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def _ok(self, resp: Any, status: int) -> dict[str, Any]:
        assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
        data: dict[str, Any] = resp.get_json()
        return data

    def wan(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._ok(self.api.post("/api/wan", json={"name": name, **fields}), 201)

    def peer(self, wan_id: int, name: str, kind: str, endpoint: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "kind": kind, **fields}
        if endpoint:
            body["endpoint"] = endpoint
        return self._ok(self.api.post(f"/api/peers/wan/{wan_id}", json=body), 201)

    def subnet(self, peer_id: int, cidr: str, **fields: Any) -> dict[str, Any]:
        return self._ok(self.api.post(f"/api/peers/{peer_id}/subnets", json={"cidr": cidr, **fields}), 201)

    def service(self, peer_id: int, **fields: Any) -> dict[str, Any]:
        return self._ok(self.api.post(f"/api/peers/{peer_id}/services", json=fields), 201)

    def get_peer(self, peer_id: int) -> dict[str, Any]:
        return self._ok(self.api.get(f"/api/peers/{peer_id}"), 200)

    def config(self, peer_id: int) -> str:
        """The wg-quick config as downloaded from the API (which marks it applied)."""
        resp = self.api.post(f"/api/peers/{peer_id}/config?config_type=wireguard")
        assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True))
        assert resp.mimetype == "text/plain", resp.mimetype
        assert "attachment" in resp.headers.get("Content-Disposition", "")
        text: str = resp.get_data(as_text=True)
        return text


@pytest.fixture
def wanapi(api: Any) -> WanClient:
    return WanClient(api)
