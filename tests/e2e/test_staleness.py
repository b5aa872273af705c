"""Scenario 6: after a peer joins, old configs cannot reach it; re-downloaded ones can."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import WanClient
from tests.e2e.netns import Network

pytestmark = pytest.mark.e2e


def test_old_configs_cannot_reach_a_new_peer_until_redownloaded(net: Network, wanapi: WanClient) -> None:
    wan = wanapi.wan("stale", topology="mesh")
    a, b, c = net.public_node("a"), net.public_node("b"), net.public_node("c")
    pa = wanapi.peer(wan["id"], "a", "server", f"{a.public_ip}:51820")
    pb = wanapi.peer(wan["id"], "b", "server", f"{b.public_ip}:51820")
    for node, peer in ((a, pa), (b, pb)):
        net.wg_up(node, wanapi.config(peer["id"]))
    assert net.ping(a, pb["tunnel_ip"]) == 64, net.report()

    def stale() -> dict[str, bool]:
        return {name: wanapi.get_peer(p["id"])["stale"] for name, p in (("a", pa), ("b", pb), ("c", pc))}

    pc = wanapi.peer(wan["id"], "c", "server", f"{c.public_ip}:51820")
    assert stale() == {"a": True, "b": True, "c": True}  # c has never downloaded its config
    net.wg_up(c, wanapi.config(pc["id"]))
    assert stale() == {"a": True, "b": True, "c": False}

    # a and b still run configs without c: nobody gets through in either direction.
    probes = [(a, pc["tunnel_ip"]), (b, pc["tunnel_ip"]), (c, pa["tunnel_ip"]), (c, pb["tunnel_ip"])]
    assert net.answering(probes) == [], net.report()
    assert net.ping(a, pb["tunnel_ip"], within=1) == 64  # ...while the old tunnel still works

    # a re-downloads and re-applies: a <-> c works, b (still stale) stays cut off from c.
    net.wg_down(a)
    net.wg_up(a, wanapi.config(pa["id"]))
    assert stale() == {"a": False, "b": True, "c": False}
    assert net.ping(a, pc["tunnel_ip"]) == 64, net.report()
    assert net.ping(c, pa["tunnel_ip"]) == 64, net.report()
    assert net.answering([(b, pc["tunnel_ip"]), (c, pb["tunnel_ip"])]) == [], net.report()

    net.wg_down(b)
    net.wg_up(b, wanapi.config(pb["id"]))
    assert stale() == {"a": False, "b": False, "c": False}
    for src in (a, b, c):
        for dst in (pa, pb, pc):
            if dst["name"] != src.name:
                assert net.ping(src, dst["tunnel_ip"]) == 64, net.report()
