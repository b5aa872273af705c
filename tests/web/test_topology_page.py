"""The topology page: the WAN drawn server-side, each node a link, relayed paths labelled."""

from __future__ import annotations

import re

import pytest

from tests.web.test_pages_network import WAN_FORM, add_peer


@pytest.fixture
def hybrid_wan(admin_browser) -> int:
    resp = admin_browser.post("/wans/new", {**WAN_FORM, "topology": "hybrid"})
    assert resp.status_code == 303
    wan_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert add_peer(admin_browser, wan_id, name="hub", is_hub="y", endpoint="hub.example.net").status_code == 303
    assert (
        add_peer(admin_browser, wan_id, name="office", subnet="192.168.88.0/24", endpoint="198.51.100.7").status_code
        == 303
    )
    assert add_peer(admin_browser, wan_id, name="laptop", kind="client").status_code == 303
    resp = add_peer(admin_browser, wan_id, name="branch", subnet="192.168.88.0/24", subnet_auto_nat="y")
    assert resp.status_code == 303
    return wan_id


def peer_ids(body: str) -> dict[str, int]:
    return {name: int(pid) for pid, name in re.findall(r'<a href="/peers/(\d+)">([^<]+)</a>', body)}


def test_wan_page_links_to_its_topology(admin_browser, hybrid_wan):
    body = admin_browser.get(f"/wans/{hybrid_wan}").get_data(as_text=True)
    assert f'href="/wans/{hybrid_wan}/topology"' in body


def test_topology_page_draws_every_peer_as_a_link(admin_browser, hybrid_wan):
    ids = peer_ids(admin_browser.get(f"/wans/{hybrid_wan}").get_data(as_text=True))
    resp = admin_browser.get(f"/wans/{hybrid_wan}/topology")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "<svg" in body and "cdn" not in body.lower() and "<script>" not in body.replace("<script src=", "")
    for name, pid in ids.items():
        assert re.search(rf'<a class="topo-node [^"]*" data-peer-id="{pid}" href="/peers/{pid}">', body), name
    # laptop and branch have no endpoint: their path goes through the hub, dashed and labelled.
    assert 'class="topo-edge topo-relayed"' in body and "stroke-dasharray" in body
    assert ">via hub<" in body
    # Badges: CGNAT, not applied (nothing downloaded yet: not "stale"); NAT'd LAN with its translation.
    assert "topo-badge topo-badge-cgnat" in body and "topo-badge topo-badge-not-applied" in body
    assert "topo-badge-stale" not in body
    assert ">192.168.88.0/24<" in body and re.search(r">as 172\.16\.0\.0/24<", body)
    # Small drawing: starts fitted to the page.
    assert re.search(r'id="topo-fit" class="topo-fit" checked', body)


def test_downloaded_configs_lose_the_stale_badge(admin_browser, hybrid_wan):
    ids = peer_ids(admin_browser.get(f"/wans/{hybrid_wan}").get_data(as_text=True))
    for pid in ids.values():
        assert admin_browser.post(f"/peers/{pid}/config").status_code == 200
    body = admin_browser.get(f"/wans/{hybrid_wan}/topology").get_data(as_text=True)
    assert "topo-badge-stale" not in body and "topo-badge-not-applied" not in body and "topo-badge-cgnat" in body
    # A new CGNAT phone: hub and office gain a tunnel to it (stale); laptop and branch reach it through
    # the hub with unchanged configs; its own config is not applied.
    assert add_peer(admin_browser, hybrid_wan, name="phone", kind="client").status_code == 303
    body = admin_browser.get(f"/wans/{hybrid_wan}/topology").get_data(as_text=True)
    assert body.count("topo-badge topo-badge-stale") == 2 and body.count("topo-badge topo-badge-not-applied") == 1


def test_beyond_sixty_spokes_the_page_clusters_them_and_says_where_the_list_is(api, admin_browser):
    from tests.web.test_peer_lists import CSV, make_peer, make_wan

    wan = make_wan(api, tunnel_cidr="10.0.0.0/22", services_cidr="10.1.5.0/24", topology="hub_spoke")
    make_peer(api, wan["id"], "hq", is_hub=True, endpoint="203.0.113.1")
    rows = [f"phone-{i:03d},client,," for i in range(70)] + [f"site-{i},server,site{i}.example.net," for i in range(3)]
    resp = api.post(
        f"/api/peers/wan/{wan['id']}/import", data="name,kind,endpoint,lans\n" + "\n".join(rows), content_type=CSV
    )
    assert resp.status_code == 201
    body = admin_browser.get(f"/wans/{wan['id']}/topology").get_data(as_text=True)
    # The 70 phones are one node with its count, linking to the WAN's clients; the hub and the three
    # sites stay their own nodes.
    assert re.search(
        rf'<a class="topo-node topo-cluster [^"]*" data-cluster="client" href="/wans/{wan["id"]}\?kind=client">', body
    )
    assert ">70 clients</text>" in body
    assert len(re.findall(r'<a class="topo-node [^"]*" data-peer-id=', body)) == 4
    # Said in the picture and beside it, with the way to the full list and the full drawing.
    assert ">70 spokes clustered by kind · the WAN page lists every peer</text>" in body
    assert 'id="topo-cluster-legend"' in body and 'id="topo-clustered"' in body
    assert f'href="/wans/{wan["id"]}/topology?all=1"' in body
    every = admin_browser.get(f"/wans/{wan['id']}/topology?all=1").get_data(as_text=True)
    assert "data-cluster=" not in every and len(re.findall(r'<a class="topo-node [^"]*" data-peer-id=', every)) == 74
    assert "Cluster the spokes by kind" in every


def test_topology_of_an_empty_wan_and_of_a_missing_one(admin_browser):
    resp = admin_browser.post("/wans/new", WAN_FORM)
    wan_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    body = admin_browser.get(f"/wans/{wan_id}/topology").get_data(as_text=True)
    assert "No peers yet" in body
    assert admin_browser.get("/wans/9999/topology").status_code == 404


def test_topology_needs_a_login(client, app):
    assert client.get("/wans/1/topology").status_code in (302, 303)


def test_viewers_see_the_topology(app, hybrid_wan, client):
    from tests.conftest import Browser, make_user

    make_user(app, "viewer@example.com", "viewer")
    viewer = Browser(app.test_client())
    assert viewer.login("viewer@example.com", "correct-horse").status_code == 303
    assert viewer.get(f"/wans/{hybrid_wan}/topology").status_code == 200
