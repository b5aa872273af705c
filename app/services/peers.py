"""Creating, changing and deleting peers: names, keys, tunnel IPs, endpoints, MikroTik access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from sqlalchemy import select

from app import crypto
from app.domain import bulk, conflicts, keys, validation
from app.domain.addressing import parse_ipv4_address, parse_ipv6_address, usable_bounds
from app.domain.errors import ConflictError
from app.domain.model import DEFAULT_API_PORT, DEFAULT_API_USERNAME, PeerSpec
from app.extensions import db
from app.models import Peer, Subnet, Wan
from app.services import audit, changes
from app.services.inputs import Collector, as_bool, optional_text
from app.services.specs import wan_spec
from app.services.tx import lock_wan

API_SSL_PORT = 8729  # RouterOS api-ssl's default

# What a user may set. mikrotik_* are flat here; the JSON API flattens its nested "mikrotik" object.
PEER_FIELDS = (
    "name",
    "kind",
    "is_hub",
    "hub_priority",
    "endpoint",
    "listen_port",
    "tunnel_ip",
    "tunnel_ip6",
    "has_port_forward",
    "public_key",
    "keepalive",
    "mikrotik_host",
    "mikrotik_port",
    "mikrotik_use_tls",
    "mikrotik_verify_cert",
    "mikrotik_username",
    "mikrotik_password",
    "mikrotik_auto_deploy",
    "enabled",
    "expires_at",
)
SUMMARY_FIELDS = (
    "name",
    "kind",
    "is_hub",
    "hub_priority",
    "tunnel_ip",
    "tunnel_ip6",
    "listen_port",
    "endpoint_host",
    "endpoint_port",
    "has_port_forward",
    "keepalive",
    "public_key",
    "mt_host",
    "mt_port",
    "mt_use_tls",
    "mt_verify_cert",
    "mt_username",
    "mt_auto_deploy",
    "enabled",
    "expires_at",
)


def summary(peer: Peer) -> dict[str, Any]:
    out = audit.snapshot(peer, SUMMARY_FIELDS)
    if out["expires_at"] is not None:  # audit details are JSON
        out["expires_at"] = out["expires_at"].isoformat() + "Z"
    return out


def peer_values(peer: Peer) -> dict[str, Any]:
    """The peer's settings as stored, named as in PEER_FIELDS (router access flat as mikrotik_*;
    the password is write-only and never included). The forms and the API start from this."""
    return {
        "name": peer.name,
        "kind": peer.kind,
        "is_hub": peer.is_hub,
        "hub_priority": peer.hub_priority,
        "endpoint": peer.endpoint,
        "listen_port": peer.listen_port,
        "tunnel_ip": peer.tunnel_ip,
        "tunnel_ip6": peer.tunnel_ip6,
        "has_port_forward": peer.has_port_forward,
        "keepalive": peer.keepalive,
        "mikrotik_host": peer.mt_host,
        "mikrotik_port": peer.mt_port,
        "mikrotik_use_tls": peer.mt_use_tls,
        "mikrotik_verify_cert": peer.mt_verify_cert,
        "mikrotik_username": peer.mt_username,
        "mikrotik_auto_deploy": peer.mt_auto_deploy,
        "enabled": peer.enabled,
        "expires_at": peer.expires_at.isoformat() + "Z" if peer.expires_at is not None else None,
    }


def current_values(peer: Peer) -> dict[str, Any]:
    """The peer as form/API input values: :func:`peer_values` with the defaults a form shows."""
    values = peer_values(peer)
    return {
        **values,
        "endpoint": values["endpoint"] or "",
        "mikrotik_host": values["mikrotik_host"] or "",
        "mikrotik_port": values["mikrotik_port"] or DEFAULT_API_PORT,
        "mikrotik_username": values["mikrotik_username"] or DEFAULT_API_USERNAME,
    }


def _parse(wan: Wan, data: Mapping[str, Any], peer: Peer | None) -> dict[str, Any]:
    """Validate every field, then the guardrails that relate fields to each other."""
    current = (
        current_values(peer)
        if peer
        else {"listen_port": wan.listen_port, "mikrotik_username": DEFAULT_API_USERNAME, "enabled": True}
    )
    merged = {**current, **{k: v for k, v in data.items() if k in PEER_FIELDS}}
    c = Collector()
    out: dict[str, Any] = {
        "name": c(validation.validate_peer_name, merged.get("name")),
        "kind": c(validation.validate_kind, merged.get("kind")),
        "is_hub": c(as_bool, merged.get("is_hub"), "is_hub"),
        "has_port_forward": c(as_bool, merged.get("has_port_forward"), "has_port_forward"),
        "listen_port": c(validation.validate_port, merged.get("listen_port")),
        "enabled": c(as_bool, merged.get("enabled", True), "enabled"),
    }
    expires = optional_text(merged.get("expires_at"))
    out["expires_at"] = c(validation.parse_expiry, expires) if expires is not None else None
    priority = optional_text(merged.get("hub_priority"))
    out["hub_priority"] = (
        c(validation.validate_int, priority, "hub_priority", "Hub priority", 0, 1000) if priority is not None else None
    )
    keepalive = optional_text(merged.get("keepalive"))
    out["keepalive"] = c(validation.validate_keepalive, keepalive) if keepalive is not None else None
    tunnel_ip = optional_text(merged.get("tunnel_ip"))
    out["tunnel_ip"] = c(parse_ipv4_address, tunnel_ip, "tunnel_ip", "Tunnel IP") if tunnel_ip is not None else None
    tunnel_ip6 = optional_text(merged.get("tunnel_ip6"))
    out["tunnel_ip6"] = (
        c(parse_ipv6_address, tunnel_ip6, "tunnel_ip6", "Tunnel IPv6") if tunnel_ip6 is not None else None
    )
    endpoint = None
    if out["listen_port"] is not None:
        endpoint = c(validation.parse_endpoint, merged.get("endpoint"), out["listen_port"])
    out["endpoint"] = endpoint
    public_key = optional_text(data.get("public_key"))
    out["public_key"] = c(keys.validate_public_key, public_key) if public_key is not None else None

    if out["kind"] == "mikrotik":
        host = optional_text(merged.get("mikrotik_host"))
        out["mt_host"] = c(validation.validate_host, host) if host is not None else None
        out["mt_use_tls"] = c(as_bool, merged.get("mikrotik_use_tls"), "mikrotik_use_tls")
        # No port given: api-ssl's 8729 with TLS, the plain API's 8728 without.
        default_port = API_SSL_PORT if out["mt_use_tls"] else DEFAULT_API_PORT
        port = merged.get("mikrotik_port") or default_port
        out["mt_port"] = c(validation.validate_port, port, "mikrotik_port", "API port")
        out["mt_verify_cert"] = c(as_bool, merged.get("mikrotik_verify_cert"), "mikrotik_verify_cert")
        out["mt_username"] = c(validation.validate_username, merged.get("mikrotik_username") or DEFAULT_API_USERNAME)
        out["mt_auto_deploy"] = c(as_bool, merged.get("mikrotik_auto_deploy"), "mikrotik_auto_deploy")
        password = data.get("mikrotik_password")
        # Write-only: a blank password on edit keeps the stored one.
        out["mt_password"] = c(validation.validate_password, password) if optional_text(password) is not None else None
    c.check()

    if endpoint is not None:
        validation.check_endpoint_port(endpoint[1], out["listen_port"], out["has_port_forward"])
    return out


def _check_name_free(wan: Wan, name: str, peer_id: int | None) -> None:
    other = db.session.scalar(
        select(Peer.id).where(Peer.wan_id == wan.id, Peer.name == name, Peer.id != (peer_id or 0))
    )
    if other is not None:
        raise ConflictError(
            f"WAN '{wan.name}' already has a peer named '{name}'; pick another name.",
            "name",
            other_peer_id=other,
        )


def _apply(peer: Peer, wan: Wan, values: dict[str, Any]) -> None:
    plain = ("name", "kind", "is_hub", "hub_priority", "has_port_forward", "listen_port", "keepalive")
    for field in (*plain, "enabled", "expires_at"):
        setattr(peer, field, values[field])
    endpoint = values["endpoint"]
    peer.endpoint_host, peer.endpoint_port = endpoint if endpoint else (None, None)
    if values["kind"] == "mikrotik":
        peer.mt_host = values["mt_host"]
        peer.mt_port = values["mt_port"]
        peer.mt_use_tls = values["mt_use_tls"]
        peer.mt_verify_cert = values["mt_verify_cert"]
        peer.mt_username = values["mt_username"]
        peer.mt_auto_deploy = values["mt_auto_deploy"]
        if values["mt_password"] is not None:
            peer.mt_password_enc = crypto.encrypt(values["mt_password"])
    else:
        # No router behind this peer any more: keep no router secret around.
        peer.mt_host = peer.mt_port = peer.mt_username = peer.mt_password_enc = None
        peer.mt_use_tls = peer.mt_verify_cert = peer.mt_auto_deploy = False


def _check_management(peer: Peer, wan: Wan) -> None:
    if peer.kind == "mikrotik" and peer.mt_host:
        validation.check_management_host(
            peer.mt_host, IPv4Address(peer.tunnel_ip), IPv4Network(wan.tunnel_cidr), "mikrotik_host"
        )


def _choose_tunnel_ip(wan: Wan, requested: IPv4Address | None, exclude_peer_id: int | None) -> IPv4Address:
    """`conflicts.assign_tunnel_ip` without loading the WAN: the taken addresses of the range
    come from the (wan_id, tunnel_ip_num) index, the holder of a requested one by equality."""
    tunnel_cidr = IPv4Network(wan.tunnel_cidr)
    first, last = usable_bounds(tunnel_cidr)
    others = (Peer.wan_id == wan.id, Peer.id != (exclude_peer_id or 0))
    # Addresses outside the usable range can neither be handed out nor requested: leave them out.
    in_range = select(Peer.tunnel_ip_num).where(*others, Peer.tunnel_ip_num.between(first, last))
    taken = {num for num in db.session.scalars(in_range) if num is not None}
    holder = None
    if requested is not None:
        row = db.session.execute(
            select(Peer.id, Peer.name).where(*others, Peer.tunnel_ip_num == int(requested)).order_by(Peer.id).limit(1)
        ).first()
        holder = conflicts.Holder(row.id, row.name) if row is not None else None
    chosen = conflicts.choose_tunnel_ip(tunnel_cidr, taken, requested, holder)
    assert isinstance(chosen, IPv4Address)
    return chosen


def _choose_tunnel_ip6(wan: Wan, requested: IPv6Address | None, exclude_peer_id: int | None) -> IPv6Address | None:
    """`conflicts.assign_tunnel_ip6` from the WAN's IPv6 tunnel addresses only (one column)."""
    tunnel_cidr6 = IPv6Network(wan.tunnel_cidr6) if wan.tunnel_cidr6 else None
    if not conflicts.tunnel_ip6_wanted(tunnel_cidr6, requested):
        return None
    assert tunnel_cidr6 is not None
    rows = db.session.execute(
        select(Peer.id, Peer.name, Peer.tunnel_ip6)
        .where(Peer.wan_id == wan.id, Peer.id != (exclude_peer_id or 0), Peer.tunnel_ip6.is_not(None))
        .order_by(Peer.id)
    ).all()
    taken = {int(IPv6Address(row.tunnel_ip6)) for row in rows}
    holder = next(
        (conflicts.Holder(row.id, row.name) for row in rows if IPv6Address(row.tunnel_ip6) == requested), None
    )
    chosen = conflicts.choose_tunnel_ip(tunnel_cidr6, taken, requested, holder)
    assert isinstance(chosen, IPv6Address)
    return chosen


