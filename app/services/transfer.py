"""Export a WAN as one passphrase-protected document, and import such a document (issue 13).

The document format and its encryption live in app.domain.export. Importing keeps every value
that goes into a config (keys, addresses, uuids, and the row ids that router comments carry, when
they are free), so every peer's config and every router's script comes out byte-identical. wg-quick
peers keep the hash of the config they had applied; a router counts as deployed only after its first
verify on the new instance (its applied hash starts empty, so no auto-deploy fires either).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from app import crypto
from app.domain import export as doc
from app.domain.errors import ConflictError
from app.extensions import db
from app.models import Peer, Service, Subnet, Wan
from app.models.base import utcnow
from app.services import audit, changes
from app.services.specs import load_wan

WAN_EXPORT_FIELDS = (
    "name", "tunnel_cidr", "services_cidr", "nat_pool_cidr", "topology", "interface_name", "listen_port",
    "keepalive", "mtu", "mgmt_cidrs", "dns", "preshared_keys", "tunnel_cidr6", "services_cidr6",
)  # fmt: skip


def export_wan(wan_id: int, passphrase: str) -> dict[str, Any]:
    """The WAN document (audited; the caller commits the audit entry)."""
    doc.check_passphrase(passphrase)
    wan = load_wan(wan_id)
    assert wan is not None
    peers = []
    secrets: dict[str, Any] = {"peers": {}, "psk_seed": None}
    if wan.psk_seed_enc:
        secrets["psk_seed"] = crypto.decrypt(wan.psk_seed_enc)
    for p in wan.peers:
        peers.append(
            {
                "id": p.id,
                "uuid": p.uuid,
                "name": p.name,
                "kind": p.kind,
                "is_hub": p.is_hub,
                "hub_priority": p.hub_priority,
                "tunnel_ip": p.tunnel_ip,
                "tunnel_ip6": p.tunnel_ip6,
                "listen_port": p.listen_port,
                "endpoint_host": p.endpoint_host,
                "endpoint_port": p.endpoint_port,
                "has_port_forward": p.has_port_forward,
                "keepalive": p.keepalive,
                "public_key": p.public_key,
                "enabled": p.enabled,
                "expires_at": p.expires_at.isoformat() + "Z" if p.expires_at else None,
                "applied_config_hash": None if p.kind == "mikrotik" else p.applied_config_hash,
                "mikrotik": {
                    "host": p.mt_host,
                    "port": p.mt_port,
                    "use_tls": p.mt_use_tls,
                    "verify_cert": p.mt_verify_cert,
                    "username": p.mt_username,
                    "auto_deploy": p.mt_auto_deploy,
                }
                if p.kind == "mikrotik"
                else None,
                "subnets": [
                    {"id": s.id, "cidr": s.cidr, "routed": s.routed, "nat_cidr": s.nat_cidr} for s in p.subnets
                ],
                "services": [
                    {
                        "id": v.id,
                        "name": v.name,
                        "protocol": v.protocol,
                        "local_ip": v.local_ip,
                        "local_port": v.local_port,
                        "shared_ip": v.shared_ip,
                        "shared_port": v.shared_port,
                    }
                    for v in p.services
                ],
            }
        )
        secrets["peers"][p.uuid] = {
            "private_key": crypto.decrypt(p.private_key_enc) if p.private_key_enc else None,
            "mikrotik_password": crypto.decrypt(p.mt_password_enc) if p.mt_password_enc else None,
        }
    body = {
        "format": doc.FORMAT,
        "version": doc.VERSION,
        "exported_at": utcnow().isoformat() + "Z",
        "wan": {f: getattr(wan, f) for f in WAN_EXPORT_FIELDS},
        "peers": peers,
    }
    audit.record_network("export", wan, f"WAN '{wan.name}' exported with {len(peers)} peers")
    return doc.seal(body, secrets, passphrase)


def _free(model: Any, ids: list[int]) -> bool:
    if not ids or len(set(ids)) != len(ids):
        return not ids
    return db.session.scalar(select(func.count()).select_from(model).where(model.id.in_(ids))) == 0


def import_wan(document: object, passphrase: object, name: object = None) -> Wan:
    """Recreate the WAN of `document` (DocumentError 422 before anything is written; 409 when the
    name is taken). The caller commits."""
    body, raw_secrets = doc.unseal(document, passphrase)
    data = doc.check_body(body if name is None else {**body, "wan": {**_dict(body.get("wan")), "name": name}})
    secrets = doc.check_secrets(raw_secrets, data["peers"])
    values = data["wan"]
    if db.session.scalar(select(Wan.id).where(Wan.name == values["name"])) is not None:
        raise ConflictError(f"A WAN named '{values['name']}' already exists; import it under another name.", "name")
    wan = Wan(**values)
    if values["preshared_keys"]:
        seed = secrets["psk_seed"]
        wan.psk_seed_enc = crypto.encrypt(seed) if seed else None
    db.session.add(wan)
    db.session.flush()
    changes.touched(wan.id)

    peers_data = data["peers"]
    # Router comments carry peer, subnet and service ids: keep them when all are free here.
    keep_ids = (
        _free(Peer, [p["id"] for p in peers_data if p["id"] is not None])
        and _free(Subnet, [s["id"] for p in peers_data for s in p["subnets"] if s["id"] is not None])
        and _free(Service, [v["id"] for p in peers_data for v in p["services"] if v["id"] is not None])
    )
    uuids = [p["uuid"] for p in peers_data]
    taken_uuids = set(db.session.scalars(select(Peer.uuid).where(Peer.uuid.in_(uuids)))) if uuids else set()
    for p in peers_data:
        secret = secrets["peers"][p["uuid"]]
        mt = p["mikrotik"]
        peer = Peer(
            wan_id=wan.id,
            name=p["name"],
            kind=p["kind"],
            is_hub=p["is_hub"],
            hub_priority=p["hub_priority"],
            tunnel_ip=p["tunnel_ip"],
            tunnel_ip6=p["tunnel_ip6"],
            listen_port=p["listen_port"],
            endpoint_host=p["endpoint_host"],
            endpoint_port=p["endpoint_port"],
            has_port_forward=p["has_port_forward"],
            keepalive=p["keepalive"],
            public_key=p["public_key"],
            private_key_enc=crypto.encrypt(secret["private_key"]) if secret["private_key"] else None,
            enabled=p["enabled"],
            expires_at=p["expires_at"],
            applied_config_hash=None if p["kind"] == "mikrotik" else p["applied_config_hash"],
        )
        if p["uuid"] not in taken_uuids:
            peer.uuid = p["uuid"]
        if keep_ids and p["id"] is not None:
            peer.id = p["id"]
        if mt is not None:
            peer.mt_host, peer.mt_port, peer.mt_username = mt["host"], mt["port"], mt["username"]
            peer.mt_use_tls, peer.mt_verify_cert, peer.mt_auto_deploy = (
                mt["use_tls"],
                mt["verify_cert"],
                mt["auto_deploy"],
            )
            if secret["mikrotik_password"]:
                peer.mt_password_enc = crypto.encrypt(secret["mikrotik_password"])
        db.session.add(peer)
        db.session.flush()
        for s in p["subnets"]:
            subnet = Subnet(wan_id=wan.id, peer_id=peer.id, cidr=s["cidr"], routed=s["routed"], nat_cidr=s["nat_cidr"])
            if keep_ids and s["id"] is not None:
                subnet.id = s["id"]
            db.session.add(subnet)
        for v in p["services"]:
            service = Service(wan_id=wan.id, peer_id=peer.id, **{k: v[k] for k in v if k != "id"})
            if keep_ids and v["id"] is not None:
                service.id = v["id"]
            db.session.add(service)
    db.session.flush()
    if keep_ids:
        _advance_sequences()
    audit.record_network("import", wan, f"WAN '{wan.name}' imported with {len(peers_data)} peers")
    return wan


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_SETVAL = tuple(
    f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {t}))"  # noqa: S608  (constant table names)
    for t in ("peer", "subnet", "service")
)


def _advance_sequences() -> None:
    """PostgreSQL: rows inserted with explicit ids leave the id sequences behind; move them on."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for statement in _SETVAL:
        db.session.execute(text(statement))
