"""Menu semantics over librouteros, as the deployer will use them."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from librouteros.exceptions import MultiTrapError, TrapError
from librouteros.query import Key

from . import testing
from .server import SimRouter

# Shared fixtures (no conftest on purpose; see testing.py).
api = testing.api
sim = testing.sim

DROP_COMMENT = "defconf: drop all not coming from LAN"
PEER_KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PEER_KEY2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="


def keypair() -> tuple[str, str]:
    key = X25519PrivateKey.generate()
    priv = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(priv).decode(), base64.b64encode(pub).decode()


def comments(api: Any, *path: str) -> list[str]:
    return [str(r.get("comment", "")) for r in api.path(*path)]


# ---------------------------------------------------------------- add / set / remove


def test_add_set_remove_by_id_and_comma_list(api: Any) -> None:
    routes = api.path("ip", "route")
    a = routes.add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge", "comment": "a"})
    b = routes.add(**{"dst-address": "10.2.0.0/16", "gateway": "bridge", "comment": "b"})
    assert a.startswith("*") and a != b
    routes.update(**{".id": f"{a},{b}", "distance": 5})
    assert {r["comment"]: r["distance"] for r in routes if r.get("comment")} == {"a": 5, "b": 5}
    routes.remove(a, b)
    assert not [r for r in routes if r.get("comment")]


def test_ids_must_exist_and_bare_numbers_are_rejected(api: Any) -> None:
    routes = api.path("ip", "route")
    with pytest.raises(TrapError, match="no such item"):
        routes.update(**{".id": "*FFFF", "distance": 2})
    with pytest.raises(TrapError, match="no such item"):
        routes.remove("0")
    with pytest.raises(TrapError, match="missing =.id="):
        routes.update(distance=2)


def test_names_work_as_ids_where_routeros_allows(api: Any) -> None:
    api.path("interface").update(**{".id": "ether5", "comment": "spare"})
    assert next(r for r in api.path("interface") if r["name"] == "ether5")["comment"] == "spare"
    api.path("user").add(name="tmp", password="x", group="read")
    api.path("user").remove("tmp")
    assert [u["name"] for u in api.path("user")] == ["admin"]


def test_unknown_and_read_only_parameters_trapped(api: Any) -> None:
    wg = api.path("interface", "wireguard")
    with pytest.raises(TrapError, match="unknown parameter colour"):
        wg.add(name="wg0", colour="blue")
    with pytest.raises(TrapError, match="unknown parameter public-key"):
        wg.add(name="wg0", **{"public-key": PEER_KEY})
    with pytest.raises(TrapError, match="unknown parameter running"):
        wg.add(name="wg0", running=True)
    with pytest.raises(TrapError, match="invalid value for argument listen-port") as err:
        wg.add(name="wg0", **{"listen-port": 70000})
    assert err.value.category == 1
    assert list(wg) == []  # nothing was half-created


def test_booleans_accept_yes_no_true_false(api: Any) -> None:
    routes = api.path("ip", "route")
    rid = routes.add(**{"dst-address": "10.5.0.0/16", "gateway": "bridge", "disabled": "yes"})
    assert next(r for r in routes if r[".id"] == rid)["disabled"] is True
    routes.update(**{".id": rid, "disabled": "false"})
    assert next(r for r in routes if r[".id"] == rid)["disabled"] is False
    with pytest.raises(TrapError, match="invalid value for argument disabled"):
        routes.update(**{".id": rid, "disabled": "maybe"})


def test_singletons_print_without_id_and_set_without_id(api: Any) -> None:
    res = next(iter(api.path("system", "resource")))
    assert ".id" not in res and str(res["version"]).startswith("7.16.2")
    tuple(api("/system/identity/set", name="edge-1"))
    assert list(api.path("system", "identity")) == [{"name": "edge-1"}]


# ---------------------------------------------------------------- firewall order


def test_place_before_defconf_drop(api: Any) -> None:
    filt = api.path("ip", "firewall", "filter")
    drop_id = next(r[".id"] for r in filt.select(Key(".id")).where(Key("comment") == DROP_COMMENT))
    filt.add(
        chain="input",
        action="accept",
        protocol="udp",
        **{"dst-port": "51820", "comment": "wg", "place-before": drop_id},
    )
    order = comments(api, "ip", "firewall", "filter")
    assert order.index("wg") == order.index(DROP_COMMENT) - 1
    filt.add(chain="input", action="accept", comment="last")
    assert comments(api, "ip", "firewall", "filter")[-1] == "last"


def test_fasttrack_dummy_is_first_and_protected(api: Any) -> None:
    filt = api.path("ip", "firewall", "filter")
    first = next(iter(filt))
    assert first["dynamic"] is True and first["comment"] == "special dummy rule to show fasttrack counters"
    with pytest.raises(TrapError, match="dynamic"):
        filt.add(chain="forward", action="accept", **{"place-before": first[".id"]})
    with pytest.raises(TrapError, match="dynamic"):
        filt.remove(first[".id"])
    with pytest.raises(TrapError, match="dynamic"):
        filt.update(**{".id": first[".id"], "comment": "x"})


def test_move_numbers_destination(api: Any) -> None:
    nat = api.path("ip", "firewall", "nat")
    masq = next(iter(nat))[".id"]
    a = nat.add(chain="srcnat", action="accept", comment="a", **{"dst-address": "10.0.0.0/8"})
    tuple(api("/ip/firewall/nat/move", numbers=a, destination=masq))
    assert comments(api, "ip", "firewall", "nat") == ["a", "defconf: masquerade"]
    tuple(api("/ip/firewall/nat/move", numbers=a))  # no destination: to the end
    assert comments(api, "ip", "firewall", "nat") == ["defconf: masquerade", "a"]
    with pytest.raises(MultiTrapError, match="no such command"):
        tuple(api("/ip/route/move", numbers="*1"))  # routes have no order


def test_firewall_references_must_exist(api: Any) -> None:
    filt = api.path("ip", "firewall", "filter")
    with pytest.raises(TrapError, match="input does not match any value of in-interface"):
        filt.add(chain="input", action="accept", **{"in-interface": "wg-missing"})
    with pytest.raises(TrapError, match="input does not match any value of in-interface-list"):
        filt.add(chain="input", action="drop", **{"in-interface-list": "!NOPE"})
    with pytest.raises(TrapError, match="dst-port"):
        filt.add(chain="input", action="accept", **{"dst-port": "51820"})


# ---------------------------------------------------------------- addresses and routes


def test_address_creates_and_removes_dynamic_connected_route(api: Any) -> None:
    addresses, routes = api.path("ip", "address"), api.path("ip", "route")
    aid = addresses.add(address="10.10.0.1/24", interface="ether2")
    conn = [r for r in routes if r["dst-address"] == "10.10.0.0/24"]
    assert len(conn) == 1
    assert conn[0]["dynamic"] is True and conn[0]["connect"] is True and conn[0]["active"] is True
    assert conn[0]["distance"] == 0 and conn[0]["gateway"] == "ether2"
    assert next(a for a in addresses if a[".id"] == aid)["network"] == "10.10.0.0"
    with pytest.raises(TrapError, match="dynamic"):
        routes.remove(conn[0][".id"])
    addresses.remove(aid)
    assert not [r for r in routes if r["dst-address"] == "10.10.0.0/24"]


def test_address_errors(api: Any) -> None:
    addresses = api.path("ip", "address")
    with pytest.raises(TrapError, match="input does not match any value of interface"):
        addresses.add(address="10.10.0.1/24", interface="nope")
    with pytest.raises(TrapError, match="already have such address"):
        addresses.add(address="192.168.88.1/24", interface="bridge")


def test_route_active_is_best_distance(api: Any) -> None:
    routes = api.path("ip", "route")
    low = routes.add(**{"dst-address": "192.168.1.0/24", "gateway": "192.168.88.254"})
    high = routes.add(**{"dst-address": "192.168.1.0/24", "gateway": "bridge", "distance": 10})

    def state() -> dict[str, tuple[Any, Any]]:
        return {r[".id"]: (r["active"], r["distance"]) for r in routes if r[".id"] in (low, high)}

    assert state() == {low: (True, 1), high: (False, 10)}  # distance defaults to 1
    routes.update(**{".id": low, "distance": 11})  # the deployer's route demotion
    assert state() == {low: (False, 11), high: (True, 10)}
    routes.update(**{".id": low, "distance": 1, "disabled": True})
    assert state() == {low: (False, 1), high: (True, 10)}
    unreachable = routes.add(**{"dst-address": "172.16.0.0/12", "gateway": "10.200.0.1"})
    row = next(r for r in routes if r[".id"] == unreachable)
    assert row["active"] is False and row["inactive"] is True and row["static"] is True


def test_route_dst_is_normalised_to_network(api: Any) -> None:
    rid = api.path("ip", "route").add(**{"dst-address": "10.1.2.3/16", "gateway": "bridge"})
    assert next(r for r in api.path("ip", "route") if r[".id"] == rid)["dst-address"] == "10.1.0.0/16"


# ---------------------------------------------------------------- wireguard


def test_wireguard_generated_key_and_derived_public_key(api: Any) -> None:
    wg = api.path("interface", "wireguard")
    wg.add(name="wg0")
    priv, pub = keypair()
    wg.add(name="wg1", **{"private-key": priv, "listen-port": 51820})
    rows = {r["name"]: r for r in wg}
    assert rows["wg0"]["listen-port"] == 13231 and rows["wg0"]["mtu"] == 1420
    generated = X25519PrivateKey.from_private_bytes(base64.b64decode(str(rows["wg0"]["private-key"])))
    assert (
        rows["wg0"]["public-key"]
        == base64.b64encode(generated.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    )
    assert rows["wg1"]["public-key"] == pub
    # It is an interface too, sharing the .id.
    iface = next(r for r in api.path("interface") if r["name"] == "wg1")
    assert iface["type"] == "wg" and iface[".id"] == rows["wg1"][".id"]


def test_wireguard_unique_name_and_port(api: Any) -> None:
    wg = api.path("interface", "wireguard")
    wg.add(name="wg0", **{"listen-port": 51820})
    with pytest.raises(TrapError, match="already have interface with such name"):
        wg.add(name="wg0", **{"listen-port": 51821})
    with pytest.raises(TrapError, match="already have interface with such name"):
        wg.add(name="ether1")
    with pytest.raises(TrapError, match="already have"):
        wg.add(name="wg1", **{"listen-port": 51820})
    with pytest.raises(TrapError, match="invalid value for argument private-key"):
        wg.add(name="wg2", **{"private-key": "c2hvcnQ="})


def test_rename_via_interface_menu_follows_references(api: Any) -> None:
    api.path("interface", "wireguard").add(name="wg0")
    api.path("ip", "address").add(address="10.8.0.1/24", interface="wg0")
    api.path("interface").update(**{".id": "wg0", "name": "wg-overlay"})
    assert [r["name"] for r in api.path("interface", "wireguard")] == ["wg-overlay"]
    assert next(a for a in api.path("ip", "address") if a["address"] == "10.8.0.1/24")["interface"] == "wg-overlay"


def test_peers(api: Any) -> None:
    api.path("interface", "wireguard").add(name="wg0")
    api.path("interface", "wireguard").add(name="wg1")
    peers = api.path("interface", "wireguard", "peers")
    with pytest.raises(TrapError, match="input does not match any value of interface"):
        peers.add(interface="nope", **{"public-key": PEER_KEY, "allowed-address": "10.0.0.2/32"})
    pid = peers.add(
        interface="wg0",
        **{
            "public-key": PEER_KEY,
            "allowed-address": "10.0.0.2/32,192.168.5.0/24",
            "persistent-keepalive": 25,
        },
    )
    with pytest.raises(TrapError, match="already have"):
        peers.add(interface="wg0", **{"public-key": PEER_KEY, "allowed-address": "10.0.0.3/32"})
    peers.add(interface="wg1", **{"public-key": PEER_KEY, "allowed-address": "10.0.0.2/32"})  # other interface: ok
    with pytest.raises(TrapError, match="missing value"):
        peers.add(interface="wg0", **{"public-key": PEER_KEY2})
    row = next(r for r in peers if r[".id"] == pid)
    assert row["persistent-keepalive"] == "25s" and row["allowed-address"] == "10.0.0.2/32,192.168.5.0/24"
    peers.update(**{".id": pid, "persistent-keepalive": 123})
    assert next(r for r in peers if r[".id"] == pid)["persistent-keepalive"] == "2m3s"
    with pytest.raises(TrapError, match="unknown parameter last-handshake"):
        peers.update(**{".id": pid, "last-handshake": "1s"})


def test_handshake_model(sim: SimRouter, api: Any) -> None:
    api.path("interface", "wireguard").add(name="wg0")
    peers = api.path("interface", "wireguard", "peers")
    peers.add(
        interface="wg0",
        **{
            "public-key": PEER_KEY,
            "allowed-address": "10.0.0.2/32",
            "endpoint-address": "198.51.100.7",
            "endpoint-port": 51820,
        },
    )
    peers.add(interface="wg0", **{"public-key": PEER_KEY2, "allowed-address": "10.0.0.3/32"})

    def by_key() -> dict[str, dict[str, Any]]:
        return {str(r["public-key"]): r for r in peers}

    before = by_key()[PEER_KEY]
    assert "last-handshake" not in before and before["rx"] == 0 and "current-endpoint-address" not in before
    sim.set_handshake(PEER_KEY, seconds_ago=89)
    row = by_key()[PEER_KEY]
    assert row["last-handshake"] == "1m29s" and row["rx"] == 148 and row["tx"] == 92
    assert row["current-endpoint-address"] == "198.51.100.7" and row["current-endpoint-port"] == 51820
    sim.advance(3600)
    assert by_key()[PEER_KEY]["last-handshake"] == "1h1m29s"
    # A peer without endpoint handshakes when the remote initiates: the test says from where.
    sim.set_handshake(PEER_KEY2, 2, endpoint_address="203.0.113.50", endpoint_port=40000, rx=1000, tx=2000)
    row2 = by_key()[PEER_KEY2]
    assert (row2["current-endpoint-address"], row2["current-endpoint-port"], row2["rx"]) == (
        "203.0.113.50",
        40000,
        1000,
    )
    # A disabled peer shows no handshake.
    peers.update(**{".id": str(row2[".id"]), "disabled": True})
    assert "last-handshake" not in by_key()[PEER_KEY2]
    sim.clear_handshake(PEER_KEY)
    assert "last-handshake" not in by_key()[PEER_KEY]
    sim.auto_handshake = True  # peers with an endpoint have an established session (90 s old)
    assert by_key()[PEER_KEY]["last-handshake"] == "1m30s"
    assert "last-handshake" not in by_key()[PEER_KEY2]


def test_auto_handshake_new_and_rekeyed_entries_handshake_at_once_others_keep_their_session(api, sim):
    """WireGuard: an added or re-keyed entry handshakes at once; any other set keeps the session."""
    sim.auto_handshake = True
    api.path("/interface/wireguard").add(name="wg0", **{"listen-port": 13231})
    peers = api.path("/interface/wireguard/peers")
    pid = peers.add(
        interface="wg0",
        **{
            "public-key": PEER_KEY,
            "allowed-address": "10.0.0.2/32",
            "endpoint-address": "198.51.100.7",
            "endpoint-port": 51820,
        },
    )

    def row() -> dict[str, Any]:
        return next(r for r in peers if r[".id"] == pid)

    assert row()["last-handshake"] == "0s"  # new entry: a handshake newer than the change
    sim.advance(100)
    peers.update(**{".id": pid, "endpoint-address": "198.51.100.8", "allowed-address": "10.0.0.9/32"})
    assert row()["last-handshake"] == "1m40s"  # roamed: same session, no new handshake
    peers.update(**{".id": pid, "public-key": PEER_KEY2})
    assert row()["last-handshake"] == "0s"  # re-keyed: a new session at once


# ---------------------------------------------------------------- version gating


@pytest.mark.parametrize(
    ("version", "accepted", "rejected"),
    [
        ("7.11", [], ["client-address", "name", "responder", "is-responder"]),
        ("7.12", ["client-address", "client-keepalive"], ["name", "is-responder", "responder"]),
        ("7.16.2", ["name", "is-responder"], ["responder", "client-allowed-address"]),
        ("7.21", ["responder", "client-allowed-address"], ["is-responder"]),
    ],
)
def test_version_gated_peer_properties(version: str, accepted: list[str], rejected: list[str]) -> None:
    values = {
        "client-address": "10.0.0.2/32",
        "client-keepalive": "25",
        "name": "laptop",
        "is-responder": "yes",
        "responder": "yes",
        "client-allowed-address": "0.0.0.0/0",
    }
    with SimRouter(password="p", version=version) as sim:
        conn = sim.connect(password="p")
        try:
            conn.path("interface", "wireguard").add(name="wg0")
            peers = conn.path("interface", "wireguard", "peers")
            base = {"interface": "wg0", "allowed-address": "10.0.0.2/32"}
            for n, prop in enumerate(accepted):
                key = base64.b64encode(bytes([n + 1]) * 32).decode()
                pid = peers.add(
                    interface="wg0",
                    **{"allowed-address": f"10.1.0.{n}/32", "public-key": key, prop: values[prop]},
                )
                assert prop in next(r for r in peers if r[".id"] == pid)
            for prop in rejected:
                with pytest.raises(TrapError, match=f"unknown parameter {prop}"):
                    peers.add(**base, **{"public-key": PEER_KEY, prop: values[prop]})
        finally:
            conn.close()


# ---------------------------------------------------------------- small menus


def test_interface_lists_members_users_files_scheduler(api: Any) -> None:
    members = {(m["list"], m["interface"]) for m in api.path("interface", "list", "member")}
    assert members == {("LAN", "bridge"), ("WAN", "ether1")}
    with pytest.raises(TrapError, match="already have"):
        api.path("interface", "list", "member").add(list="LAN", interface="bridge")
    with pytest.raises(TrapError, match="input does not match any value of group"):
        api.path("user").add(name="x", password="y", group="nogroup")
    api.path("file").add(name="a.rsc", contents=":put 1")
    f = next(iter(api.path("file")))
    assert (f["name"], f["type"], f["size"], f["contents"]) == ("a.rsc", "script", 6, ":put 1")
    sched = api.path("system", "scheduler")
    sid = sched.add(name="rb", interval="5m", **{"on-event": ":log info x"})
    row = next(iter(sched))
    assert (row["interval"], row["run-count"], row["next-run"]) == ("5m", 0, "5m from now")
    sched.remove(sid)
    assert list(sched) == []
    api.path("system", "script").add(name="s1", source=":put 1")
    assert [s["name"] for s in api.path("system", "script")] == ["s1"]


def test_enable_disable_unset(api: Any) -> None:
    routes = api.path("ip", "route")
    rid = routes.add(**{"dst-address": "10.3.0.0/16", "gateway": "bridge", "comment": "tmp"})
    tuple(api("/ip/route/disable", **{".id": rid}))
    assert next(r for r in routes if r[".id"] == rid)["disabled"] is True
    tuple(api("/ip/route/enable", **{".id": rid}))
    tuple(api("/ip/route/unset", **{".id": rid, "value-name": "comment"}))
    row = next(r for r in routes if r[".id"] == rid)
    assert row["disabled"] is False and "comment" not in row
    with pytest.raises(TrapError, match="unknown parameter active"):
        tuple(api("/ip/route/unset", **{".id": rid, "value-name": "active"}))
