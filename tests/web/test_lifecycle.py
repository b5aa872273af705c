"""Issue 13 lifecycle through the API: key rotation, preshared keys, enabled/expires_at, export/import."""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Peer, Wan
from app.models.base import utcnow
from app.services import configs
from app.services import peers as peer_service
from app.services.tx import commit
from tests.conftest import make_token, make_user
from tests.web.test_api_network import assert_error, make_peer, make_wan

PASSPHRASE = "correct horse battery staple"


def config(app: Flask, peer_id: int, config_type: str = "wireguard") -> str:
    """The config text as the service renders it (an API download would also mark it applied)."""
    with app.app_context():
        peer = db.session.get(Peer, peer_id)
        return configs.peer_config(peer, config_type).text


def apply(app: Flask, peer_id: int) -> None:
    with app.app_context():
        peer = db.session.get(Peer, peer_id)
        configs.mark_applied(peer, configs.peer_config(peer), "mark-applied")
        commit()


def stale(api: Any, peer_id: int) -> bool:
    return bool(api.get(f"/api/peers/{peer_id}").get_json()["stale"])


def psk_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("PresharedKey")]


# --- key rotation ----------------------------------------------------------------------------------


def test_rotating_a_key_changes_its_config_stales_the_peers_listing_it_and_is_audited(app: Flask, api: Any) -> None:
    wan = make_wan(api, topology="hub_spoke")
    hub = make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.1")
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    b = make_peer(api, wan["id"], "b", endpoint="203.0.113.3")
    for p in (hub, a, b):
        apply(app, p["id"])
        assert not stale(api, p["id"])
    before = config(app, a["id"])

    resp = api.post(f"/api/peers/{a['id']}/rotate-key")
    assert resp.status_code == 200
    assert resp.get_json()["public_key"] != a["public_key"]
    assert "private_key" not in resp.get_data(as_text=True)
    after = config(app, a["id"])
    assert before != after
    # The hub lists a; b is a spoke and reaches a through the hub's aggregate: its config is unchanged.
    assert stale(api, hub["id"]) and stale(api, a["id"]) and not stale(api, b["id"])
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rotate-keys")).one()
        assert entry.actor == "op@example.com" and entry.object_id == a["id"]
        assert resp.get_json()["public_key"] in str(entry.details)