def create_peer(wan: Wan, data: Mapping[str, Any]) -> Peer:
    changes.touched(wan.id)
    lock_wan(wan.id)
    values = _parse(wan, data, None)
    _check_name_free(wan, values["name"], None)
    tunnel_ip = _choose_tunnel_ip(wan, values["tunnel_ip"], None)
    tunnel_ip6 = _choose_tunnel_ip6(wan, values["tunnel_ip6"], None)
    peer = Peer(wan=wan, tunnel_ip=str(tunnel_ip), tunnel_ip6=str(tunnel_ip6) if tunnel_ip6 is not None else None)
    if values["public_key"]:
        peer.public_key, peer.private_key_enc = values["public_key"], None
    else:
        private, public = keys.generate_keypair()
        peer.public_key, peer.private_key_enc = public, crypto.encrypt(private)
    _apply(peer, wan, values)
    _check_management(peer, wan)
    db.session.add(peer)
    db.session.flush()
    audit.record_network(
        "create",
        peer,
        f"peer '{peer.name}' ({peer.kind}) added at {peer.tunnel_ip}"
        + (f" and {peer.tunnel_ip6}" if peer.tunnel_ip6 else ""),
        {"after": summary(peer)},
    )
    return peer


def update_peer(peer: Peer, data: Mapping[str, Any]) -> Peer:
    changes.touched(peer.wan_id)
    lock_wan(peer.wan_id)
    wan = peer.wan
    before = summary(peer)
    values = _parse(wan, data, peer)
    _check_name_free(wan, values["name"], peer.id)
    if values["tunnel_ip"] is not None and str(values["tunnel_ip"]) != peer.tunnel_ip:
        tunnel_ip = _choose_tunnel_ip(wan, values["tunnel_ip"], peer.id)
        peer.tunnel_ip = str(tunnel_ip)
    if values["tunnel_ip6"] is not None and str(values["tunnel_ip6"]) != peer.tunnel_ip6:
        tunnel_ip6 = _choose_tunnel_ip6(wan, values["tunnel_ip6"], peer.id)
        peer.tunnel_ip6 = str(tunnel_ip6) if tunnel_ip6 is not None else None
    if values["public_key"] and values["public_key"] != peer.public_key:
        # A new public key from the user means the device holds the private key from now on.
        peer.public_key, peer.private_key_enc = values["public_key"], None
    _apply(peer, wan, values)
    _check_management(peer, wan)
    new_password = bool(optional_text(data.get("mikrotik_password")))
    audit.record_update(peer, f"peer '{peer.name}'", before, summary(peer), "router password" if new_password else None)
    return peer


