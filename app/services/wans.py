"""Creating, changing and deleting WANs."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from sqlalchemy import select

from app import crypto
from app.domain import addressing, conflicts, keys, validation
from app.domain.errors import ConflictError, ValidationError
from app.domain.model import WanSpec
from app.domain.routeros.rules import default_interface_name
from app.extensions import db
from app.models import Wan
from app.services import audit, changes
from app.services.inputs import Collector, as_bool, optional_text, text_list
from app.services.specs import wan_spec
from app.services.tx import lock_wan

WAN_FIELDS = (
    "name",
    "tunnel_cidr",
    "services_cidr",
    "nat_pool_cidr",
    "topology",
    "interface_name",
    "listen_port",
    "keepalive",
    "mtu",
    "mgmt_cidrs",
    "dns",
    "preshared_keys",
    "tunnel_cidr6",
    "services_cidr6",
)
DEFAULTS: dict[str, Any] = {
    "tunnel_cidr": "10.0.0.0/24",
    "services_cidr": "10.0.5.0/24",
    "nat_pool_cidr": "172.16.0.0/12",
    "topology": "mesh",
    "listen_port": 51820,
    "keepalive": 25,
    "mtu": 1420,
    "mgmt_cidrs": [],
    "dns": [],
    "preshared_keys": False,
    "tunnel_cidr6": None,
    "services_cidr6": None,
}


def _summary(wan: Wan) -> dict[str, Any]:
    return audit.snapshot(wan, WAN_FIELDS)


def _parse(data: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the given fields (others keep `current`), returning normalised values."""
    merged = {**current, **{k: v for k, v in data.items() if k in WAN_FIELDS}}
    c = Collector()
    out: dict[str, Any] = {
        "name": c(validation.validate_wan_name, merged.get("name")),
        "topology": c(validation.validate_topology, merged.get("topology")),
        "interface_name": c(validation.validate_interface_name, merged.get("interface_name")),
        "listen_port": c(validation.validate_port, merged.get("listen_port"), "listen_port", "Default listen port"),
        "keepalive": c(validation.validate_keepalive, merged.get("keepalive")),
        "mtu": c(validation.validate_mtu, merged.get("mtu")),
    }
    for field, label in (
        ("tunnel_cidr", "Tunnel range"),
        ("services_cidr", "Services range"),
        ("nat_pool_cidr", "NAT pool"),
    ):
        net = c(addressing.parse_ipv4_network_strict, merged.get(field), field, label)
        out[field] = net
    for field, label in (("tunnel_cidr6", "IPv6 tunnel range"), ("services_cidr6", "IPv6 services range")):
        raw = optional_text(merged.get(field))
        out[field] = c(addressing.parse_ula_range, raw, field, label) if raw is not None else None
    if out["services_cidr6"] is not None and optional_text(merged.get("tunnel_cidr6")) is None:
        c.errors.append(
            ValidationError("An IPv6 services range needs an IPv6 tunnel range; set that first.", "services_cidr6")
        )
    mgmt = c(text_list, merged.get("mgmt_cidrs"), "mgmt_cidrs") or []
    out["mgmt_cidrs"] = [
        str(n) for n in (c(addressing.parse_network_strict, m, "mgmt_cidrs", "Management CIDR") for m in mgmt) if n
    ]
    dns = c(text_list, merged.get("dns"), "dns") or []
    out["dns"] = [str(a) for a in (c(addressing.parse_address, d, "dns", "DNS server") for d in dns) if a]
    out["preshared_keys"] = c(as_bool, merged.get("preshared_keys"), "preshared_keys")
    c.check()
    for field in ("tunnel_cidr", "services_cidr", "nat_pool_cidr"):
        net = out[field]
        if net.prefixlen > 30 and field != "nat_pool_cidr":
            raise ValidationError(f"{net} is too small: use a /30 or larger range.", field)
    return out


def _check_name_free(name: str, wan_id: int | None) -> None:
    other = db.session.scalar(select(Wan.id).where(Wan.name == name, Wan.id != (wan_id or 0)))
    if other is not None:
        raise ConflictError(f"A WAN named '{name}' already exists; pick another name.", "name")


