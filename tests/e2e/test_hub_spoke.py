"""Scenario 3: hub_spoke with a hub and three spokes (one behind CGNAT), two of them routing LANs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network, reachable_matrix

pytestmark = pytest.mark.e2e


def test_hub_and_spokes_spoke_traffic_goes_through_the_hub(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("hubspoke", topology="hub_spoke")
    nodes = {"spoke1": net.public_node("spoke1"), "spoke2": net.public_node("spoke2"),
             "hub": net.public_node("hub"), "spoke3": net.cgnat_node("spoke3")}  # fmt: skip
    lan1 = net.lan(nodes["spoke1"], "lan1", "192.168.11.1/24", "192.168.11.10", "body of LAN 1")
    lan2 = net.lan(nodes["spoke2"], "lan2", "192.168.12.1/24", "192.168.12.10", "body of LAN 2")
    # The hub is created last, so it does not have the lowest tunnel IP: it relays because it is
    # the hub, not because it comes first.
    peers = {
        "spoke1": wanapi.peer(wan["id"], "spoke1", "server", f"{nodes['spoke1'].public_ip}:51820"),
        "spoke2": wanapi.peer(wan["id"], "spoke2", "server", f"{nodes['spoke2'].public_ip}:51820"),
        "spoke3": wanapi.peer(wan["id"], "spoke3", "client"),
        "hub": wanapi.peer(wan["id"], "hub", "server", f"{nodes['hub'].public_ip}:51820", is_hub=True),
    }
    wanapi.subnet(peers["spoke1"]["id"], "192.168.11.0/24")
    wanapi.subnet(peers["spoke2"]["id"], "192.168.12.0/24")
    for name in ("hub", "spoke1", "spoke2", "spoke3"):
        net.wg_up(nodes[name], wanapi.config(peers[name]["id"]))

    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    ttl = reachable_matrix(net, list(nodes.values()), tunnel)
    expected = {pair: 64 if "hub" in pair else 63 for pair in ttl}
    assert ttl == expected, net.report()
    for src, dst in (("spoke1", "spoke2"), ("spoke3", "spoke1"), ("spoke2", "spoke3")):
        assert net.first_hop(nodes[src], tunnel[dst]) == tunnel["hub"], net.report()

    # LANs: from the CGNAT spoke, from the other LAN's router and host, and from the hub.
    for name in ("spoke3", "hub", "spoke2"):
        body = net.curl(nodes[name], "http://192.168.11.10/")
        assert body == f"body of LAN 1\nclient={tunnel[name]}\n", net.report()
    assert net.curl(nodes["spoke3"], "http://192.168.12.10/") == f"body of LAN 2\nclient={tunnel['spoke3']}\n"
    assert net.curl(lan1, "http://192.168.12.10/") == "body of LAN 2\nclient=192.168.11.10\n", net.report()
    # LAN 1 -> LAN 2 crosses spoke1, the hub and spoke2: the host sees TTL 61.
    assert net.ping(lan1, "192.168.12.10") == 61, net.report()
    assert net.ping(lan2, "192.168.11.10") == 61, net.report()


def test_adjacent_spoke_lans_reach_others_as_one_aggregated_prefix(net: Network, wanapi: WanClient) -> None:
    # Two adjacent LANs behind two spokes: a third spoke routes them through the hub as one /23
    # (on real WireGuard and wg-quick), and each LAN still reaches the other through the hub.
    wan = wanapi.wan("aggregated", topology="hub_spoke")
    nodes = {"hub": net.public_node("hub"), "spoke1": net.public_node("spoke1"),
             "spoke2": net.public_node("spoke2"), "spoke3": net.cgnat_node("spoke3")}  # fmt: skip
    lan1 = net.lan(nodes["spoke1"], "lan1", "192.168.12.1/24", "192.168.12.10", "body of LAN 1")
    lan2 = net.lan(nodes["spoke2"], "lan2", "192.168.13.1/24", "192.168.13.10", "body of LAN 2")
    peers = {
        "hub": wanapi.peer(wan["id"], "hub", "server", f"{nodes['hub'].public_ip}:51820", is_hub=True),
        "spoke1": wanapi.peer(wan["id"], "spoke1", "server", f"{nodes['spoke1'].public_ip}:51820"),
        "spoke2": wanapi.peer(wan["id"], "spoke2", "server", f"{nodes['spoke2'].public_ip}:51820"),
        "spoke3": wanapi.peer(wan["id"], "spoke3", "client"),
    }
    wanapi.subnet(peers["spoke1"]["id"], "192.168.12.0/24")
    wanapi.subnet(peers["spoke2"]["id"], "192.168.13.0/24")
    configs = {name: wanapi.config(p["id"]) for name, p in peers.items()}
    assert "192.168.12.0/23" in configs["spoke3"]
    assert "192.168.12.0/24" not in configs["spoke3"] and "192.168.13.0/24" not in configs["spoke3"]
    assert "192.168.12.0/23" not in configs["spoke1"] and "192.168.13.0/24" in configs["spoke1"]
    for name, text in configs.items():
        net.wg_up(nodes[name], text)

    tunnel = {name: p["tunnel_ip"] for name, p in peers.items()}
    assert net.curl(nodes["spoke3"], "http://192.168.12.10/") == f"body of LAN 1\nclient={tunnel['spoke3']}\n"
    assert net.curl(nodes["spoke3"], "http://192.168.13.10/") == f"body of LAN 2\nclient={tunnel['spoke3']}\n"
    assert net.curl(lan1, "http://192.168.13.10/") == "body of LAN 2\nclient=192.168.12.10\n", net.report()
    assert net.ping(lan2, "192.168.12.10") == 61, net.report()
