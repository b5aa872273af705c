"""The config-hash cache (Wan.revision, Peer.current_hash): staleness stays exact while most
requests render nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Peer, Subnet, Wan
from app.services import configs


@pytest.fixture
def wan(api):
    return api.post("/api/wan", json={"name": "acme"}).get_json()


def add(api, wan, name, **fields):
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": name, "kind": "server", **fields})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def listed_stale(api, wan):
    return {p["name"]: p["stale"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json()}


def revision(app, wan_id):
    with app.app_context():
        return db.session.scalar(select(Wan.revision).where(Wan.id == wan_id))


def test_changes_bump_the_revision_and_applying_does_not(app, api, wan):
    r0 = revision(app, wan["id"])
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    r1 = revision(app, wan["id"])
    assert r1 > r0
    api.post(f"/api/peers/{hq['id']}/config")  # marks applied
    assert revision(app, wan["id"]) == r1
    api.post(f"/api/peers/{hq['id']}/subnets", json={"cidr": "192.168.7.0/24"})
    assert revision(app, wan["id"]) > r1


def test_a_direct_database_change_also_invalidates(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    branch = add(api, wan, "branch", endpoint="198.51.100.7")
    api.post(f"/api/peers/{hq['id']}/config")
    assert listed_stale(api, wan)["hq"] is False
    with app.app_context():
        db.session.add(Subnet(wan_id=wan["id"], peer_id=branch["id"], cidr="192.168.9.0/24"))
        db.session.commit()
    assert listed_stale(api, wan)["hq"] is True


def test_second_list_uses_the_cache(app, api, wan, monkeypatch):
    add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    first = listed_stale(api, wan)
    with app.app_context():
        rev = db.session.scalar(select(Wan.revision).where(Wan.id == wan["id"]))
        cached = db.session.scalars(select(Peer.current_hash_revision).where(Peer.wan_id == wan["id"])).all()
        assert cached == [rev, rev]

    def refuse(*_a, **_k):
        raise AssertionError("rendered although the cache is current")

    monkeypatch.setattr(configs, "current_hashes", refuse)
    assert listed_stale(api, wan) == first
    assert api.get(f"/wans/{wan['id']}").status_code in (200, 302)


def test_cached_hashes_equal_rendered_ones(app, api, wan):
    add(api, wan, "hq", endpoint="203.0.113.1", is_hub=True)
    add(api, wan, "laptop", kind="client")
    add(
        api,
        wan,
        "rt",
        kind="mikrotik",
        endpoint="198.51.100.9",
        mikrotik={"host": "192.0.2.7", "username": "wirewan", "password": "router-pass-1"},
    )
    listed_stale(api, wan)  # fills the cache
    with app.app_context():
        peers = db.session.scalars(select(Peer).where(Peer.wan_id == wan["id"])).all()
        for peer in peers:
            config = configs.peer_config(peer)
            assert peer.current_hash == config.sha256
            assert configs.peer_hash(peer) == config.sha256


def test_a_deployed_router_is_not_stale(app, api, wan):
    add(api, wan, "hq", endpoint="203.0.113.1")
    rt = add(
        api,
        wan,
        "rt",
        kind="mikrotik",
        endpoint="198.51.100.9",
        mikrotik={"host": "192.0.2.7", "username": "wirewan", "password": "router-pass-1"},
    )
    with app.app_context():
        peer = db.session.get(Peer, rt["id"])
        configs.mark_applied(peer, configs.peer_config(peer), "deploy")  # what run_deploy stores
        db.session.commit()
    assert listed_stale(api, wan)["rt"] is False
    # Renaming a remote peer changes no row on the router: still not stale.
    hq_id = next(p["id"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json() if p["name"] == "hq")
    assert api.patch(f"/api/peers/{hq_id}", json={"name": "hq2"}).status_code == 200
    assert listed_stale(api, wan)["rt"] is False
    assert api.patch(f"/api/peers/{hq_id}", json={"endpoint": "203.0.113.2"}).status_code == 200
    assert listed_stale(api, wan)["rt"] is True


def test_peer_stale_needs_no_render_for_a_new_peer(app, api, wan, monkeypatch):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")

    def refuse(*_a, **_k):
        raise AssertionError("rendered a config that was never applied")

    monkeypatch.setattr(configs, "current_hashes", refuse)
    with app.app_context():
        assert configs.peer_stale(db.session.get(Peer, hq["id"])) is True
