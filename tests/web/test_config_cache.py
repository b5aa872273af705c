"""The config-hash cache (Wan.revision, Peer.current_hash): staleness stays exact while most
requests render nothing."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.domain.topology import build_topology
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


def add_router(api, wan):
    return add(
        api,
        wan,
        "rt",
        kind="mikrotik",
        endpoint="198.51.100.9",
        mikrotik={"host": "192.0.2.7", "username": "wirewan", "password": "router-pass-1"},
    )


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
        rev, stored_at = db.session.execute(select(Wan.revision, Wan.derived_revision).where(Wan.id == wan["id"])).one()
        assert stored_at == rev
        cached = db.session.scalars(select(Peer.current_hash).where(Peer.wan_id == wan["id"])).all()
        assert len(cached) == 2 and all(cached)

    def refuse(*_a, **_k):
        raise AssertionError("rendered although the cache is current")

    monkeypatch.setattr(configs, "current_hashes", refuse)
    assert listed_stale(api, wan) == first
    assert api.get(f"/wans/{wan['id']}").status_code in (200, 302)


def test_cached_hashes_equal_rendered_ones(app, api, wan):
    add(api, wan, "hq", endpoint="203.0.113.1", is_hub=True)
    add(api, wan, "laptop", kind="client")
    add_router(api, wan)
    listed_stale(api, wan)  # fills the cache
    with app.app_context():
        peers = db.session.scalars(select(Peer).where(Peer.wan_id == wan["id"])).all()
        for peer in peers:
            config = configs.peer_config(peer)
            assert peer.current_hash == config.sha256
            assert configs.peer_hash(peer) == config.sha256


def test_a_deployed_router_is_not_stale(app, api, wan):
    add(api, wan, "hq", endpoint="203.0.113.1")
    rt = add_router(api, wan)
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


# --- the topology cache (configs.wan_topology): the zip never serves an old config -----------------


def zipped(api, wan):
    resp = api.get(f"/api/wan/{wan['id']}/configs.zip")
    assert resp.status_code == 200
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        return {name: zf.read(name).decode() for name in zf.namelist()}


def test_zip_after_a_change_holds_the_new_configs(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    branch = add(api, wan, "branch", endpoint="198.51.100.7")
    add(api, wan, "laptop", kind="client")
    before = zipped(api, wan)
    assert "192.168.7.0/24" not in before["hq.conf"]

    api.post(f"/api/peers/{branch['id']}/subnets", json={"cidr": "192.168.7.0/24"})
    assert "192.168.7.0/24" in zipped(api, wan)["hq.conf"]

    # A change behind the app's back (another process, a restore): the next zip has it too.
    with app.app_context():
        db.session.execute(update(Peer).where(Peer.id == hq["id"]).values(endpoint_host="203.0.113.99"))
        db.session.commit()
    assert "Endpoint = 203.0.113.99:51820" in zipped(api, wan)["laptop.conf"]

    # A key rotation changes no topology, but every config holding the key must show the new one.
    api.post(f"/api/peers/{hq['id']}/rotate-key")
    after = zipped(api, wan)
    assert after["hq.conf"].split("PrivateKey = ")[1][:44] != before["hq.conf"].split("PrivateKey = ")[1][:44]
    assert after["branch.conf"] == configs_text(app, branch["id"])


def configs_text(app, peer_id):
    with app.app_context():
        return configs.peer_config(db.session.get(Peer, peer_id)).text


def test_zip_after_psk_rotation_holds_the_new_keys(app, api):
    wan = api.post("/api/wan", json={"name": "psk", "preshared_keys": True}).get_json()
    add(api, wan, "a", endpoint="203.0.113.2")
    add(api, wan, "b", endpoint="203.0.113.3")
    before = zipped(api, wan)
    assert api.post(f"/api/wan/{wan['id']}/rotate-psks").status_code == 200
    after = zipped(api, wan)
    psk = [line for line in after["a.conf"].splitlines() if line.startswith("PresharedKey")]
    assert len(psk) == 1 and psk[0] not in before["a.conf"] and psk[0] in after["b.conf"]


def test_second_zip_reuses_the_topology(app, api, wan, monkeypatch):
    add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    first = zipped(api, wan)

    def refuse(*_a, **_k):
        raise AssertionError("built the topology of an unchanged WAN again")

    monkeypatch.setattr(configs, "build_topology", refuse)
    assert zipped(api, wan) == first


def test_changes_that_leave_routing_alone_reuse_the_topology(app, api, wan, monkeypatch):
    """MTU, DNS, a key rotation, router settings: every config changes, the topology does not (a
    10,000-peer WAN skips its longest step, docs/benchmarks.md)."""
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    router = add_router(api, wan)
    first = zipped(api, wan)
    real_build, builds = configs.build_topology, []

    def counted(*args, **kwargs):
        builds.append(args[0].peers)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(configs, "build_topology", counted)
    assert api.patch(f"/api/wan/{wan['id']}", json={"mtu": 1380, "dns": ["10.0.0.53"]}).status_code == 200
    assert api.post(f"/api/peers/{hq['id']}/rotate-key").status_code == 200
    patch = {"mikrotik": {"host": "192.0.2.99", "password": "router-pass-2"}}
    assert api.patch(f"/api/peers/{router['id']}", json=patch).status_code == 200
    after = zipped(api, wan)
    assert builds == [], "built the topology again after changes that leave routing alone"
    assert "MTU = 1380" in after["laptop.conf"] and "DNS = 10.0.0.53" in after["laptop.conf"]
    hq_key = api.get(f"/api/peers/{hq['id']}").get_json()["public_key"]
    assert f"PublicKey = {hq_key}" in after["laptop.conf"] and hq_key not in first["laptop.conf"]
    assert after["rt.rsc"] != first["rt.rsc"]
    configs._topologies.clear()  # the same configs as a topology built from scratch gives
    assert zipped(api, wan) == after and len(builds) == 1

    # A change to routing (an endpoint) builds it again.
    assert api.patch(f"/api/peers/{hq['id']}", json={"endpoint": "203.0.113.9"}).status_code == 200
    assert "Endpoint = 203.0.113.9:51820" in zipped(api, wan)["laptop.conf"] and len(builds) == 2


def test_a_new_wan_under_an_old_id_gets_its_own_topology(app):
    """SQLite reuses the id of a deleted last row: the cache must not mistake the new WAN for it."""
    old = _spec(("hq", "203.0.113.1"), ("laptop", None))
    new = _spec(("hq", "203.0.113.1"), ("office", "198.51.100.7"))
    assert configs.wan_topology(old) == build_topology(old)
    assert configs.wan_topology(new) == build_topology(new)
    assert configs.wan_topology(new) != configs.wan_topology(old)


def test_the_topology_cache_keeps_no_secret(app, api):
    wan = api.post("/api/wan", json={"name": "secrets", "preshared_keys": True}).get_json()
    add(api, wan, "hq", endpoint="203.0.113.1")
    add_router(api, wan)
    files = zipped(api, wan)
    assert "router-pass-1" in files["rt.rsc"] and "PrivateKey = " in files["hq.conf"]
    cached = repr(list(configs._topologies.values()))
    assert "router-pass-1" not in cached
    for text in files.values():
        for line in text.splitlines():
            if line.startswith(("PrivateKey", "PresharedKey")):
                assert line.split(" = ", 1)[1] not in cached


def _spec(*peers):
    from ipaddress import IPv4Address, ip_network

    from app.domain.keys import generate_keypair
    from app.domain.model import PeerSpec, WanSpec

    specs = []
    for i, (name, endpoint) in enumerate(peers, start=1):
        private, public = generate_keypair()
        specs.append(
            PeerSpec(
                id=i,
                uuid=f"00000000-0000-4000-8000-{i:012d}",
                name=name,
                kind="server" if endpoint else "client",
                tunnel_ip=IPv4Address(f"10.0.0.{i}"),
                listen_port=51820,
                public_key=public,
                private_key=private,
                endpoint_host=endpoint,
            )
        )
    return WanSpec(
        id=7,
        name="reused",
        tunnel_cidr=ip_network("10.0.0.0/24"),
        services_cidr=ip_network("10.0.5.0/24"),
        nat_pool_cidr=ip_network("172.16.0.0/12"),
        peers=tuple(specs),
    )


def test_a_recompute_rewrites_only_the_peers_whose_config_changed(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1", is_hub=True)
    for name in ("branch-1", "branch-2", "branch-3"):
        add(api, wan, name, endpoint="198.51.100.7")
    laptop = add(api, wan, "laptop", kind="client")
    listed_stale(api, wan)  # computes and stores every hash
    with app.app_context():
        before = dict(db.session.execute(select(Peer.id, Peer.current_hash).where(Peer.wan_id == wan["id"])).all())
    # Its own listen port: only the laptop's config changes (it has no endpoint for others to list).
    assert api.patch(f"/api/peers/{laptop['id']}", json={"listen_port": 51999}).status_code == 200
    written: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE peer SET current_hash"):
            written.append(cursor.rowcount)

    with app.app_context():
        event.listen(db.engine, "after_cursor_execute", count)
        try:
            listed_stale(api, wan)
        finally:
            event.remove(db.engine, "after_cursor_execute", count)
        after = dict(db.session.execute(select(Peer.id, Peer.current_hash).where(Peer.wan_id == wan["id"])).all())
        spec = configs.load_spec(wan["id"], all_secrets=True)
        assert after == configs.current_hashes(spec, build_topology(spec))
    changed = {pid for pid in after if after[pid] != before[pid]}
    assert laptop["id"] in changed and hq["id"] not in changed
    assert sum(written) == len(changed)


def test_a_peer_read_before_another_process_stored_new_hashes_gets_the_new_one(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    branch = add(api, wan, "branch", endpoint="198.51.100.7")
    api.post(f"/api/peers/{hq['id']}/config")  # applied: its hash is compared, not skipped
    listed_stale(api, wan)
    with app.app_context():
        peer = db.session.get(Peer, hq["id"])
        old = peer.current_hash  # the session keeps this row as read now
        # Another process adds a LAN to the branch (hq's config lists it) and stores the new hashes.
        with Session(db.engine) as other:
            other.add(Subnet(wan_id=wan["id"], peer_id=branch["id"], cidr="192.168.9.0/24"))
            other.commit()
        assert configs._compute_and_store(wan["id"]) is not None
        spec = configs.load_spec(wan["id"], all_secrets=True)
        fresh = configs.current_hashes(spec, build_topology(spec), [hq["id"]])[hq["id"]]
        assert fresh != old
        assert configs.peer_hash(peer) == fresh
        assert configs.peer_stale(peer) is True


def test_a_wan_without_peers_lists_and_caches_nothing(app, api, wan):
    assert listed_stale(api, wan) == {}
    with app.app_context():
        rev, stored_at = db.session.execute(select(Wan.revision, Wan.derived_revision).where(Wan.id == wan["id"])).one()
        assert stored_at == rev
    assert api.get(f"/api/wan/{wan['id']}/configs.zip").status_code == 200
