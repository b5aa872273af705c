"""Long WANs (issue 13): adding a peer or a subnet reads what the rules need, not the WAN; the WAN
page reads what it shows; "Mark all applied" states what it will mark."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from app.domain import conflicts
from app.domain.errors import DomainError
from app.extensions import db
from app.models import Peer
from app.services import subnets
from app.services.specs import load_spec
from tests.web.test_api_network import add_subnet, make_peer, make_wan
from tests.web.test_peer_lists import CSV

# The only read that grows with the WAN: the taken tunnel IPs, one integer per peer from an index.
TAKEN_TUNNEL_IPS = "peer.tunnel_ip_num FROM peer"


@contextmanager
def reads(app: Flask) -> Iterator[list[tuple[str, int]]]:
    """Every SELECT the session runs inside the block, with the number of rows it returned."""
    seen: list[tuple[str, int]] = []

    def count_rows(state: Any) -> Any:
        if not state.is_select:
            return None
        frozen = state.invoke_statement().freeze()
        seen.append((" ".join(str(state.statement).split()), len(frozen().all())))
        return frozen()

    event.listen(db.session, "do_orm_execute", count_rows)
    try:
        yield seen
    finally:
        event.remove(db.session, "do_orm_execute", count_rows)


def long_wan(api: Any, peers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A hub_spoke WAN of `peers` + 1 peers, each with a LAN, and a common home LAN Auto-NAT'd on
    every third one (the shape of bench/scale.py's WAN)."""
    wan = make_wan(api, f"w{peers}", tunnel_cidr="10.0.0.0/20", services_cidr="10.1.5.0/24", topology="hub_spoke")
    hub = make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.1")
    table = "\n".join(f"p{i:04d},server,,10.{100 + i // 256}.{i % 256}.0/24" for i in range(peers))
    resp = api.post(f"/api/peers/wan/{wan['id']}/import", data="name,kind,endpoint,lans\n" + table, content_type=CSV)
    assert resp.status_code == 201, resp.get_json()
    for spoke in resp.get_json()[::3]:
        assert add_subnet(api, spoke["id"], "192.168.1.0/24", auto_nat=True).status_code == 201
    return wan, hub


def rows_read(app: Flask, api: Any, wan: dict[str, Any], hub: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    out = {}
    with app.app_context(), reads(app) as seen:
        created = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "new", "kind": "server"})
        assert created.status_code == 201
    out["add peer"] = seen
    with app.app_context(), reads(app) as seen:
        assert add_subnet(api, hub["id"], "10.200.1.0/24").status_code == 201
    out["add subnet"] = seen
    with app.app_context(), reads(app) as seen:
        resp = add_subnet(api, hub["id"], "192.168.1.0/24", auto_nat=True)
        assert resp.status_code == 201 and resp.get_json()["nat_cidr"]
    out["add subnet, overlap"] = seen
    with app.app_context(), reads(app) as seen:
        resp = add_subnet(api, hub["id"], "10.100.0.128/25")  # inside spoke p0000's LAN
        assert resp.status_code == 409 and "p0000" in resp.get_json()["message"]
    out["refused subnet"] = seen
    with app.app_context(), reads(app) as seen:
        # Every third spoke and the hub route a 192.168.1.0/24 (one plainly, the others NAT'd).
        resp = add_subnet(api, created.get_json()["id"], "192.168.1.0/25")
        assert resp.status_code == 409 and " other routed subnets" in resp.get_json()["message"]
    out["refused, overlapping many"] = seen
    return out