def test_viewers_cannot_rotate(app: Flask, client: Any, api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    make_user(app, "view@example.com", "viewer")
    token = make_token(app, "view@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(f"/api/peers/{a['id']}/rotate-key", headers=headers).status_code == 403
    assert client.post(f"/api/wan/{wan['id']}/rotate-psks", headers=headers).status_code == 403
    assert (
        client.post(f"/api/wan/{wan['id']}/export", headers=headers, json={"passphrase": PASSPHRASE}).status_code == 403
    )


# --- preshared keys --------------------------------------------------------------------------------


def test_preshared_keys_pairwise_rotated_and_removed(app: Flask, api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    b = make_peer(api, wan["id"], "b", endpoint="203.0.113.3")
    c = make_peer(api, wan["id"], "c", kind="client")
    plain = {p["id"]: config(app, p["id"]) for p in (a, b, c)}
    assert not any(psk_lines(t) for t in plain.values())
    assert_error(api.post(f"/api/wan/{wan['id']}/rotate-psks"), 422, "preshared_keys")

    resp = api.patch(f"/api/wan/{wan['id']}", json={"preshared_keys": True})
    assert resp.status_code == 200 and resp.get_json()["preshared_keys"] is True
    on = {p["id"]: config(app, p["id"]) for p in (a, b, c)}
    # Each config: one PSK per section; the two ends of a tunnel agree; every pair has its own.
    assert all(len(psk_lines(t)) == 2 for t in on.values())

    def section_psk(text: str, name: str) -> str:
        section = text.split(f"# {name}\n", 1)[1].split("[Peer]", 1)[0]
        return psk_lines(section)[0]

    ab, ba = section_psk(on[a["id"]], "b"), section_psk(on[b["id"]], "a")
    ac, ca = section_psk(on[a["id"]], "c"), section_psk(on[c["id"]], "a")
    assert ab == ba and ac == ca and ab != ac
    with app.app_context():
        stored = db.session.scalar(select(Wan.psk_seed_enc).where(Wan.id == wan["id"]))
        assert stored and ab.split(" = ")[1] not in stored  # encrypted at rest
        audit_text = " ".join(str(e.details) + e.summary for e in db.session.scalars(select(AuditEntry)))
        assert ab.split(" = ")[1] not in audit_text

    assert api.post(f"/api/wan/{wan['id']}/rotate-psks").status_code == 200
    rotated = config(app, a["id"])
    assert section_psk(rotated, "b") != ab and section_psk(config(app, b["id"]), "a") == section_psk(rotated, "b")

    assert api.patch(f"/api/wan/{wan['id']}", json={"preshared_keys": False}).status_code == 200
    off = {p["id"]: config(app, p["id"]) for p in (a, b, c)}
    assert off == plain  # byte-identical to before the option was ever on
    with app.app_context():
        assert db.session.scalar(select(Wan.psk_seed_enc).where(Wan.id == wan["id"])) is None


def test_router_script_carries_the_preshared_key(app: Flask, api: Any) -> None:
    wan = make_wan(api, preshared_keys=True)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    r = make_peer(api, wan["id"], "r", kind="mikrotik", endpoint="203.0.113.9")
    script = config(app, r["id"], "mikrotik-script")
    psk = psk_lines(config(app, a["id"]))[0].split(" = ")[1]
    assert f'preshared-key="{psk}"' in script or f"preshared-key={psk}" in script


# --- enabled / expires_at --------------------------------------------------------------------------


def test_a_disabled_peer_leaves_other_configs_but_keeps_its_addresses(app: Flask, api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    b = make_peer(api, wan["id"], "b", endpoint="203.0.113.3")
    assert api.post(f"/api/peers/{b['id']}/subnets", json={"cidr": "192.168.50.0/24"}).status_code == 201
    with_b = config(app, a["id"])
    assert "# b\n" in with_b

    resp = api.patch(f"/api/peers/{b['id']}", json={"enabled": False})
    assert resp.status_code == 200 and resp.get_json()["enabled"] is False
    without_b = config(app, a["id"])
    assert "# b\n" not in without_b and "192.168.50.0/24" not in without_b
    assert "[Peer]" not in config(app, b["id"])
    # IP planning still counts it: its tunnel IP is not handed out, its LAN still conflicts.
    c = make_peer(api, wan["id"], "c", endpoint="203.0.113.4")
    assert c["tunnel_ip"] not in (a["tunnel_ip"], b["tunnel_ip"])
    assert api.post(f"/api/peers/{c['id']}/subnets", json={"cidr": "192.168.50.0/25"}).status_code == 409

    assert api.patch(f"/api/peers/{b['id']}", json={"enabled": True}).status_code == 200
    assert "# b\n" in config(app, a["id"])


def test_expiry_disables_the_peer_audits_it_and_others_drop_it(app: Flask, api: Any) -> None:
    wan = make_wan(api)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.2")
    guest = make_peer(api, wan["id"], "guest", kind="client")
    assert_error(api.patch(f"/api/peers/{guest['id']}", json={"expires_at": "soon"}), 422, "expires_at")
    soon = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    resp = api.patch(f"/api/peers/{guest['id']}", json={"expires_at": soon.isoformat() + "+00:00"})
    assert resp.status_code == 200 and resp.get_json()["expires_at"] == soon.isoformat() + "Z"
    apply(app, a["id"])
    assert "# guest\n" in config(app, a["id"])

    with app.app_context():
        assert peer_service.disable_expired(utcnow()) == []
        expired = peer_service.disable_expired(soon + timedelta(seconds=1))
        assert [p.id for p in expired] == [guest["id"]]
        commit()
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "expire")).one()
        assert entry.object_id == guest["id"] and "expired" in entry.summary
    assert api.get(f"/api/peers/{guest['id']}").get_json()["enabled"] is False
    assert "# guest\n" not in config(app, a["id"])
    assert stale(api, a["id"])


# --- export / import -------------------------------------------------------------------------------


def _build_rich_wan(app: Flask, api: Any) -> dict[str, Any]:
    wan = make_wan(api, "corp", topology="hub_spoke", preshared_keys=True, mgmt_cidrs=["10.99.0.0/16"])
    hub = make_peer(api, wan["id"], "hub", is_hub=True, endpoint="hub.example.com:51820")
    router = make_peer(
        api,
        wan["id"],
        "branch",
        kind="mikrotik",
        mikrotik={"host": "192.168.88.1", "password": 'pa$$"word', "auto_deploy": True},
    )
    laptop = make_peer(api, wan["id"], "laptop", kind="client")
    make_peer(api, wan["id"], "byok", kind="client", public_key=hub["public_key"][:-2] + "A=")
    assert api.post(f"/api/peers/{router['id']}/subnets", json={"cidr": "192.168.88.0/24"}).status_code == 201
    assert (
        api.post(f"/api/peers/{hub['id']}/subnets", json={"cidr": "192.168.88.0/24", "auto_nat": True}).status_code
        == 201
    )
    svc = {"name": "web", "protocol": "tcp", "local_ip": "192.168.88.10", "local_port": 80}
    assert api.post(f"/api/peers/{router['id']}/services", json=svc).status_code == 201
    api.patch(f"/api/peers/{laptop['id']}", json={"enabled": False})
    apply(app, hub["id"])
    return wan


def _digests(app: Flask, api: Any, wan_id: int) -> dict[str, str]:
    out = {}
    for p in api.get(f"/api/peers/wan/{wan_id}").get_json():
        kind = "mikrotik-script" if p["kind"] == "mikrotik" else "wireguard"
        out[p["name"]] = hashlib.sha256(config(app, p["id"], kind).encode()).hexdigest()
    return out


def test_export_import_into_a_fresh_instance_is_byte_identical(
    app: Flask, api: Any, make_app: Any, tmp_path: Any
) -> None:
    wan = _build_rich_wan(app, api)
    original = _digests(app, api, wan["id"])
    assert_error(api.post(f"/api/wan/{wan['id']}/export", json={"passphrase": "short"}), 422, "passphrase")
    resp = api.post(f"/api/wan/{wan['id']}/export", json={"passphrase": PASSPHRASE})
    assert resp.status_code == 200
    document = resp.get_json()
    text = resp.get_data(as_text=True)
    assert document["format"] == "wirewan-wan" and document["version"] == 1
    assert "pa$$" not in text and "PrivateKey" not in text and "private_key" not in text

    # Another instance: its own SQLite file (without the PostgreSQL run's per-schema connect options).
    other = make_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'other.db'}",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 15}},
        ENCRYPTION_KEY="another-key",
    )
    with other.app_context():
        db.create_all()
    make_user(other, "op@example.com", "operator")
    token = make_token(other, "op@example.com")
    client = other.test_client()

    class Other:
        def __getattr__(self, method: str) -> Any:
            return lambda url, **kw: getattr(client, method)(url, headers={"Authorization": f"Bearer {token}"}, **kw)

    other_api = Other()
    # Wrong passphrase, and a tampered document: 422, nothing written.
    bad = other_api.post("/api/wan/import", json={"document": document, "passphrase": "not the passphrase"})
    assert_error(bad, 422, "passphrase", "Nothing was imported")
    tampered = copy.deepcopy(document)
    tampered["peers"][0]["endpoint_host"] = "evil.example.com"
    assert_error(other_api.post("/api/wan/import", json={"document": tampered, "passphrase": PASSPHRASE}), 422)
    with other.app_context():
        assert db.session.scalar(select(func.count()).select_from(Wan)) == 0

    resp = other_api.post("/api/wan/import", json={"document": document, "passphrase": PASSPHRASE})
    assert resp.status_code == 201, resp.get_json()
    new_id = resp.get_json()["id"]
    assert _digests(other, other_api, new_id) == original
    peers = {p["name"]: p for p in other_api.get(f"/api/peers/wan/{new_id}").get_json()}
    assert peers["branch"]["stale"] is True  # deployed only after its first verify
    assert peers["hub"]["stale"] is False  # the same config is applied
    assert peers["laptop"]["enabled"] is False
    with other.app_context():
        from app.models import Job

        assert db.session.scalar(select(func.count()).select_from(Job)) == 0  # no auto-deploy storm

    assert_error(other_api.post("/api/wan/import", json={"document": document, "passphrase": PASSPHRASE}), 409, "name")
    # The same document imports again under another name (new uuids; configs still work).
    again = other_api.post("/api/wan/import", json={"document": document, "passphrase": PASSPHRASE, "name": "corp2"})
    assert again.status_code == 201, again.get_json()


