"""Scenario 2: two LANs with the same 192.168.1.0/24, the second one auto-NAT'd into the pool."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network

pytestmark = pytest.mark.e2e


def test_two_identical_lans_one_auto_natted(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("twolans", topology="mesh")
    site_a, site_b, laptop = net.public_node("sitea"), net.public_node("siteb"), net.cgnat_node("laptop")
    lan_a = net.lan(site_a, "lana", "192.168.1.1/24", "192.168.1.10", "body of LAN A")
    lan_b = net.lan(site_b, "lanb", "192.168.1.1/24", "192.168.1.10", "body of LAN B")

    pa = wanapi.peer(wan["id"], "sitea", "server", f"{site_a.public_ip}:51820")
    pb = wanapi.peer(wan["id"], "siteb", "server", f"{site_b.public_ip}:51820")
    pc = wanapi.peer(wan["id"], "laptop", "client")
    assert wanapi.subnet(pa["id"], "192.168.1.0/24")["nat_cidr"] is None
    nat_cidr = wanapi.subnet(pb["id"], "192.168.1.0/24", auto_nat=True)["nat_cidr"]
    assert nat_cidr and IPv4Network(nat_cidr).subnet_of(IPv4Network(wan["nat_pool_cidr"]))
    translated_host = str(IPv4Network(nat_cidr)[10])  # 192.168.1.10 on LAN B as the WAN sees it

    for node, peer in ((site_a, pa), (site_b, pb), (laptop, pc)):
        net.wg_up(node, wanapi.config(peer["id"]))
    net.serve(laptop, "0.0.0.0", 8080, "laptop")
    lap_ip = pc["tunnel_ip"]

    # The third peer gets each LAN host's own body; both hosts see the laptop's tunnel address.
    assert net.curl(laptop, "http://192.168.1.10/") == f"body of LAN A\nclient={lap_ip}\n", net.report()
    assert net.curl(laptop, f"http://{translated_host}/") == f"body of LAN B\nclient={lap_ip}\n", net.report()
    # Connections from the NAT'd LAN leave with the translated source; the other LAN's don't.
    assert net.curl(lan_b, f"http://{lap_ip}:8080/") == f"laptop\nclient={translated_host}\n", net.report()
    assert net.curl(lan_a, f"http://{lap_ip}:8080/") == "laptop\nclient=192.168.1.10\n", net.report()
    # And the two sites reach each other's LAN hosts the same way (site B cannot route A's
    # 192.168.1.0/24 onto the tunnel: it is its own LAN; A reaches B's LAN by its NAT prefix).
    assert net.curl(site_a, f"http://{translated_host}/") == f"body of LAN B\nclient={pa['tunnel_ip']}\n"
