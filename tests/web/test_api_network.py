"""The JSON API for networks and peers (../shared/API.md, "Networks" and "Peers" tables).

Every test drives the API the way a script would (bearer token, JSON bodies) and checks what the
user sees: status codes, the values in the answer, the wording of refusals, and what is stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Peer, Service, Subnet, Wan
from tests.conftest import make_token, make_user

ROUTER_PASSWORD = 'R0uter"pa$[ss]; /x'
KEY_RE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


# --- helpers -----------------------------------------------------------------------------------


def make_wan(api: Any, name: str = "corp", **fields: Any) -> dict[str, Any]:
    resp = api.post("/api/wan", json={"name": name, **fields})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def make_peer(api: Any, wan_id: int, name: str, kind: str = "server", **fields: Any) -> dict[str, Any]:
    resp = api.post(f"/api/peers/wan/{wan_id}", json={"name": name, "kind": kind, **fields})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def add_subnet(api: Any, peer_id: int, cidr: str, **fields: Any) -> Any:
    return api.post(f"/api/peers/{peer_id}/subnets", json={"cidr": cidr, **fields})


def assert_error(resp: Any, status: int, field: str | None = None, *fragments: str) -> dict[str, Any]:
    """A JSON error of API.md's shape, with the status, field and message fragments expected."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    body = resp.get_json()
    assert set(body) == {"error", "message", "field"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field, body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    return body


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def stored_secrets(app: Flask) -> list[str]:
    """Every private key and router password in the database, decrypted (the test may; the API may not)."""
    from app import crypto

    with app.app_context():
        out = []
        for peer in db.session.scalars(select(Peer)):
            if peer.private_key_enc:
                out.append(crypto.decrypt(peer.private_key_enc))
            if peer.mt_password_enc:
                out.append(crypto.decrypt(peer.mt_password_enc))
        return out


def public_keys(value: Any) -> set[str]:
    """The values of every 'public_key' member anywhere in a JSON document."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "public_key" and isinstance(item, str):
                found.add(item)
            else:
                found |= public_keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= public_keys(item)
    return found


def assert_no_secret(resp: Any, secrets: list[str]) -> None:
    raw = resp.get_data(as_text=True)
    for secret in secrets:
        assert secret not in raw
        assert json.dumps(secret)[1:-1] not in raw  # the JSON-escaped form too
    body = resp.get_json(silent=True)
    if body is None:
        return
    # Only 'public_key' members may hold something shaped like a WireGuard key.
    assert set(KEY_RE.findall(raw)) <= public_keys(body), raw[:1000]
    assert not _keys(body) & {"password", "private_key", "mt_password_enc", "private_key_enc"}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


# --- WANs --------------------------------------------------------------------------------------


def test_default_interface_names_differ_per_wan_so_one_router_can_serve_several(api: Any) -> None:
    names = [
        api.post("/api/wan", json={"name": n}).get_json()["interface_name"]
        for n in ("Branch Offices", "branch offices!", "A very long WAN name indeed")
    ]
    assert names == ["wg-branch-offic", "wg-branch-off-2", "wg-a-very-long"]
    assert all(len(n) <= 15 for n in names)
    given = api.post("/api/wan", json={"name": "x", "interface_name": "wg-corp"}).get_json()
    assert given["interface_name"] == "wg-corp"


def test_wan_create_uses_the_documented_defaults(api: Any) -> None:
    resp = api.post("/api/wan", json={"name": "corp"})
    assert resp.status_code == 201
    wan = resp.get_json()
    assert resp.headers["Location"].endswith(f"/api/wan/{wan['id']}")
    assert wan["name"] == "corp"
    assert wan["tunnel_cidr"] == "10.0.0.0/24"
    assert wan["services_cidr"] == "10.0.5.0/24"
    assert wan["nat_pool_cidr"] == "172.16.0.0/12"
    assert wan["topology"] == "mesh"
    assert wan["interface_name"] == "wg-corp"  # wg-<WAN name>: unique per WAN
    assert (wan["listen_port"], wan["keepalive"], wan["mtu"]) == (51820, 25, 1420)
    assert wan["mgmt_cidrs"] == []
    assert wan["peer_count"] == 0


def test_wan_create_with_every_field(api: Any) -> None:
    wan = make_wan(
        api, "lab", tunnel_cidr="10.8.0.0/22", services_cidr="10.9.0.0/24", nat_pool_cidr="100.64.0.0/16",
        topology="hub_spoke", interface_name="wg-lab", listen_port=13231, keepalive=15, mtu=1380,
        mgmt_cidrs=["192.0.2.0/24", "2001:db8::/64"],
    )  # fmt: skip
    assert wan["tunnel_cidr"] == "10.8.0.0/22"
    assert wan["services_cidr"] == "10.9.0.0/24"
    assert wan["nat_pool_cidr"] == "100.64.0.0/16"
    assert wan["topology"] == "hub_spoke"
    assert wan["interface_name"] == "wg-lab"
    assert (wan["listen_port"], wan["keepalive"], wan["mtu"]) == (13231, 15, 1380)
    assert wan["mgmt_cidrs"] == ["192.0.2.0/24", "2001:db8::/64"]


def test_wan_list_get_patch_delete(api: Any, app: Flask) -> None:
    a = make_wan(api, "beta")
    b = make_wan(api, "alpha")
    make_peer(api, a["id"], "one")

    listed = api.get("/api/wan")
    assert listed.status_code == 200
    assert [(w["name"], w["peer_count"]) for w in listed.get_json()] == [("alpha", 0), ("beta", 1)]

    got = api.get(f"/api/wan/{a['id']}")
    assert got.status_code == 200
    assert got.get_json()["name"] == "beta"
    assert got.get_json()["peer_count"] == 1

    patched = api.patch(f"/api/wan/{a['id']}", json={"topology": "hybrid", "mtu": 1400})
    assert patched.status_code == 200
    assert patched.get_json()["topology"] == "hybrid"
    assert patched.get_json()["mtu"] == 1400
    assert patched.get_json()["name"] == "beta"  # untouched fields keep their values
    assert api.get(f"/api/wan/{a['id']}").get_json()["topology"] == "hybrid"

    deleted = api.delete(f"/api/wan/{a['id']}")
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert_error(api.get(f"/api/wan/{a['id']}"), 404)
    assert [w["name"] for w in api.get("/api/wan").get_json()] == ["alpha"]
    # The WAN's peers went with it.
    assert count(app, Peer) == 0
    assert b["id"] != a["id"]


def test_wan_name_taken_is_a_conflict(api: Any) -> None:
    make_wan(api, "corp")
    assert_error(api.post("/api/wan", json={"name": "corp"}), 409, "name", "corp", "already exists")
    other = make_wan(api, "other")
    assert_error(api.patch(f"/api/wan/{other['id']}", json={"name": "corp"}), 409, "name")


def test_wan_ranges_must_not_overlap(api: Any, app: Flask) -> None:
    resp = api.post("/api/wan", json={"name": "w", "tunnel_cidr": "10.0.0.0/16"})
    assert_error(resp, 422, "services_cidr", "10.0.5.0/24", "10.0.0.0/16", "must not overlap")
    assert count(app, Wan) == 0


def test_wan_range_with_host_bits_offers_the_network(api: Any) -> None:
    resp = api.post("/api/wan", json={"name": "w", "tunnel_cidr": "10.0.0.1/24"})
    assert_error(resp, 422, "tunnel_cidr", "host bits", "did you mean 10.0.0.0/24?")


def test_wan_shrink_that_strands_a_peer_is_refused(api: Any) -> None:
    wan = make_wan(api)
    make_peer(api, wan["id"], "low")
    make_peer(api, wan["id"], "high", tunnel_ip="10.0.0.200")
    resp = api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr": "10.0.0.0/25"})
    assert_error(
        resp, 409, "tunnel_cidr",
        "cannot change from 10.0.0.0/24 to 10.0.0.0/25 because it is in use",
        "10.0.0.200 (peer 'high') would fall outside it",
        "Move or delete those first",
    )  # fmt: skip
    assert api.get(f"/api/wan/{wan['id']}").get_json()["tunnel_cidr"] == "10.0.0.0/24"
    # Moving the range away from a peer is refused too; widening is fine.
    moved = api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr": "10.0.0.128/25"})
    assert_error(moved, 409, "tunnel_cidr", "10.0.0.1 (peer 'low') would fall outside it")
    widened = api.patch(f"/api/wan/{wan['id']}", json={"tunnel_cidr": "10.0.0.0/23"})
    assert widened.status_code == 200
    assert widened.get_json()["tunnel_cidr"] == "10.0.0.0/23"


def test_wan_range_moved_onto_a_lan_is_refused(api: Any) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "office")
    assert add_subnet(api, peer["id"], "192.168.1.0/24").status_code == 201
    resp = api.patch(f"/api/wan/{wan['id']}", json={"services_cidr": "192.168.0.0/16"})
    assert_error(resp, 409, "services_cidr", "192.168.1.0/24", "'office'")


def test_wan_nat_pool_shrink_that_strands_a_nat_block_is_refused(api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    assert add_subnet(api, a["id"], "192.168.1.0/24").status_code == 201
    nat = add_subnet(api, b["id"], "192.168.1.0/24", auto_nat=True).get_json()
    assert nat["nat_cidr"] == "172.16.0.0/24"
    resp = api.patch(f"/api/wan/{wan['id']}", json={"nat_pool_cidr": "100.64.0.0/10"})
    assert_error(resp, 409, "nat_pool_cidr", "172.16.0.0/24", "Auto-NAT of 192.168.1.0/24 of peer 'b'")


def test_wan_conflicts_lists_legacy_overlaps(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    assert api.get(f"/api/wan/{wan['id']}/conflicts").get_json() == []
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    sa = add_subnet(api, a["id"], "192.168.1.0/24").get_json()
    # Data saved before the overlap rule existed (an import, an old version): write it directly.
    with app.app_context():
        legacy = Subnet(wan_id=wan["id"], peer_id=b["id"], cidr="192.168.1.0/25", routed=True)
        db.session.add(legacy)
        db.session.commit()
        legacy_id = legacy.id
    resp = api.get(f"/api/wan/{wan['id']}/conflicts")
    assert resp.status_code == 200
    conflicts = resp.get_json()
    assert len(conflicts) == 1
    (c,) = conflicts
    assert c["severity"] == "warning"
    assert c["kind"] == "peer_subnet_overlap"
    assert {c["peer_id"], c["other_peer_id"]} == {a["id"], b["id"]}
    assert {c["subnet_id"], c["other_subnet_id"]} == {sa["id"], legacy_id}
    assert "192.168.1.0/24 of peer 'a'" in c["message"]
    assert "192.168.1.0/25 of peer 'b'" in c["message"]
    assert_error(api.get("/api/wan/999/conflicts"), 404)


# --- peers -------------------------------------------------------------------------------------


def test_peers_get_the_lowest_free_tunnel_ips(api: Any) -> None:
    wan = make_wan(api)
    first = make_peer(api, wan["id"], "first")
    second = make_peer(api, wan["id"], "second", kind="client")
    assert first["tunnel_ip"] == "10.0.0.1"
    assert second["tunnel_ip"] == "10.0.0.2"
    assert api.delete(f"/api/peers/{first['id']}").status_code == 204
    # The freed address is the lowest free one again.
    assert make_peer(api, wan["id"], "third")["tunnel_ip"] == "10.0.0.1"
    assert make_peer(api, wan["id"], "fourth")["tunnel_ip"] == "10.0.0.3"


def test_peer_answer_has_the_documented_shape(api: Any) -> None:
    wan = make_wan(api)
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "edge", "kind": "server",
                                                         "endpoint": "vpn.example.com"})  # fmt: skip
    assert resp.status_code == 201
    peer = resp.get_json()
    assert resp.headers["Location"].endswith(f"/api/peers/{peer['id']}")
    for key in ("id", "wan_id", "name", "kind", "is_hub", "tunnel_ip", "listen_port", "endpoint", "public_key",
                "cgnat", "subnets", "services", "mikrotik"):  # fmt: skip
        assert key in peer, key
    assert peer["wan_id"] == wan["id"]
    assert peer["endpoint"] == "vpn.example.com:51820"  # no port: the listen port
    assert peer["listen_port"] == 51820
    assert peer["cgnat"] is False
    assert peer["is_hub"] is False
    assert peer["subnets"] == [] and peer["services"] == []
    assert peer["mikrotik"] is None
    assert KEY_RE.fullmatch(peer["public_key"])
    cgnat = make_peer(api, wan["id"], "laptop", kind="client")
    assert cgnat["endpoint"] is None and cgnat["cgnat"] is True


def test_peer_listen_port_defaults_to_the_wans(api: Any) -> None:
    wan = make_wan(api, listen_port=13231)
    assert make_peer(api, wan["id"], "p")["listen_port"] == 13231


def test_peer_with_its_own_public_key(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    peer = make_peer(api, wan["id"], "phone", kind="client", public_key=key)
    assert peer["public_key"] == key
    assert peer["brings_own_key"] is True
    with app.app_context():
        assert db.session.get(Peer, peer["id"]).private_key_enc is None
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "client", "public_key": "abc"}),
        422, "public_key", "44 characters of base64",
    )  # fmt: skip


def test_peer_list_get_patch_delete(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    other_wan = make_wan(api, "other")
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b", kind="client")
    make_peer(api, other_wan["id"], "elsewhere")

    listed = api.get(f"/api/peers/wan/{wan['id']}")
    assert listed.status_code == 200
    assert [(p["name"], p["tunnel_ip"]) for p in listed.get_json()] == [("a", "10.0.0.1"), ("b", "10.0.0.2")]

    got = api.get(f"/api/peers/{a['id']}")
    assert got.status_code == 200 and got.get_json() == a

    patched = api.patch(f"/api/peers/{a['id']}", json={"name": "a2", "is_hub": True, "endpoint": "203.0.113.5"})
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["name"] == "a2" and body["is_hub"] is True
    assert body["endpoint"] == "203.0.113.5:51820"
    assert body["tunnel_ip"] == "10.0.0.1"  # untouched
    assert body["public_key"] == a["public_key"]  # keys survive an edit

    moved = api.patch(f"/api/peers/{b['id']}", json={"tunnel_ip": "10.0.0.50"})
    assert moved.status_code == 200 and moved.get_json()["tunnel_ip"] == "10.0.0.50"

    assert api.delete(f"/api/peers/{a['id']}").status_code == 204
    assert_error(api.get(f"/api/peers/{a['id']}"), 404)
    assert [p["name"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json()] == ["b"]


def test_peer_name_rules(api: Any) -> None:
    wan = make_wan(api)
    make_peer(api, wan["id"], "office")
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "office", "kind": "server"}),
        409, "name", "already has a peer named 'office'",
    )  # fmt: skip
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "my office", "kind": "server"}),
        422, "name", "found ' '",
    )  # fmt: skip
    assert_error(api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x" * 49, "kind": "server"}), 422, "name")
    assert_error(api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "router"}), 422, "kind")
    # The same name in another WAN is fine.
    other = make_wan(api, "other")
    make_peer(api, other["id"], "office")


def test_explicit_tunnel_ip_free_taken_and_outside(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    owner = make_peer(api, wan["id"], "owner", tunnel_ip="10.0.0.10")
    assert owner["tunnel_ip"] == "10.0.0.10"
    before = count(app, Peer)
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "late", "kind": "server", "tunnel_ip": "10.0.0.10"})
    assert_error(resp, 409, "tunnel_ip", "Tunnel IP 10.0.0.10 is already used by peer 'owner'", "(10.0.0.1)")
    assert count(app, Peer) == before
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "late", "kind": "server", "tunnel_ip": "10.9.0.1"}),
        422, "tunnel_ip", "outside the tunnel range 10.0.0.0/24",
    )  # fmt: skip
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "late", "kind": "server", "tunnel_ip": "10.0.0.255"}),
        422, "tunnel_ip", "broadcast address",
    )  # fmt: skip
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "late", "kind": "server", "tunnel_ip": "10.0.0.0"}),
        422, "tunnel_ip", "network address",
    )  # fmt: skip
    # Moving another peer onto the owner's address names the owner too.
    other = make_peer(api, wan["id"], "other")
    assert_error(api.patch(f"/api/peers/{other['id']}", json={"tunnel_ip": "10.0.0.10"}), 409, "tunnel_ip", "'owner'")


def test_full_tunnel_range_gives_a_clear_message(api: Any, app: Flask) -> None:
    wan = make_wan(api, tunnel_cidr="10.0.0.0/30")
    assert make_peer(api, wan["id"], "a")["tunnel_ip"] == "10.0.0.1"
    assert make_peer(api, wan["id"], "b")["tunnel_ip"] == "10.0.0.2"
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "c", "kind": "server"})
    assert_error(
        resp, 409, "tunnel_ip",
        "The tunnel range 10.0.0.0/30 has no free address left (2 in use); widen it in the WAN settings.",
    )  # fmt: skip
    assert count(app, Peer) == 2


def test_endpoint_port_guardrail_uses_the_seed_wording(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "gw", "kind": "mikrotik",
                                                         "endpoint": "gw.example.com:51821"})  # fmt: skip
    assert_error(
        resp, 422, "endpoint",
        "Endpoint port 51821 differs from listen port 51820",
        "last-handshake = never",
        "tick 'Has port-forward upstream'",
        "translates external port 51821 to internal port 51820",
    )  # fmt: skip
    assert count(app, Peer) == 0
    ok = make_peer(api, wan["id"], "gw", kind="mikrotik", endpoint="gw.example.com:51821", has_port_forward=True)
    assert ok["endpoint"] == "gw.example.com:51821"
    assert ok["has_port_forward"] is True
    # Changing the listen port afterwards without the tick is refused the same way.
    plain = make_peer(api, wan["id"], "plain", endpoint="198.51.100.7:51820")
    assert_error(api.patch(f"/api/peers/{plain['id']}", json={"listen_port": 51900}), 422, "endpoint",
                 "Endpoint port 51820 differs from listen port 51900")  # fmt: skip
    assert api.get(f"/api/peers/{plain['id']}").get_json()["listen_port"] == 51820


def test_endpoint_forms(api: Any) -> None:
    wan = make_wan(api)
    v6 = make_peer(api, wan["id"], "v6", endpoint="[2001:db8::1]:51820")
    assert v6["endpoint"] == "[2001:db8::1]:51820"
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "server", "endpoint": "host:70000"}),
        422, "endpoint", "1 to 65535",
    )  # fmt: skip
    assert_error(
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": "x", "kind": "server", "endpoint": "host:"}),
        422, "endpoint", "has no port",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tunnel_ip", "host", "fragment"),
    [
        ("10.0.0.1", "10.0.0.1", "Management host 10.0.0.1 is this peer's tunnel IP."),
        (None, "10.0.0.77", "Management host 10.0.0.77 is inside the WAN's tunnel range 10.0.0.0/24."),
    ],
)
def test_management_host_in_the_tunnel_is_refused(
    api: Any, app: Flask, tunnel_ip: str | None, host: str, fragment: str
) -> None:
    wan = make_wan(api)
    body: dict[str, Any] = {"name": "gw", "kind": "mikrotik", "mikrotik": {"host": host, "password": "pw"}}
    if tunnel_ip:
        body["tunnel_ip"] = tunnel_ip
    resp = api.post(f"/api/peers/wan/{wan['id']}", json=body)
    assert_error(
        resp, 422, "mikrotik_host", fragment,
        "locks WireWAN out", "Use the router's LAN gateway IP (e.g. 192.168.1.1) or its public IP / DDNS hostname",
    )  # fmt: skip
    assert count(app, Peer) == 0


def test_management_host_guardrail_on_edit(api: Any) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "gw", kind="mikrotik", mikrotik={"host": "192.168.88.1", "password": "pw"})
    resp = api.patch(f"/api/peers/{peer['id']}", json={"mikrotik": {"host": peer["tunnel_ip"]}})
    assert_error(resp, 422, "mikrotik_host", "is this peer's tunnel IP", "locks WireWAN out")
    assert api.get(f"/api/peers/{peer['id']}").get_json()["mikrotik"]["host"] == "192.168.88.1"
    # Moving the tunnel onto the management host is the same mistake from the other side.
    wan2 = make_wan(api, "w2", tunnel_cidr="192.168.88.0/24", services_cidr="10.0.5.0/24")
    gw2 = api.post(f"/api/peers/wan/{wan2['id']}", json={"name": "gw", "kind": "mikrotik",
                                                          "mikrotik": {"host": "gw.example.com"}})  # fmt: skip
    assert gw2.status_code == 201
    resp = api.patch(f"/api/peers/{gw2.get_json()['id']}", json={"mikrotik": {"host": "192.168.88.1"}})
    assert_error(resp, 422, "mikrotik_host")


def test_mikrotik_fields_round_trip_without_the_password(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    peer = make_peer(
        api, wan["id"], "gw", kind="mikrotik",
        mikrotik={"host": "192.168.88.1", "port": 8729, "use_tls": True, "verify_cert": True,
                  "username": "wirewan-api", "password": ROUTER_PASSWORD, "auto_deploy": True},
    )  # fmt: skip
    assert peer["mikrotik"] == {
        "host": "192.168.88.1", "port": 8729, "use_tls": True, "verify_cert": True,
        "username": "wirewan-api", "auto_deploy": True, "password_set": True,
    }  # fmt: skip
    from app import crypto

    with app.app_context():
        stored = db.session.get(Peer, peer["id"])
        assert stored.mt_password_enc and ROUTER_PASSWORD not in stored.mt_password_enc
        assert crypto.decrypt(stored.mt_password_enc) == ROUTER_PASSWORD
    # A PATCH without a password keeps the stored one (write-only field).
    api.patch(f"/api/peers/{peer['id']}", json={"mikrotik": {"auto_deploy": False}})
    with app.app_context():
        assert crypto.decrypt(db.session.get(Peer, peer["id"]).mt_password_enc) == ROUTER_PASSWORD
    # Turning the peer into a Linux server drops the router secret.
    api.patch(f"/api/peers/{peer['id']}", json={"kind": "server"})
    assert api.get(f"/api/peers/{peer['id']}").get_json()["mikrotik"] is None
    with app.app_context():
        assert db.session.get(Peer, peer["id"]).mt_password_enc is None


def test_no_response_contains_a_private_key_or_router_password(api: Any, app: Flask) -> None:
    responses = []
    wan = api.post("/api/wan", json={"name": "corp", "topology": "hub_spoke"})
    responses.append(wan)
    wan_id = wan.get_json()["id"]
    gw = api.post(f"/api/peers/wan/{wan_id}", json={
        "name": "gw", "kind": "mikrotik", "is_hub": True, "endpoint": "gw.example.com",
        "mikrotik": {"host": "192.168.88.1", "username": "admin", "password": ROUTER_PASSWORD},
    })  # fmt: skip
    responses.append(gw)
    gw_id = gw.get_json()["id"]
    srv = api.post(f"/api/peers/wan/{wan_id}", json={"name": "srv", "kind": "server"})
    responses.append(srv)
    responses.append(api.post(f"/api/peers/{gw_id}/subnets", json={"cidr": "192.168.88.0/24"}))
    responses.append(api.post(f"/api/peers/{gw_id}/services", json={
        "name": "web", "protocol": "tcp", "local_ip": "192.168.88.10", "local_port": 80}))  # fmt: skip
    responses.append(api.patch(f"/api/peers/{gw_id}", json={"mikrotik": {"password": ROUTER_PASSWORD + "2"}}))
    responses.append(api.patch(f"/api/wan/{wan_id}", json={"keepalive": 20}))
    for url in ("/api/wan", f"/api/wan/{wan_id}", f"/api/peers/wan/{wan_id}", f"/api/peers/{gw_id}",
                f"/api/wan/{wan_id}/conflicts", "/api/me"):  # fmt: skip
        responses.append(api.get(url))
    # Refusals must not echo the password either.
    responses.append(api.patch(f"/api/peers/{gw_id}", json={"mikrotik": {"password": ROUTER_PASSWORD + "\n"}}))
    secrets = stored_secrets(app)
    assert len(secrets) == 3  # two private keys, one router password
    assert ROUTER_PASSWORD + "2" in secrets
    for resp in responses:
        assert resp.status_code < 500
        assert_no_secret(resp, secrets + [ROUTER_PASSWORD])
    assert responses[-1].status_code == 422


# --- subnets -----------------------------------------------------------------------------------


def test_subnet_post_with_json_and_with_query_args(api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")

    resp = add_subnet(api, a["id"], "192.168.1.0/24")
    assert resp.status_code == 201
    assert resp.get_json() == {
        "id": resp.get_json()["id"],
        "cidr": "192.168.1.0/24",
        "routed": True,
        "nat_cidr": None,
    }

    query = api.post(f"/api/peers/{b['id']}/subnets?cidr=192.168.1.0/24&auto_nat=true")
    assert query.status_code == 201
    assert query.get_json()["cidr"] == "192.168.1.0/24"
    assert query.get_json()["routed"] is True
    assert query.get_json()["nat_cidr"] == "172.16.0.0/24"

    plain = api.post(f"/api/peers/{b['id']}/subnets?cidr=10.20.0.0/16&routed=false")
    assert plain.status_code == 201
    assert plain.get_json()["routed"] is False

    listed = api.get(f"/api/peers/{b['id']}").get_json()["subnets"]
    assert [(s["cidr"], s["nat_cidr"]) for s in listed] == [
        ("192.168.1.0/24", "172.16.0.0/24"),
        ("10.20.0.0/16", None),
    ]


def test_routed_overlap_is_refused_with_both_fixes(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "office")
    b = make_peer(api, wan["id"], "home")
    add_subnet(api, a["id"], "192.168.1.0/24")
    before = count(app, Subnet)
    resp = add_subnet(api, b["id"], "192.168.1.128/25")
    assert_error(
        resp, 409, "cidr",
        "192.168.1.128/25 overlaps 192.168.1.0/24 of peer 'office' (routed)",
        "tick 'Auto-NAT if conflict'", "NAT pool 172.16.0.0/12", "or mark it not routed",
    )  # fmt: skip
    assert count(app, Subnet) == before
    # Either fix works.
    not_routed = add_subnet(api, b["id"], "192.168.1.128/25", routed=False)
    assert not_routed.status_code == 201
    assert not_routed.get_json()["nat_cidr"] is None


def test_auto_nat_gives_the_smallest_free_blocks_in_order(api: Any) -> None:
    wan = make_wan(api)
    peers = [make_peer(api, wan["id"], f"site{i}") for i in range(3)]
    assert add_subnet(api, peers[0]["id"], "192.168.1.0/24").get_json()["nat_cidr"] is None
    first = add_subnet(api, peers[1]["id"], "192.168.1.0/24", auto_nat=True)
    second = add_subnet(api, peers[2]["id"], "192.168.1.0/24", auto_nat=True)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["nat_cidr"] == "172.16.0.0/24"
    assert second.get_json()["nat_cidr"] == "172.16.1.0/24"
    # No conflict: auto_nat asked but not needed, no NAT.
    assert add_subnet(api, peers[2]["id"], "192.168.77.0/24", auto_nat=True).get_json()["nat_cidr"] is None


def test_overlap_with_a_nat_translation_is_refused(api: Any) -> None:
    wan = make_wan(api, nat_pool_cidr="100.64.0.0/16")
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    c = make_peer(api, wan["id"], "c")
    add_subnet(api, a["id"], "192.168.1.0/24")
    assert add_subnet(api, b["id"], "192.168.1.0/24", auto_nat=True).get_json()["nat_cidr"] == "100.64.0.0/24"
    # 100.64.0.0/24 is inside the NAT pool: refused as a critical overlap, routed or not.
    assert_error(add_subnet(api, c["id"], "100.64.0.0/24", routed=False), 409, "cidr", "NAT pool 100.64.0.0/16")


@pytest.mark.parametrize(
    ("cidr", "fragment"),
    [
        ("10.0.0.0/16", "overlaps the WAN's tunnel range 10.0.0.0/24"),
        ("10.0.0.128/25", "overlaps the WAN's tunnel range 10.0.0.0/24"),
        ("10.0.5.0/24", "overlaps the WAN's services range 10.0.5.0/24"),
        ("172.16.4.0/24", "overlaps the WAN's NAT pool 172.16.0.0/12"),
        ("172.0.0.0/8", "overlaps the WAN's NAT pool 172.16.0.0/12"),
    ],
)
@pytest.mark.parametrize("routed", [True, False])
def test_subnet_overlapping_a_wan_range_is_critical(
    api: Any, app: Flask, cidr: str, fragment: str, routed: bool
) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    resp = add_subnet(api, peer["id"], cidr, routed=routed, auto_nat=True)
    assert_error(resp, 409, "cidr", fragment, "routed or not")
    assert count(app, Subnet) == 0


def test_subnet_parsing_is_strict(api: Any) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    assert_error(add_subnet(api, peer["id"], "192.168.1.5/24"), 422, "cidr",
                 "192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?")  # fmt: skip
    assert_error(add_subnet(api, peer["id"], "192.168.1.0"), 422, "cidr", "no prefix length")
    assert_error(add_subnet(api, peer["id"], "192.168.1.0/33"), 422, "cidr", "invalid prefix length")
    assert_error(api.post(f"/api/peers/{peer['id']}/subnets", json={}), 422, "cidr")
    assert_error(add_subnet(api, peer["id"], "192.168.1.0/24", routed="maybe"), 422, "routed")


def test_own_overlapping_subnets_are_refused(api: Any) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    add_subnet(api, peer["id"], "192.168.0.0/16")
    assert_error(add_subnet(api, peer["id"], "192.168.1.0/24"), 409, "cidr", "which peer 'p' already has")


def test_put_subnet_auto_nat_nat_off_and_not_routed(api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    sa = add_subnet(api, a["id"], "192.168.1.0/24").get_json()
    sb = add_subnet(api, b["id"], "192.168.1.0/24", routed=False).get_json()

    # Routed on while the overlap remains: refused, naming the other peer.
    assert_error(api.put(f"/api/peers/{b['id']}/subnets/{sb['id']}", json={"routed": True}), 409, "cidr",
                 "of peer 'a'")  # fmt: skip

    nat = api.put(f"/api/peers/{b['id']}/subnets/{sb['id']}?auto_nat=true")
    assert nat.status_code == 200
    assert nat.get_json()["nat_cidr"] == "172.16.0.0/24"
    assert api.put(f"/api/peers/{b['id']}/subnets/{sb['id']}", json={"routed": True}).get_json() == {
        "id": sb["id"], "cidr": "192.168.1.0/24", "routed": True, "nat_cidr": "172.16.0.0/24",
    }  # fmt: skip

    # NAT off while the other peer still routes the same LAN: refused with the fixes.
    resp = api.put(f"/api/peers/{b['id']}/subnets/{sb['id']}", json={"nat": False})
    assert_error(resp, 409, "cidr", "overlaps 192.168.1.0/24 of peer 'a'", "Auto-NAT")
    assert api.get(f"/api/peers/{b['id']}").get_json()["subnets"][0]["nat_cidr"] == "172.16.0.0/24"

    # Not routed on the other side, then NAT off succeeds.
    off = api.put(f"/api/peers/{a['id']}/subnets/{sa['id']}", json={"routed": False})
    assert off.status_code == 200 and off.get_json()["routed"] is False
    nat_off = api.put(f"/api/peers/{b['id']}/subnets/{sb['id']}", json={"nat": False})
    assert nat_off.status_code == 200
    assert nat_off.get_json()["nat_cidr"] is None
    assert nat_off.get_json()["routed"] is True


def test_delete_subnet(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    other = make_peer(api, wan["id"], "q")
    sub = add_subnet(api, peer["id"], "192.168.1.0/24").get_json()
    assert_error(api.delete(f"/api/peers/{other['id']}/subnets/{sub['id']}"), 404)
    assert api.delete(f"/api/peers/{peer['id']}/subnets/{sub['id']}").status_code == 204
    assert api.get(f"/api/peers/{peer['id']}").get_json()["subnets"] == []
    assert_error(api.delete(f"/api/peers/{peer['id']}/subnets/{sub['id']}"), 404)
    # Freed: the other peer may now route the same LAN without NAT.
    assert add_subnet(api, other["id"], "192.168.1.0/24").get_json()["nat_cidr"] is None


def test_subnet_holding_a_service_cannot_be_deleted_first(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    sub = add_subnet(api, peer["id"], "192.168.1.0/24").get_json()
    svc = api.post(f"/api/peers/{peer['id']}/services", json={"name": "web", "protocol": "tcp",
                                                              "local_ip": "192.168.1.10", "local_port": 80})  # fmt: skip
    assert svc.status_code == 201
    assert_error(api.delete(f"/api/peers/{peer['id']}/subnets/{sub['id']}"), 409, None,
                 "holds the local address of published service(s) web")  # fmt: skip
    assert count(app, Subnet) == 1


# --- services ----------------------------------------------------------------------------------


def test_services_post_and_delete(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    add_subnet(api, a["id"], "192.168.1.0/24")
    resp = api.post(f"/api/peers/{a['id']}/services",
                    json={"name": "web", "protocol": "tcp", "local_ip": "192.168.1.10", "local_port": 80})  # fmt: skip
    assert resp.status_code == 201
    web = resp.get_json()
    assert web["shared_ip"] == "10.0.5.1" and web["shared_port"] == 80
    assert (web["name"], web["protocol"], web["local_ip"], web["local_port"]) == (
        "web",
        "tcp",
        "192.168.1.10",
        80,
    )

    dns = api.post(f"/api/peers/{a['id']}/services", json={"name": "dns", "protocol": "udp",
                                                           "local_ip": "192.168.1.2", "local_port": 53,
                                                           "shared_ip": "10.0.5.9", "shared_port": 5353})  # fmt: skip
    assert dns.status_code == 201
    assert (dns.get_json()["shared_ip"], dns.get_json()["shared_port"]) == ("10.0.5.9", 5353)

    # The peer itself (its tunnel IP) may publish too; it gets the next free shared IP.
    own = api.post(f"/api/peers/{b['id']}/services", json={"name": "ssh", "protocol": "tcp",
                                                           "local_ip": b["tunnel_ip"], "local_port": 22})  # fmt: skip
    assert own.status_code == 201 and own.get_json()["shared_ip"] == "10.0.5.2"

    services = api.get(f"/api/peers/{a['id']}").get_json()["services"]
    assert [s["name"] for s in services] == ["web", "dns"]

    assert api.delete(f"/api/peers/{a['id']}/services/{web['id']}").status_code == 204
    assert [s["name"] for s in api.get(f"/api/peers/{a['id']}").get_json()["services"]] == ["dns"]
    assert_error(api.delete(f"/api/peers/{a['id']}/services/{web['id']}"), 404)
    assert_error(api.delete(f"/api/peers/{b['id']}/services/{dns.get_json()['id']}"), 404)


def test_service_refusals(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a")
    b = make_peer(api, wan["id"], "b")
    add_subnet(api, a["id"], "192.168.1.0/24")
    add_subnet(api, b["id"], "192.168.2.0/24")
    base = {
        "name": "web",
        "protocol": "tcp",
        "local_ip": "192.168.1.10",
        "local_port": 80,
        "shared_ip": "10.0.5.7",
    }
    assert api.post(f"/api/peers/{a['id']}/services", json=base).status_code == 201
    before = count(app, Service)
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "shared_port": 8080}), 409, "name",
                 "already publishes a service named 'web'")  # fmt: skip
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "name": "web2"}), 409, "shared_port",
                 "10.0.5.7:80/tcp is already published by service 'web' of peer 'a'")  # fmt: skip
    assert_error(
        api.post(f"/api/peers/{b['id']}/services", json={**base, "local_ip": "192.168.2.10", "shared_port": 81}),
        409, "shared_ip", "Shared IP 10.0.5.7 already belongs to service 'web' of peer 'a'",
    )  # fmt: skip
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "name": "x", "local_ip": "192.168.9.1"}),
                 422, "local_ip", "add the LAN under Local Networks first")  # fmt: skip
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "name": "x", "shared_ip": "10.0.6.1"}),
                 422, "shared_ip", "outside the services range 10.0.5.0/24")  # fmt: skip
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "name": "x", "protocol": "icmp"}),
                 422, "protocol")  # fmt: skip
    assert_error(api.post(f"/api/peers/{a['id']}/services", json={**base, "name": "x", "local_port": 0}),
                 422, "local_port")  # fmt: skip
    assert count(app, Service) == before


# --- auth, malformed requests, missing ids ------------------------------------------------------


@pytest.fixture
def network(api: Any) -> dict[str, int]:
    wan = make_wan(api)
    peer = make_peer(api, wan["id"], "p")
    sub = add_subnet(api, peer["id"], "192.168.1.0/24").get_json()
    svc = api.post(f"/api/peers/{peer['id']}/services", json={"name": "web", "protocol": "tcp",
                                                              "local_ip": "192.168.1.10", "local_port": 80})  # fmt: skip
    return {"wan": wan["id"], "peer": peer["id"], "subnet": sub["id"], "service": svc.get_json()["id"]}


def _writes(ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any] | None]]:
    w, p, s, v = ids["wan"], ids["peer"], ids["subnet"], ids["service"]
    return [
        ("post", "/api/wan", {"name": "new"}),
        ("patch", f"/api/wan/{w}", {"mtu": 1400}),
        ("delete", f"/api/wan/{w}", None),
        ("post", f"/api/peers/wan/{w}", {"name": "q", "kind": "server"}),
        ("patch", f"/api/peers/{p}", {"name": "renamed"}),
        ("delete", f"/api/peers/{p}", None),
        ("post", f"/api/peers/{p}/subnets", {"cidr": "192.168.2.0/24"}),
        ("put", f"/api/peers/{p}/subnets/{s}", {"routed": False}),
        ("delete", f"/api/peers/{p}/subnets/{s}", None),
        (
            "post",
            f"/api/peers/{p}/services",
            {"name": "ssh", "protocol": "tcp", "local_ip": "192.168.1.2", "local_port": 22},
        ),  # fmt: skip
        ("delete", f"/api/peers/{p}/services/{v}", None),
    ]


def _reads(ids: dict[str, int]) -> list[str]:
    w, p = ids["wan"], ids["peer"]
    return ["/api/wan", f"/api/wan/{w}", f"/api/wan/{w}/conflicts", f"/api/peers/wan/{w}", f"/api/peers/{p}"]


def _snapshot(app: Flask) -> tuple[int, ...]:
    return tuple(count(app, m) for m in (Wan, Peer, Subnet, Service))


def test_viewer_may_read_but_not_write(app: Flask, client: Any, network: dict[str, int]) -> None:
    make_user(app, "viewer@example.com", "viewer")
    headers = {"Authorization": f"Bearer {make_token(app, 'viewer@example.com')}"}
    for url in _reads(network):
        assert client.get(url, headers=headers).status_code == 200, url
    before = _snapshot(app)
    for method, url, body in _writes(network):
        resp = getattr(client, method)(url, json=body, headers=headers)
        assert_error(resp, 403, None, "read-only")
    assert _snapshot(app) == before


def test_no_or_bad_token_is_401(app: Flask, client: Any, network: dict[str, int]) -> None:
    before = _snapshot(app)
    for headers in (
        {},
        {"Authorization": "Bearer ww_not-a-real-token"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
    ):
        for url in _reads(network):
            assert_error(client.get(url, headers=headers), 401, None, "Bearer")
        for method, url, body in _writes(network):
            assert_error(getattr(client, method)(url, json=body, headers=headers), 401)
    assert _snapshot(app) == before


@pytest.mark.parametrize(
    ("method", "url_key", "body"),
    [
        ("post", "wans", {"name": "x", "colour": "red"}),
        ("patch", "wan", {"mtu": 1400, "MTU": 1400}),
        ("post", "peers", {"name": "x", "kind": "server", "private_key": "abc"}),
        ("post", "peers", {"name": "x", "kind": "mikrotik", "mikrotik": {"host": "h", "passwd": "x"}}),
        ("patch", "peer", {"subnets": []}),
        ("post", "subnets", {"cidr": "192.168.2.0/24", "nat_cidr": "172.16.0.0/24"}),
        ("put", "subnet", {"routed": True, "cidr": "192.168.3.0/24"}),
        (
            "post",
            "services",
            {"name": "s", "protocol": "tcp", "local_ip": "192.168.1.3", "local_port": 1, "owner": "me"},
        ),  # fmt: skip
    ],
)
def test_unknown_field_is_400(
    api: Any, app: Flask, network: dict[str, int], method: str, url_key: str, body: dict[str, Any]
) -> None:
    urls = {
        "wans": "/api/wan",
        "wan": f"/api/wan/{network['wan']}",
        "peers": f"/api/peers/wan/{network['wan']}",
        "peer": f"/api/peers/{network['peer']}",
        "subnets": f"/api/peers/{network['peer']}/subnets",
        "subnet": f"/api/peers/{network['peer']}/subnets/{network['subnet']}",
        "services": f"/api/peers/{network['peer']}/services",
    }
    before = _snapshot(app)
    body_json = assert_error(getattr(api, method)(urls[url_key], json=body), 400, None, "Unknown field")
    assert body_json["error"] == "malformed"
    assert _snapshot(app) == before


def test_invalid_json_is_400(api: Any, app: Flask, network: dict[str, int]) -> None:
    before = _snapshot(app)
    p = network["peer"]
    for method, url in [("post", "/api/wan"), ("patch", f"/api/wan/{network['wan']}"),
                        ("post", f"/api/peers/wan/{network['wan']}"), ("patch", f"/api/peers/{p}"),
                        ("post", f"/api/peers/{p}/subnets"), ("put", f"/api/peers/{p}/subnets/{network['subnet']}"),
                        ("post", f"/api/peers/{p}/services")]:  # fmt: skip
        for raw in ('{"name": "x",', "not json", "\x00\x01", '{"name": "x"}}'):
            resp = getattr(api, method)(url, data=raw, headers={"Content-Type": "application/json"})
            assert_error(resp, 400, None, "not valid JSON")
        for raw in ("[]", '"name"', "42", "null"):
            resp = getattr(api, method)(url, data=raw, headers={"Content-Type": "application/json"})
            assert resp.status_code == 400, (url, raw)
            assert resp.get_json()["error"] == "malformed"
        nested = getattr(api, method)(url, json={"mikrotik": "nope"})
        assert nested.status_code == 400
    assert _snapshot(app) == before


def test_missing_ids_are_404(api: Any, network: dict[str, int]) -> None:
    p, s, v = network["peer"], network["subnet"], network["service"]
    for method, url, body in [
        ("get", "/api/wan/999", None),
        ("patch", "/api/wan/999", {"mtu": 1400}),
        ("delete", "/api/wan/999", None),
        ("get", "/api/wan/999/conflicts", None),
        ("get", "/api/peers/wan/999", None),
        ("post", "/api/peers/wan/999", {"name": "x", "kind": "server"}),
        ("get", "/api/peers/999", None),
        ("patch", "/api/peers/999", {"name": "x"}),
        ("delete", "/api/peers/999", None),
        ("post", "/api/peers/999/subnets", {"cidr": "192.168.5.0/24"}),
        ("put", f"/api/peers/{p}/subnets/999", {"routed": False}),
        ("put", f"/api/peers/999/subnets/{s}", {"routed": False}),
        ("delete", f"/api/peers/{p}/subnets/999", None),
        (
            "post",
            "/api/peers/999/services",
            {"name": "x", "protocol": "tcp", "local_ip": "10.0.0.1", "local_port": 1},
        ),
        ("delete", f"/api/peers/{p}/services/999", None),
        ("delete", f"/api/peers/999/services/{v}", None),
    ]:
        resp = getattr(api, method)(url, json=body)
        assert_error(resp, 404)
        assert resp.get_json()["error"] == "not_found", url


# --- audit -------------------------------------------------------------------------------------


def test_audit_entries_for_every_change_without_secrets(api: Any, app: Flask) -> None:
    wan = make_wan(api)
    gw = make_peer(api, wan["id"], "gw", kind="mikrotik",
                   mikrotik={"host": "192.168.88.1", "password": ROUTER_PASSWORD})  # fmt: skip
    api.patch(f"/api/wan/{wan['id']}", json={"mtu": 1400})
    api.patch(
        f"/api/peers/{gw['id']}",
        json={"endpoint": "gw.example.com", "mikrotik": {"password": "new" + ROUTER_PASSWORD}},
    )
    sub = add_subnet(api, gw["id"], "192.168.88.0/24").get_json()
    api.put(f"/api/peers/{gw['id']}/subnets/{sub['id']}", json={"routed": False})
    svc = api.post(f"/api/peers/{gw['id']}/services", json={"name": "web", "protocol": "tcp",
                                                             "local_ip": "192.168.88.10", "local_port": 80}).get_json()  # fmt: skip
    api.delete(f"/api/peers/{gw['id']}/services/{svc['id']}")
    api.delete(f"/api/peers/{gw['id']}/subnets/{sub['id']}")
    secrets = stored_secrets(app) + [ROUTER_PASSWORD]
    api.delete(f"/api/peers/{gw['id']}")
    api.delete(f"/api/wan/{wan['id']}")

    with app.app_context():
        network_types = ("wan", "peer", "subnet", "service")
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.object_type.in_(network_types)).order_by(AuditEntry.id)
        ).all()
        trail = [(e.action, e.object_type) for e in entries]
        assert trail == [
            ("create", "wan"), ("create", "peer"), ("update", "wan"), ("update", "peer"),
            ("create", "subnet"), ("update", "subnet"), ("create", "service"), ("delete", "service"),
            ("delete", "subnet"), ("delete", "peer"), ("delete", "wan"),
        ]  # fmt: skip
        for entry in entries:
            assert entry.actor == "op@example.com"
            assert entry.user_id is not None
            assert entry.wan_id == wan["id"]
            dump = entry.summary + json.dumps(entry.details, default=str)
            for secret in secrets:
                assert secret not in dump
                assert json.dumps(secret)[1:-1] not in dump
        by_kind = {(e.action, e.object_type): e for e in entries}
        assert "mtu" in by_kind[("update", "wan")].summary
        assert by_kind[("update", "wan")].details["mtu"] == {"before": 1420, "after": 1400}
        assert "gw" in by_kind[("create", "peer")].summary and "10.0.0.1" in by_kind[("create", "peer")].summary
        assert "192.168.88.0/24" in by_kind[("create", "subnet")].summary


@pytest.mark.parametrize("url", ["/api/peers/2147483648", "/api/wan/99999999999", "/api/jobs/2147483648"])
def test_ids_beyond_an_integer_column_are_404(api, url):
    # PostgreSQL's INTEGER is 32-bit: binding a larger id was a 500 there.
    resp = api.get(url)
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"


def test_page_ids_beyond_an_integer_column_are_404(admin_browser):
    assert admin_browser.get("/peers/2147483648").status_code == 404
    assert admin_browser.get("/wans/2147483648/audit").status_code == 404
