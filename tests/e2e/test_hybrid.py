"""Scenario 4: hybrid: spokes that can reach each other talk directly, CGNAT pairs via the hub."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network, reachable_matrix

pytestmark = pytest.mark.e2e


def test_hybrid_direct_where_possible_hub_for_cgnat_pairs(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("hybrid", topology="hybrid")
    nodes = {"spoke1": net.public_node("spoke1"), "spoke2": net.public_node("spoke2"),
             "hub": net.public_node("hub"), "cg1": net.cgnat_node("cg1"), "cg2": net.cgnat_node("cg2")}  # fmt: skip
    lan = net.lan(nodes["spoke2"], "lan2", "192.168.12.1/24", "192.168.12.10", "body of LAN 2")
    # The hub comes last (highest tunnel IP): it must relay because it is the hub.
    peers = {
        "spoke1": wanapi.peer(wan["id"], "spoke1", "server", f"{nodes['spoke1'].public_ip}:51820"),
        "spoke2": wanapi.peer(wan["id"], "spoke2", "server", f"{nodes['spoke2'].public_ip}:51820"),
        "cg1": wanapi.peer(wan["id"], "cg1", "client"),
        "cg2": wanapi.peer(wan["id"], "cg2", "client"),
        "hub": wanapi.peer(wan["id"], "hub", "server", f"{nodes['hub'].public_ip}:51820", is_hub=True),
    }
    wanapi.subnet(peers["spoke2"]["id"], "192.168.12.0/24")
    for name in ("hub", "spoke1", "spoke2", "cg1", "cg2"):
        net.wg_up(nodes[name], wanapi.config(peers[name]["id"]))

    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    ttl = reachable_matrix(net, list(nodes.values()), tunnel)
    # Direct (TTL 64) whenever one side of the pair has an endpoint; the CGNAT pair via the hub.
    relayed = {("cg1", "cg2"), ("cg2", "cg1")}
    assert ttl == {pair: 63 if pair in relayed else 64 for pair in ttl}, net.report()
    assert net.first_hop(nodes["cg1"], tunnel["cg2"]) == tunnel["hub"], net.report()
    assert net.first_hop(nodes["spoke1"], tunnel["spoke2"]) == tunnel["spoke2"], net.report()

    # The LAN behind spoke2: directly from spoke1 and from a CGNAT spoke (one router hop, then the
    # host answers: TTL 63), through nobody else.
    for src in ("spoke1", "cg1"):
        assert net.ping(nodes[src], "192.168.12.10") == 63, net.report()
        assert net.curl(nodes[src], "http://192.168.12.10/") == f"body of LAN 2\nclient={tunnel[src]}\n"
    assert net.ping(lan, tunnel["cg2"]) == 63, net.report()