def _stored(value: Any) -> Any:
    return str(value) if isinstance(value, IPv4Network | IPv6Network) else value


def suggested_tunnel_cidr6() -> str:
    """A random /64 of fd00::/8 (RFC 4193) for the WAN form to offer."""
    return str(addressing.suggest_ula64(secrets.randbits(40)))


def create_wan(data: Mapping[str, Any]) -> Wan:
    if not data.get("interface_name"):
        # Unique per WAN, so one router can serve several WANs (each its own interface); WANs
        # created before keep the name they store.
        taken = db.session.scalars(select(Wan.interface_name)).all()
        name = str(data.get("name") or "").strip()
        data = {**data, "interface_name": default_interface_name(name, taken)}
    values = _parse(data, DEFAULTS)
    conflicts.check_wan_ranges(
        values["tunnel_cidr"],
        values["services_cidr"],
        values["nat_pool_cidr"],
        tunnel_cidr6=values["tunnel_cidr6"],
        services_cidr6=values["services_cidr6"],
    )
    _check_name_free(values["name"], None)
    wan = Wan(**{k: _stored(v) for k, v in values.items()})
    _sync_psk_seed(wan)
    db.session.add(wan)
    db.session.flush()
    audit.record_network("create", wan, f"WAN '{wan.name}' created", {"after": _summary(wan)})
    return wan


def update_wan(wan: Wan, data: Mapping[str, Any]) -> Wan:
    changes.touched(wan.id)
    before = _summary(wan)
    values = _parse(data, before)
    spec = wan_spec(wan)
    conflicts.check_wan_ranges(
        values["tunnel_cidr"],
        values["services_cidr"],
        values["nat_pool_cidr"],
        wan=spec,
        tunnel_cidr6=values["tunnel_cidr6"],
        services_cidr6=values["services_cidr6"],
    )
    _check_name_free(values["name"], wan.id)
    for key, value in values.items():
        setattr(wan, key, _stored(value))
    _sync_psk_seed(wan)
    if values["tunnel_cidr6"] != spec.tunnel_cidr6:
        _number_peers6(wan, spec, values["tunnel_cidr6"])
    audit.record_update(wan, f"WAN '{wan.name}'", before, _summary(wan))
    return wan


def _sync_psk_seed(wan: Wan) -> None:
    """PSKs on: a seed exists (kept across saves); off: no PSK secret is kept at all."""
    if wan.preshared_keys and wan.psk_seed_enc is None:
        wan.psk_seed_enc = crypto.encrypt(keys.generate_psk_seed())
    elif not wan.preshared_keys:
        wan.psk_seed_enc = None


def rotate_psks(wan: Wan) -> Wan:
    """Replace every pair's preshared key (a new seed); every peer with a tunnel turns stale."""
    if not wan.preshared_keys:
        raise ValidationError("This WAN has no preshared keys; turn the option on first.", "preshared_keys")
    changes.touched(wan.id)
    wan.psk_seed_enc = crypto.encrypt(keys.generate_psk_seed())
    audit.record_network("rotate-psks", wan, f"WAN '{wan.name}': every preshared key replaced")
    return wan


def _number_peers6(wan: Wan, spec: WanSpec, tunnel_cidr6: IPv6Network | None) -> None:
    """Give every peer an address in the new IPv6 tunnel range (or take them away), in the same
    transaction as the range itself: every config changes, so every peer goes stale."""
    lock_wan(wan.id)
    numbers = conflicts.number_peers6(spec, tunnel_cidr6) if tunnel_cidr6 is not None else {}
    for peer in wan.peers:
        addr = numbers.get(peer.id)
        peer.tunnel_ip6 = str(addr) if addr is not None else None


def delete_wan(wan: Wan) -> None:
    audit.record_network(
        "delete", wan, f"WAN '{wan.name}' deleted with {len(wan.peers)} peers", {"before": _summary(wan)}
    )
    db.session.delete(wan)