def regenerate_keys(peer: Peer) -> Peer:
    """Key rotation: a fresh pair held by WireWAN (every peer listing it goes stale; auto-deploy
    routers redeploy once the change commits). A peer that brought its own key gets one from
    WireWAN from now on."""
    changes.touched(peer.wan_id)
    lock_wan(peer.wan_id)
    private, public = keys.generate_keypair()
    old = peer.public_key
    peer.public_key, peer.private_key_enc = public, crypto.encrypt(private)
    audit.record_network(
        "rotate-keys", peer, f"peer '{peer.name}' got a new key pair", {"old_public_key": old, "public_key": public}
    )
    return peer


def disable_expired(now: datetime) -> list[Peer]:
    """Disable every enabled peer whose `expires_at` has passed (audited; the WANs are touched so
    auto-deploy routers drop them). The caller commits."""
    expired = db.session.scalars(
        select(Peer)
        .where(Peer.enabled.is_(True), Peer.expires_at.is_not(None), Peer.expires_at <= now)
        .order_by(Peer.id)
    ).all()
    for peer in expired:
        changes.touched(peer.wan_id)
        peer.enabled = False
        audit.record_network(
            "expire", peer, f"peer '{peer.name}' expired at {peer.expires_at:%Y-%m-%d %H:%M} UTC and was disabled"
        )
    return list(expired)


