"""Dual-stack overlays (issue 14): the same scenarios over IPv6, proven with `ping -6` next to the
IPv4 checks on real WireGuard. Hop limits show relays as TTLs do (64 direct, 63 through a relay)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network, reachable_matrix

pytestmark = pytest.mark.e2e

ULA = "fd10:77::/64"


def test_dual_stack_mesh_of_four_with_a_relayed_cgnat_pair(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("mesh6", topology="mesh", tunnel_cidr6=ULA)
    nodes = {"srv1": net.public_node("srv1"), "srv2": net.public_node("srv2"),
             "cg1": net.cgnat_node("cg1"), "cg2": net.cgnat_node("cg2")}  # fmt: skip
    peers = {}
    for name, node in nodes.items():
        kind = "server" if node.public_ip else "client"
        endpoint = f"{node.public_ip}:51820" if node.public_ip else None
        peers[name] = wanapi.peer(wan["id"], name, kind, endpoint)
    # Lowest free, in creation order: srv1 has fd10:77::1.
    assert [p["tunnel_ip6"] for p in peers.values()] == ["fd10:77::1", "fd10:77::2", "fd10:77::3", "fd10:77::4"]
    for name in ("srv1", "srv2", "cg1", "cg2"):
        net.wg_up(nodes[name], wanapi.config(peers[name]["id"]))

    relayed = {("cg1", "cg2"), ("cg2", "cg1")}
    for family in ("tunnel_ip", "tunnel_ip6"):
        addrs = {name: p[family] for name, p in peers.items()}
        ttl = reachable_matrix(net, list(nodes.values()), addrs)
        assert ttl == {pair: 63 if pair in relayed else 64 for pair in ttl}, (family, ttl, net.report())
    # The relay (srv1, a forwarding server) answers the hop-limit-1 ping in both families.
    assert net.first_hop(nodes["cg1"], peers["cg2"]["tunnel_ip6"]) == "fd10:77::1", net.report()
    assert net.first_hop(nodes["cg1"], peers["cg2"]["tunnel_ip"]) == peers["srv1"]["tunnel_ip"], net.report()


def test_dual_stack_hub_and_spoke_with_an_ipv6_lan(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("hs6", topology="hub_spoke", tunnel_cidr6=ULA)
    hub, site, phone = net.public_node("hub"), net.public_node("site"), net.cgnat_node("phone")
    ph = wanapi.peer(wan["id"], "hub", "server", f"{hub.public_ip}:51820", is_hub=True)
    ps = wanapi.peer(wan["id"], "site", "server", f"{site.public_ip}:51820")
    pp = wanapi.peer(wan["id"], "phone", "client")
    assert ph["tunnel_ip6"] == "fd10:77::1"  # the first address goes to the first hub
    # The site routes an IPv6 LAN (a ULA of its own) exactly as it would an IPv4 one.
    net.run(site, "ip", "-6", "addr", "add", "fd20:1::1/64", "dev", "lo")
    wanapi.subnet(ps["id"], "fd20:1::/64")
    for node, peer in ((hub, ph), (site, ps), (phone, pp)):
        net.wg_up(node, wanapi.config(peer["id"]))

    for family in ("tunnel_ip", "tunnel_ip6"):
        assert net.ping(phone, ph[family]) == 64, net.report()
        assert net.ping(site, ph[family]) == 64, net.report()
        # Spokes reach each other only through the hub: one hop more.
        assert net.ping(phone, ps[family]) == 63, net.report()
        assert net.ping(site, pp[family]) == 63, net.report()
    assert net.first_hop(phone, ps["tunnel_ip6"]) == ph["tunnel_ip6"], net.report()
    assert net.ping(phone, "fd20:1::1") == 63, net.report()


def test_dual_stack_published_service(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("svc6", topology="mesh", tunnel_cidr6=ULA, services_cidr6="fd10:78::/64")
    office, phone = net.public_node("office"), net.cgnat_node("phone")
    po = wanapi.peer(wan["id"], "office", "server", f"{office.public_ip}:51820")
    pp = wanapi.peer(wan["id"], "phone", "client")
    net.serve(office, "::", 8080, "intranet")  # the office itself, on both families
    svc = wanapi.service(po["id"], name="intranet", protocol="tcp", local_ip=po["tunnel_ip"],
                         local_ip6=po["tunnel_ip6"], local_port=8080, shared_port=80)  # fmt: skip
    assert svc["shared_ip6"] == "fd10:78::1"
    for node, peer in ((office, po), (phone, pp)):
        net.wg_up(node, wanapi.config(peer["id"]))

    assert net.ping(phone, po["tunnel_ip6"]) == 64, net.report()
    assert net.curl(phone, f"http://{svc['shared_ip']}/") == f"intranet\nclient={pp['tunnel_ip']}\n", net.report()
    body = net.curl(phone, f"http://[{svc['shared_ip6']}]/")
    assert body == f"intranet\nclient={pp['tunnel_ip6']}\n", net.report()


def test_adding_the_ipv6_range_stales_every_config(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("stale6", topology="mesh")
    a, b = net.public_node("a"), net.public_node("b")
    pa = wanapi.peer(wan["id"], "a", "server", f"{a.public_ip}:51820")
    pb = wanapi.peer(wan["id"], "b", "server", f"{b.public_ip}:51820")
    assert pa["tunnel_ip6"] is None
    for node, peer in ((a, pa), (b, pb)):
        net.wg_up(node, wanapi.config(peer["id"]))
    assert net.ping(a, pb["tunnel_ip"]) == 64, net.report()

    resp = wanapi.api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr6": ULA})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    pa, pb = wanapi.get_peer(pa["id"]), wanapi.get_peer(pb["id"])
    assert (pa["tunnel_ip6"], pb["tunnel_ip6"]) == ("fd10:77::1", "fd10:77::2")
    assert pa["stale"] and pb["stale"]
    # The old configs know nothing of IPv6: no way through, while IPv4 still works.
    assert net.answering([(a, pb["tunnel_ip6"]), (b, pa["tunnel_ip6"])]) == [], net.report()
    assert net.ping(a, pb["tunnel_ip"], within=1) == 64

    for node, peer in ((a, pa), (b, pb)):
        net.wg_down(node)
        net.wg_up(node, wanapi.config(peer["id"]))
    assert not wanapi.get_peer(pa["id"])["stale"] and not wanapi.get_peer(pb["id"])["stale"]
    assert net.ping(a, pb["tunnel_ip6"]) == 64, net.report()
    assert net.ping(b, pa["tunnel_ip6"]) == 64, net.report()
    assert net.ping(a, pb["tunnel_ip"]) == 64, net.report()


def test_dual_stack_cgnat_pair_relayed_through_the_hub(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("relay6", topology="hybrid", tunnel_cidr6=ULA)
    srv, hub = net.public_node("srv"), net.public_node("hub")
    cg1, cg2 = net.cgnat_node("cg1"), net.cgnat_node("cg2")
    ps = wanapi.peer(wan["id"], "srv", "server", f"{srv.public_ip}:51820")  # lower tunnel IP, not the hub
    ph = wanapi.peer(wan["id"], "hub", "server", f"{hub.public_ip}:51820", is_hub=True)
    p1, p2 = wanapi.peer(wan["id"], "cg1", "client"), wanapi.peer(wan["id"], "cg2", "client")
    for node, peer in ((srv, ps), (hub, ph), (cg1, p1), (cg2, p2)):
        net.wg_up(node, wanapi.config(peer["id"]))

    for family in ("tunnel_ip", "tunnel_ip6"):
        # Neither CGNAT peer can be dialled: their traffic goes through the hub, one hop more.
        assert net.ping(cg1, p2[family]) == 63, net.report()
        assert net.ping(cg2, p1[family]) == 63, net.report()
        assert net.first_hop(cg1, p2[family]) == ph[family], net.report()
        assert net.ping(cg1, ps[family]) == 64, net.report()  # hybrid: direct to a peer with an endpoint
