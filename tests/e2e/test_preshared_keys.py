"""Preshared keys on real WireGuard: a mesh and a hub-and-spoke with PSKs connect; a pair whose
PSKs differ does not."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network, reachable_matrix

pytestmark = pytest.mark.e2e


def test_mesh_with_preshared_keys_connects(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("mesh-psk", topology="mesh", preshared_keys=True)
    nodes = {"a": net.public_node("a"), "b": net.public_node("b"), "c": net.cgnat_node("c")}
    peers = {
        "a": wanapi.peer(wan["id"], "a", "server", f"{nodes['a'].public_ip}:51820"),
        "b": wanapi.peer(wan["id"], "b", "server", f"{nodes['b'].public_ip}:51820"),
        "c": wanapi.peer(wan["id"], "c", "client"),
    }
    for name in ("a", "b", "c"):
        text = wanapi.config(peers[name]["id"])
        assert text.count("PresharedKey = ") == 2
        net.wg_up(nodes[name], text)
    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    ttl = reachable_matrix(net, list(nodes.values()), tunnel)
    assert all(v == 64 for v in ttl.values()), net.report()
    assert "preshared key: (hidden)" in net.wg_show(nodes["a"]), net.report()


def test_hub_spoke_with_preshared_keys_connects_and_a_wrong_psk_does_not(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("hub-psk", topology="hub_spoke", preshared_keys=True)
    nodes = {"hub": net.public_node("hub"), "s1": net.public_node("s1"), "s2": net.cgnat_node("s2")}
    peers = {
        "hub": wanapi.peer(wan["id"], "hub", "server", f"{nodes['hub'].public_ip}:51820", is_hub=True),
        "s1": wanapi.peer(wan["id"], "s1", "server", f"{nodes['s1'].public_ip}:51820"),
        "s2": wanapi.peer(wan["id"], "s2", "client"),
    }
    texts = {name: wanapi.config(p["id"]) for name, p in peers.items()}
    for name in ("hub", "s1", "s2"):
        net.wg_up(nodes[name], texts[name])
    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    ttl = reachable_matrix(net, list(nodes.values()), tunnel)
    assert ttl == {pair: 64 if "hub" in pair else 63 for pair in ttl}, net.report()

    # s1 with another PSK towards the hub: their handshake fails, so s1 reaches nobody; the hub and
    # s2 still talk.
    wrong = "PresharedKey = " + "A" * 43 + "="
    broken = re.sub(r"PresharedKey = \S+", wrong, texts["s1"])
    assert broken != texts["s1"]
    net.wg_down(nodes["s1"])
    net.wg_up(nodes["s1"], broken)
    assert net.answering([(nodes["s1"], tunnel["hub"]), (nodes["hub"], tunnel["s1"])], wait=2.0) == []
    assert net.ping(nodes["s2"], tunnel["hub"]) == 64, net.report()