def test_adding_a_peer_or_a_subnet_reads_the_same_whatever_the_wan_size(app: Flask, api: Any) -> None:
    small = rows_read(app, api, *long_wan(api, 6))
    large = rows_read(app, api, *long_wan(api, 60))
    for what in ("add peer", "add subnet", "refused subnet", "refused, overlapping many"):
        assert [sql for sql, _ in small[what]] == [sql for sql, _ in large[what]], what
        assert len(large[what]) <= 16, large[what]
        sized = [(sql, n) for sql, n in large[what] if TAKEN_TUNNEL_IPS not in sql]
        assert sized == [(sql, n) for sql, n in small[what] if TAKEN_TUNNEL_IPS not in sql], what
    # An overlap reads the first clash and counts the rest; an Auto-NAT also reads what the new block
    # must avoid, the NAT pool's blocks (one integer pair each): one row per NAT'd home LAN the
    # larger WAN has more (18), and nothing else of the WAN.
    assert [sql for sql, _ in small["add subnet, overlap"]] == [sql for sql, _ in large["add subnet, overlap"]]
    grown = sum(n for _, n in large["add subnet, overlap"]) - sum(n for _, n in small["add subnet, overlap"])
    assert grown == (60 - 6) // 3


CANDIDATES = [
    "10.100.0.0/24",  # a spoke's LAN
    "10.100.0.0/16",  # a supernet of many spokes' LANs
    "10.100.0.128/25",  # inside one
    "192.168.1.0/24",  # the home LAN: plain on one peer, NAT'd on the others
    "192.168.0.0/16",
    "172.16.0.0/24",  # the NAT pool (the WAN's default 172.16.0.0/12)
    "172.16.0.0/12",
    "172.31.255.0/24",
    "0.0.0.0/0",
    "10.0.0.0/8",  # the tunnel and services ranges
    "10.0.0.64/26",
    "10.200.0.0/24",  # nothing
    "fd00:1::/64",
    "fd00::/8",
    "fd00:1:0:1::/64",
]


def _outcome(call: Any, *args: Any) -> tuple[str, Any]:
    try:
        decision = call(*args)
    except DomainError as exc:
        return ("refused", (type(exc).__name__, str(exc), exc.field, getattr(exc, "details", None)))
    return ("ok", (decision.nat_cidr, decision.notes))


@pytest.mark.parametrize("routed, auto_nat", [(True, False), (True, True), (False, False)])
def test_a_subnet_is_judged_as_on_the_whole_wan(app: Flask, api: Any, routed: bool, auto_nat: bool) -> None:
    """The targeted reads give the conflict rules exactly what the whole WAN gave them: the same
    decision, NAT block, notes and refusal, for prefixes that overlap nothing, one LAN, many LANs,
    NAT translations, the WAN's ranges, and IPv6 LANs."""
    wan, hub = long_wan(api, 12)
    spoke = api.get(f"/api/peers/wan/{wan['id']}?q=p0004").get_json()[0]
    for peer_id, cidr in ((spoke["id"], "fd00:1::/64"), (hub["id"], "fd00:1:0:1::/64"), (hub["id"], "10.99.0.0/24")):
        assert add_subnet(api, peer_id, cidr, auto_nat=True).status_code == 201
    with app.app_context():
        for who in (hub["id"], spoke["id"]):
            peer = db.session.get(Peer, who)
            assert peer is not None
            for text in CANDIDATES:
                whole = load_spec(wan["id"])
                assert whole is not None
                cidr = ip_network(text)
                expected = _outcome(conflicts.check_subnet, whole, who, cidr, routed, auto_nat)
                got = _outcome(lambda *args: subnets.check(*args).decision, peer, text, routed, auto_nat)
                assert got == expected, (who, text)


def test_ipv4_bounds_follow_the_prefix(app: Flask, api: Any) -> None:
    wan, hub = long_wan(api, 3)
    resp = add_subnet(api, hub["id"], "192.168.1.0/24", auto_nat=True)
    subnet_id = resp.get_json()["id"]
    with app.app_context():
        from app.models import Subnet

        row = db.session.execute(
            select(Subnet.cidr_first, Subnet.cidr_last, Subnet.nat_first, Subnet.nat_last).where(Subnet.id == subnet_id)
        ).one()
        nat = ip_network(resp.get_json()["nat_cidr"])
        assert tuple(row) == (0xC0A80100, 0xC0A801FF, int(nat.network_address), int(nat.broadcast_address))
    # NAT off clears the NAT bounds with the NAT prefix.
    off = api.put(f"/api/peers/{hub['id']}/subnets/{subnet_id}", json={"nat": False, "routed": False})
    assert off.status_code == 200, off.get_json()
    with app.app_context():
        assert db.session.execute(select(Subnet.nat_first, Subnet.nat_last).where(Subnet.id == subnet_id)).one() == (
            None,
            None,
        )


