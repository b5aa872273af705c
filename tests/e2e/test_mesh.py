"""Scenario 1: a mesh of two public servers and two CGNAT clients on real WireGuard."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import CGNAT_PUBLIC, Network, reachable_matrix

pytestmark = pytest.mark.e2e


def test_mesh_of_four_with_two_cgnat_clients_relayed(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("mesh4", topology="mesh")
    nodes = {"srv1": net.public_node("srv1"), "srv2": net.public_node("srv2"),
             "cg1": net.cgnat_node("cg1"), "cg2": net.cgnat_node("cg2")}  # fmt: skip
    peers = {}
    for name, node in nodes.items():
        kind = "server" if node.public_ip else "client"
        endpoint = f"{node.public_ip}:51820" if node.public_ip else None
        peers[name] = wanapi.peer(wan["id"], name, kind, endpoint)
    assert peers["cg1"]["cgnat"] and peers["cg2"]["cgnat"]
    for name in ("srv1", "srv2", "cg1", "cg2"):  # public peers first: CGNAT peers dial them
        net.wg_up(nodes[name], wanapi.config(peers[name]["id"]))

    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    ttl = reachable_matrix(net, list(nodes.values()), tunnel)
    # Every pair with an endpoint on one side is a direct tunnel (TTL 64); the two CGNAT clients
    # can never handshake with each other and go through the relay (TTL 63).
    relayed = {("cg1", "cg2"), ("cg2", "cg1")}
    expected = {pair: 63 if pair in relayed else 64 for pair in ttl}
    assert ttl == expected, net.report()
    # The relay is the public server with the lowest tunnel IP (srv1): it answers a TTL-1 ping.
    assert net.first_hop(nodes["cg1"], tunnel["cg2"]) == tunnel["srv1"], net.report()
    assert net.first_hop(nodes["cg2"], tunnel["cg1"]) == tunnel["srv1"], net.report()
    # The carrier NAT really is one: nothing outside can open a path to it or the peers behind it.
    assert net.answering([(nodes["srv2"], CGNAT_PUBLIC)], wait=0.3) == []
