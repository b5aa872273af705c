"""print/getall: .proplist, the query stack, count-only, !empty and .tag."""

from __future__ import annotations

from typing import Any

import pytest
from librouteros.query import And, Key, Or

from . import testing
from .server import SimRouter
from .testing import RawClient

# Shared fixtures (no conftest on purpose; see testing.py).
api = testing.api
sim = testing.sim

ETHERS = ["ether1", "ether2", "ether3", "ether4", "ether5"]
ALL = [*ETHERS, "bridge", "wg0"]


@pytest.fixture
def iface_api(api: Any) -> Any:
    """Interfaces: ether1-5 (mtu 1500), bridge (comment defconf), wg0 (wg, mtu 1420, disabled)."""
    api.path("interface", "wireguard").add(name="wg0", disabled=True)
    return api


QUERY_TABLE: list[tuple[list[str], list[str]]] = [
    ([], ALL),
    (["?type=ether"], ETHERS),
    (["?=type=ether"], ETHERS),
    (["?comment"], ["bridge"]),
    (["?-comment"], [*ETHERS, "wg0"]),
    (["?>comment="], ["bridge"]),
    (["?type=ether", "?type=wg", "?#|"], [*ETHERS, "wg0"]),
    (["?type=ether", "?#!"], ["bridge", "wg0"]),
    (["?<mtu=1500"], ["wg0"]),
    (["?>mtu=1420"], [*ETHERS, "bridge"]),
    (["?disabled=yes"], ["wg0"]),
    (["?disabled=true"], ["wg0"]),
    (["?disabled=no", "?type=ether", "?#&"], ETHERS),
    (["?type=ether", "?name=bridge", "?#|", "?mtu=1500", "?#&"], [*ETHERS, "bridge"]),
    (["?type=ether", "?type=bridge", "?#1"], ETHERS),  # index at end: stack := copy of index 1
    (["?type=ether", "?type=bridge", "?#0."], []),  # push copy of top: ether & bridge & bridge
    (["?type=ether", "?#.!"], []),  # '.' pushes a copy of the top, '!' negates it
    (["?type=ether", "?type=bridge", "?#1|"], ETHERS),  # ether & (bridge | ether)
    (["?#|"], ALL),  # popping the empty stack yields true
    (["?name=nonexistent"], []),
    (["?-nonexistent"], ALL),
]


@pytest.mark.parametrize(("words", "expected"), QUERY_TABLE, ids=[" ".join(w) or "none" for w, _ in QUERY_TABLE])
def test_raw_query_semantics(iface_api: Any, words: list[str], expected: list[str]) -> None:
    rows = iface_api.rawCmd("/interface/print", "=.proplist=name", *words)
    assert [r["name"] for r in rows] == expected


LIBROUTEROS_TABLE: list[tuple[Any, list[str]]] = [
    (Key("name") == "bridge", ["bridge"]),
    (Key("type") != "ether", ["bridge", "wg0"]),
    (Key("type").In("bridge", "wg"), ["bridge", "wg0"]),
    (Key("name").In("ether1", "ether3", "wg0"), ["ether1", "ether3", "wg0"]),
    (And(Key("type") == "ether", Key("mtu") == 1500, Key("disabled") == False), ETHERS),  # noqa: E712
    (Or(Key("name") == "ether2", Key("disabled") == True), ["ether2", "wg0"]),  # noqa: E712
    (Key("mtu") < 1500, ["wg0"]),
    (Key("mtu") > 1420, [*ETHERS, "bridge"]),
]


@pytest.mark.parametrize(("query", "expected"), LIBROUTEROS_TABLE)
def test_librouteros_query_api(iface_api: Any, query: Any, expected: list[str]) -> None:
    rows = iface_api.path("interface").select(Key("name")).where(query)
    assert [r["name"] for r in rows] == expected


def test_proplist_limits_properties_and_empty_rows(sim: SimRouter, api: Any) -> None:
    rows = list(api.path("ip", "address").select(Key(".id"), Key("address")))
    assert rows and all(set(r) == {".id", "address"} for r in rows)
    with RawClient(sim) as c:
        c.login()
        # The dynamic WAN address has no comment: its row comes back empty.
        reply = c.call("/ip/address/print", "=.proplist=comment")
        assert reply == [["!re", "=comment=defconf"], ["!re"], ["!done"]]


def test_booleans_and_numbers_read_back_typed(api: Any) -> None:
    filt = api.path("ip", "firewall", "filter")
    row = next(iter(filt.select(Key("dynamic"), Key("log")).where(Key("dynamic") == True)))  # noqa: E712
    assert row == {"dynamic": True, "log": False}


def test_count_only(api: Any) -> None:
    assert tuple(api("/interface/print", **{"count-only": ""})) == ({"ret": 6},)
    reply = tuple(api.rawCmd("/interface/print", "=count-only=", "?type=ether"))
    assert reply == ({"ret": 5},)


def test_getall_is_print(api: Any) -> None:
    assert len(tuple(api("/ip/firewall/nat/getall"))) == 1


def test_unknown_print_parameter_trapped(api: Any) -> None:
    from librouteros.exceptions import TrapError

    with pytest.raises(TrapError, match="unknown parameter bogus"):
        tuple(api("/ip/route/print", bogus="x"))


@pytest.mark.parametrize(("version", "empty"), [("7.16.2", False), ("7.18", True), ("7.21.1", True)])
def test_empty_reply_from_7_18(version: str, empty: bool) -> None:
    with SimRouter(password="p", version=version) as sim, RawClient(sim) as c:
        c.login(password="p")
        reply = c.call("/ip/route/print", "?dst-address=10.9.9.0/24")
        assert reply == ([["!empty"], ["!done"]] if empty else [["!done"]])
        # Rows present: never !empty.
        assert c.call("/system/identity/print") == [["!re", "=name=MikroTik"], ["!done"]]


def test_tag_echoed_on_every_reply(sim: SimRouter) -> None:
    with RawClient(sim) as c:
        assert c.call("/login", "=name=admin", "=password=secret", ".tag=1") == [["!done", ".tag=1"]]
        rows = c.call("/ip/address/print", ".tag=t2", "=.proplist=address")
        assert all(s[-1] == ".tag=t2" for s in rows) and len(rows) == 3
        trap = c.call("/ip/address/add", "=address=bad", "=interface=bridge", ".tag=x")
        assert trap == [
            ["!trap", "=category=1", "=message=invalid value for argument address", ".tag=x"],
            ["!done", ".tag=x"],
        ]
        unknown = c.call("/nothing/here/print", ".tag=u")
        assert [s[0] for s in unknown] == ["!trap", "!trap", "!done"]
        assert all(s[-1] == ".tag=u" for s in unknown)
