"""Simultaneous creations never share an address (issue 3, "Tests").

Each thread is its own API client (its own request, app context and database session), all released
at once by a barrier. On SQLite the database is a file with a busy timeout; on PostgreSQL
(TEST_DATABASE_URL) each test has its own schema.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from ipaddress import ip_address, ip_network
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import Peer, Subnet


def _in_parallel(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 — reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


def _client(app: Flask, token: str) -> Callable[..., Any]:
    client = app.test_client()

    def call(method: str, url: str, **kw: Any) -> Any:
        return getattr(client, method)(url, headers={"Authorization": f"Bearer {token}"}, **kw)

    return call


def test_twenty_peers_added_at_once_get_twenty_distinct_addresses(app: Flask, api: Any, operator_token: str) -> None:
    wan = api.post("/api/wan", json={"name": "corp"}).get_json()

    def add(i: int) -> Any:
        resp = _client(app, operator_token)("post", f"/api/peers/wan/{wan['id']}",
                                            json={"name": f"peer{i:02d}", "kind": "server"})  # fmt: skip
        return resp.status_code, resp.get_json()

    results = _in_parallel(20, add)
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 201)]
    assert not failures, failures
    addresses = [body["tunnel_ip"] for _, body in results]
    assert len(set(addresses)) == 20
    # Lowest free first, so together they fill .1 to .20 exactly.
    assert sorted(addresses, key=ip_address) == [f"10.0.0.{n}" for n in range(1, 21)]

    listed = api.get(f"/api/peers/wan/{wan['id']}").get_json()
    assert sorted(p["name"] for p in listed) == [f"peer{i:02d}" for i in range(20)]
    with app.app_context():
        stored = db.session.scalars(select(Peer.tunnel_ip).where(Peer.wan_id == wan["id"])).all()
    assert sorted(stored, key=ip_address) == sorted(addresses, key=ip_address)
    assert api.get(f"/api/wan/{wan['id']}/conflicts").get_json() == []


def test_twenty_peers_through_the_service_layer(app: Flask) -> None:
    """The same race without HTTP: each thread its own app context and session."""
    from app.services import peers, wans
    from app.services.tx import commit_with_retry

    with app.app_context():
        wan_id = commit_with_retry(lambda: wans.create_wan({"name": "svc"})).id

    def add(i: int) -> str:
        with app.app_context():
            try:
                peer = commit_with_retry(
                    lambda: peers.create_peer(db.session.get(peers.Wan, wan_id), {"name": f"s{i}", "kind": "client"})
                )
                return peer.tunnel_ip
            finally:
                db.session.remove()

    results = _in_parallel(20, add)
    assert all(isinstance(r, str) for r in results), [r for r in results if not isinstance(r, str)]
    assert sorted(results, key=ip_address) == [f"10.0.0.{n}" for n in range(1, 21)]


def test_ten_auto_nats_at_once_get_distinct_nat_blocks(app: Flask, api: Any, operator_token: str) -> None:
    wan = api.post("/api/wan", json={"name": "corp"}).get_json()
    first = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "hq", "kind": "server"}).get_json()
    assert api.post(f"/api/peers/{first['id']}/subnets", json={"cidr": "192.168.1.0/24"}).status_code == 201
    sites = [
        api.post(f"/api/peers/wan/{wan['id']}", json={"name": f"site{i}", "kind": "mikrotik"}).get_json()
        for i in range(10)
    ]

    def nat(i: int) -> Any:
        resp = _client(app, operator_token)("post", f"/api/peers/{sites[i]['id']}/subnets",
                                            json={"cidr": "192.168.1.0/24", "auto_nat": True})  # fmt: skip
        return resp.status_code, resp.get_json()

    results = _in_parallel(10, nat)
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 201)]
    assert not failures, failures
    blocks = [body["nat_cidr"] for _, body in results]
    assert len(set(blocks)) == 10
    assert sorted(blocks, key=lambda c: ip_network(c)) == [f"172.16.{n}.0/24" for n in range(10)]
    with app.app_context():
        stored = db.session.scalars(select(Subnet.nat_cidr).where(Subnet.nat_cidr.is_not(None))).all()
    assert sorted(stored) == sorted(blocks)
    assert api.get(f"/api/wan/{wan['id']}/conflicts").get_json() == []
