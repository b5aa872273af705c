"""The IPv6 overlay through the JSON API and the pages (issue 14): what a user sets, sees and is
refused, and that adding the range numbers every peer in one go and stales every config."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import Peer
from tests.web.test_api_network import assert_error, make_peer, make_wan
from tests.web.test_pages_network import WAN_FORM, add_peer


def peers_of(api: Any, wan_id: int) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in api.get(f"/api/peers/wan/{wan_id}").get_json()}


def test_dual_stack_wan_numbers_peers_lowest_free_or_by_hand(api: Any) -> None:
    wan = make_wan(api, tunnel_cidr6="fd10:77::/64")
    assert (wan["tunnel_cidr6"], wan["services_cidr6"]) == ("fd10:77::/64", None)
    hub = make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.1:51820")
    own = make_peer(api, wan["id"], "own", tunnel_ip6="fd10:77::99")
    nxt = make_peer(api, wan["id"], "next")
    assert (hub["tunnel_ip6"], own["tunnel_ip6"], nxt["tunnel_ip6"]) == ("fd10:77::1", "fd10:77::99", "fd10:77::2")
    taken = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "server", "tunnel_ip6": "fd10:77::1"})
    assert_error(taken, 409, "tunnel_ip6", "already used by peer 'hub'", "(fd10:77::3)")
    outside = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "server", "tunnel_ip6": "fd99::1"})
    assert_error(outside, 422, "tunnel_ip6", "outside the IPv6 tunnel range fd10:77::/64")

    config = api.get(f"/api/peers/{hub['id']}/config?config_type=wireguard").get_data(as_text=True)
    assert "Address = 10.0.0.1/24, fd10:77::1/64\n" in config
    assert "AllowedIPs = 10.0.0.2/32, fd10:77::99/128\n" in config
    topo = api.get(f"/api/wan/{wan['id']}/topology").get_json()
    assert {n["name"]: n["tunnel_ip6"] for n in topo["nodes"]} == {
        "hub": "fd10:77::1",
        "own": "fd10:77::99",
        "next": "fd10:77::2",
    }


def test_bad_ipv6_ranges_are_refused_and_nothing_is_saved(api: Any) -> None:
    resp = api.post("/api/wan", json={"name": "w", "tunnel_cidr6": "2001:db8::/64"})
    assert_error(resp, 422, "tunnel_cidr6", "not a unique local address range")
    resp = api.post("/api/wan", json={"name": "w", "services_cidr6": "fd10:78::/64"})
    assert_error(resp, 422, "services_cidr6", "needs an IPv6 tunnel range")
    resp = api.post("/api/wan", json={"name": "w", "tunnel_cidr6": "fd10::/64", "services_cidr6": "fd10::/96"})
    assert_error(resp, 422, "services_cidr6", "overlaps the IPv6 tunnel range fd10::/64")
    resp = api.post("/api/wan", json={"name": "w", "tunnel_cidr6": True})
    assert resp.status_code in (400, 422)
    assert api.get("/api/wan").get_json() == []


def test_adding_the_range_numbers_every_peer_hub_first_and_stales_every_config(app: Flask, api: Any) -> None:
    wan = make_wan(api)
    make_peer(api, wan["id"], "a", endpoint="203.0.113.1:51820")
    make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.2:51820")
    make_peer(api, wan["id"], "c")
    for p in peers_of(api, wan["id"]).values():
        api.post(f"/api/peers/{p['id']}/config?config_type=wireguard")  # applied
    assert not any(p["stale"] for p in peers_of(api, wan["id"]).values())

    resp = api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr6": "fd10:77::/64"})
    assert resp.status_code == 200, resp.get_json()
    got = peers_of(api, wan["id"])
    assert {n: p["tunnel_ip6"] for n, p in got.items()} == {"a": "fd10:77::2", "hub": "fd10:77::1", "c": "fd10:77::3"}
    assert all(p["stale"] for p in got.values())

    # Moving the range re-numbers; removing it takes every address away again.
    api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr6": "fd10:99::/64"})
    assert {p["tunnel_ip6"] for p in peers_of(api, wan["id"]).values()} == {"fd10:99::1", "fd10:99::2", "fd10:99::3"}
    api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr6": None})
    assert {p["tunnel_ip6"] for p in peers_of(api, wan["id"]).values()} == {None}
    with app.app_context():
        assert db.session.scalars(select(Peer.tunnel_ip6)).all() == [None, None, None]


def test_ipv4_only_wan_answers_null_ipv6_fields(api: Any) -> None:
    wan = make_wan(api)
    assert (wan["tunnel_cidr6"], wan["services_cidr6"]) == (None, None)
    peer = make_peer(api, wan["id"], "a")
    assert peer["tunnel_ip6"] is None
    config = api.get(f"/api/peers/{peer['id']}/config?config_type=wireguard").get_data(as_text=True)
    assert "Address = 10.0.0.1/24\n" in config
    # No IPv6 address anywhere an address goes (the hash comment is hex: it may well contain "fd").
    assert not [line for line in config.splitlines() if line.startswith(("Address", "AllowedIPs")) and ":" in line]


def test_service_over_ipv6(api: Any) -> None:
    wan = make_wan(api, tunnel_cidr6="fd10:77::/64", services_cidr6="fd10:78::/64")
    peer = make_peer(api, wan["id"], "srv", endpoint="203.0.113.1:51820")
    resp = api.post(
        f"/api/peers/{peer['id']}/services",
        json={"name": "web", "local_ip": "10.0.0.1", "local_port": 80, "local_ip6": "fd10:77::1"},
    )
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["shared_ip6"], resp.get_json()["local_ip6"]) == ("fd10:78::1", "fd10:77::1")
    bad = api.post(
        f"/api/peers/{peer['id']}/services",
        json={"name": "x", "local_ip": "10.0.0.1", "local_port": 81, "local_ip6": "fd55::1"},
    )
    assert_error(bad, 422, "local_ip6", "neither this peer's tunnel IPv6")


def test_wan_form_suggests_a_ula_and_the_page_shows_both_addresses(admin_browser: Any) -> None:
    form = admin_browser.get("/wans/new").get_data(as_text=True)
    assert "Suggested (random, RFC 4193): fd" in form and "::/64" in form
    resp = admin_browser.post("/wans/new", {**WAN_FORM, "tunnel_cidr6": "fd10:77::/64"})
    assert resp.status_code == 303
    wan_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert add_peer(admin_browser, wan_id).status_code == 303
    page = admin_browser.get(f"/wans/{wan_id}").get_data(as_text=True)
    assert "IPv6 tunnel <code>fd10:77::/64</code>" in page
    assert "<code>10.0.0.1</code><br><code>fd10:77::1</code>" in page
    bad = admin_browser.post("/wans/new", {**WAN_FORM, "name": "other", "tunnel_cidr6": "10.9.0.0/24"})
    assert bad.status_code == 422
    assert "IPv6 tunnel range must be an IPv6 range; 10.9.0.0/24 is IPv4." in bad.get_data(as_text=True)


def test_twelve_peers_added_at_once_get_distinct_ipv6_addresses(app: Flask, api: Any, operator_token: str) -> None:
    from tests.web.test_concurrency import _client, _in_parallel

    wan = make_wan(api, tunnel_cidr6="fd10:77::/64")

    def add(i: int) -> Any:
        resp = _client(app, operator_token)("post", f"/api/peers/wan/{wan['id']}",
                                            json={"name": f"peer{i:02d}", "kind": "server"})  # fmt: skip
        return resp.status_code, resp.get_json()

    results = _in_parallel(12, add)
    assert all(isinstance(r, tuple) and r[0] == 201 for r in results), results
    got = sorted(body["tunnel_ip6"] for _, body in results)
    assert got == sorted(f"fd10:77::{n:x}" for n in range(1, 13))
    assert api.get(f"/api/wan/{wan['id']}/conflicts").get_json() == []