def delete_peer(peer: Peer) -> None:
    changes.touched(peer.wan_id)
    audit.record_network("delete", peer, f"peer '{peer.name}' deleted", {"before": summary(peer)})
    db.session.delete(peer)


def preview_csv(wan: Wan, text: str) -> list[bulk.PlannedPeer]:
    """The peers a CSV table would create (every row checked; CsvError names the line), writing nothing."""
    spec = wan_spec(wan)
    return bulk.plan_import(spec, text)


def import_csv(wan: Wan, text: str) -> list[Peer]:
    """Create every peer of a CSV table, or none (the caller commits; a CsvError leaves nothing)."""
    changes.touched(wan.id)
    lock_wan(wan.id)
    spec = wan_spec(wan)
    planned = bulk.plan_import(spec, text)
    created = []
    for row in planned:
        # Dual-stack WANs: the lowest free IPv6 tunnel address, as the form gives (the spec grows
        # with each row so two rows never share one).
        tunnel_ip6 = conflicts.assign_tunnel_ip6(spec, None)
        if tunnel_ip6 is not None:
            placeholder = PeerSpec(
                id=-row.line, uuid="", name=row.name, kind=row.kind, tunnel_ip=row.tunnel_ip, listen_port=0,
                public_key="", tunnel_ip6=tunnel_ip6,
            )  # fmt: skip
            spec = replace(spec, peers=(*spec.peers, placeholder))
        private, public = keys.generate_keypair()
        peer = Peer(
            wan_id=wan.id,
            name=row.name,
            kind=row.kind,
            tunnel_ip=str(row.tunnel_ip),
            tunnel_ip6=str(tunnel_ip6) if tunnel_ip6 is not None else None,
            listen_port=wan.listen_port,
            public_key=public,
            private_key_enc=crypto.encrypt(private),
        )
        peer.endpoint_host, peer.endpoint_port = row.endpoint if row.endpoint else (None, None)
        peer.subnets = [Subnet(wan_id=wan.id, cidr=str(lan), routed=True) for lan in row.lans]
        created.append(peer)
    db.session.add_all(created)
    db.session.flush()
    audit.record_network(
        "import-csv",
        wan,
        f"{len(created)} peers imported from CSV into WAN '{wan.name}'",
        {"peers": [p.name for p in created[:100]], "count": len(created)},
    )
    return created