def test_import_into_the_same_instance_under_another_name(app: Flask, api: Any) -> None:
    wan = _build_rich_wan(app, api)
    document = api.post(f"/api/wan/{wan['id']}/export", json={"passphrase": PASSPHRASE}).get_json()
    resp = api.post("/api/wan/import", json={"document": document, "passphrase": PASSPHRASE, "name": "copy"})
    assert resp.status_code == 201, resp.get_json()
    copy_id = resp.get_json()["id"]
    peers = {p["name"]: p["id"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json()}
    copies = {p["name"]: p["id"] for p in api.get(f"/api/peers/wan/{copy_id}").get_json()}
    # wg-quick configs are identical but for the header naming the WAN (not hashed); router scripts
    # differ where they carry row ids and uuids, which cannot be reused on one instance.
    for name in ("hub", "laptop", "byok"):
        assert config(app, peers[name]).split("\n", 1)[1] == config(app, copies[name]).split("\n", 1)[1]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Peer)) == 8


def test_dual_stack_export_import_and_csv_import(app: Flask, api: Any) -> None:
    wan = make_wan(api, tunnel_cidr6="fd10:77::/64", preshared_keys=True)
    a = make_peer(api, wan["id"], "a", endpoint="203.0.113.1")
    resp = api.post(f"/api/peers/wan/{wan['id']}/import", data="name,kind,endpoint,lans\nb,client,,\nc,client,,\n",
                    content_type="text/csv")  # fmt: skip
    assert resp.status_code == 201
    six = [a["tunnel_ip6"], *(p["tunnel_ip6"] for p in resp.get_json())]
    assert len(set(six)) == 3 and all(ip and ip.startswith("fd10:77::") for ip in six)
    document = api.post(f"/api/wan/{wan['id']}/export", json={"passphrase": PASSPHRASE}).get_json()
    copy_id = api.post(
        "/api/wan/import", json={"document": document, "passphrase": PASSPHRASE, "name": "v6copy"}
    ).get_json()["id"]
    originals = {p["name"]: p["id"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json()}
    copies = {p["name"]: p["id"] for p in api.get(f"/api/peers/wan/{copy_id}").get_json()}
    for name in ("a", "b", "c"):
        assert "fd10:77::" in config(app, copies[name])
        assert config(app, originals[name]).split("\n", 1)[1] == config(app, copies[name]).split("\n", 1)[1]