def test_mark_all_applied_confirms_the_wans_stale_count_not_the_pages(
    app: Flask, api: Any, operator_browser: Any
) -> None:
    wan, _ = long_wan(api, 70)
    page = operator_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    assert page.count('<tr id="peer-') == 50
    assert "Mark all 71 peers of this WAN, not applied or stale, as running their current config?" in page
    resp = operator_browser.post(f"/wans/{wan['id']}/mark-applied")
    assert resp.status_code == 303
    assert "71 peers marked" in operator_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    # A new spoke: it and the hub are stale. A search showing neither still counts both.
    assert api.post(f"/api/peers/wan/{wan['id']}", json={"name": "late", "kind": "server"}).status_code == 201
    stale = api.get(f"/api/peers/wan/{wan['id']}?stale=true&page=1").get_json()
    assert sorted(p["name"] for p in stale) == ["hub", "late"]
    page = operator_browser.get(f"/wans/{wan['id']}?q=p00").get_data(as_text=True)
    assert (
        "late" not in page
        and "Mark all 2 peers of this WAN, not applied or stale, as running their current config?" in page
    )


def test_wan_page_lists_the_first_findings_and_counts_the_rest(app: Flask, api: Any, operator_browser: Any) -> None:
    # One 192.168.1.0/24 is routed plainly; every peer hosting a NAT'd copy cannot reach it (its own
    # LAN shadows it): one finding per such peer, 56 here.
    wan, hub = long_wan(api, 165)
    assert add_subnet(api, hub["id"], "192.168.1.0/24", auto_nat=True).status_code == 201
    operator_browser.get(f"/wans/{wan['id']}")  # computes and caches the findings
    page = operator_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    everything = api.get(f"/api/wan/{wan['id']}/topology").get_json()["unreachable"]
    assert len(everything) > 50
    assert f'Unreachable prefixes <span class="badge badge-warning">{len(everything)}</span>' in page
    assert page.count('<span class="badge badge-warning">unreachable</span>') == 50
    assert f"The first 50 of {len(everything)} unreachable prefixes" in page
    # The cached findings go with their WAN.
    from app.models import WanFindings

    with app.app_context():
        assert db.session.get(WanFindings, wan["id"]) is not None
    assert api.delete(f"/api/wan/{wan['id']}").status_code == 204
    with app.app_context():
        assert db.session.get(WanFindings, wan["id"]) is None


def test_wan_page_names_the_router_that_saw_a_peer(app: Flask, api: Any, operator_browser: Any) -> None:
    from datetime import timedelta

    from app.models import PeerStatus
    from app.models.base import utcnow

    wan = make_wan(api)
    router = make_peer(api, wan["id"], "edge-router", kind="mikrotik", endpoint="203.0.113.1")
    laptop = make_peer(api, wan["id"], "laptop", kind="client")
    phone = make_peer(api, wan["id"], "phone", kind="client")
    with app.app_context():
        now = utcnow()
        db.session.add_all(
            [
                PeerStatus(peer_id=laptop["id"], online=True, source=f"router:{router['id']}", observed_at=now,
                           last_handshake_at=now - timedelta(seconds=20)),
                PeerStatus(peer_id=phone["id"], online=False, source="report", observed_at=now),
            ]
        )  # fmt: skip
        db.session.commit()
    page = operator_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    assert "seen by edge-router" in page and "reported" in page
