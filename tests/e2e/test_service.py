"""Scenario 5: a service on a LAN host, published at a shared IP:port, reached from other peers."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network

pytestmark = pytest.mark.e2e


def test_published_service_on_a_lan_host(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("services", topology="mesh")
    office, branch, phone = net.public_node("office"), net.public_node("branch"), net.cgnat_node("phone")
    # The LAN host has no default route: it is not routed to the overlay and does not use the
    # office as its gateway, so only the owner's source NAT can bring replies back.
    net.lan(office, "lan", "192.168.20.1/24", "192.168.20.10", "intranet", port=8080, gateway=False)

    po = wanapi.peer(wan["id"], "office", "server", f"{office.public_ip}:51820")
    pb = wanapi.peer(wan["id"], "branch", "server", f"{branch.public_ip}:51820")
    pp = wanapi.peer(wan["id"], "phone", "client")
    wanapi.subnet(po["id"], "192.168.20.0/24", routed=False)
    svc = wanapi.service(po["id"], name="intranet", protocol="tcp", local_ip="192.168.20.10",
                         local_port=8080, shared_port=80)  # fmt: skip
    shared = f"{svc['shared_ip']}:{svc['shared_port']}"
    assert svc["shared_port"] == 80

    for node, peer in ((office, po), (branch, pb), (phone, pp)):
        net.wg_up(node, wanapi.config(peer["id"]))

    for node in (branch, phone):
        assert net.curl(node, f"http://{shared}/") == "intranet\nclient=192.168.20.1\n", net.report()
    # Only the service is published: the LAN itself is not routed.
    assert net.curl(branch, "http://192.168.20.10:8080/", within=0) is None
