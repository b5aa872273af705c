"""The WAN document of export and import (../shared/API.md): its format, its encryption, its checks.

A document is one JSON object::

    {"format": "wirewan-wan", "version": 1, "exported_at": "...Z",
     "wan": {...settings...}, "peers": [{...settings, subnets, services...}],
     "secrets": "scrypt$<n>$<r>$<p>$<salt>$<nonce>$<ciphertext>"}

`secrets` holds the private keys, router passwords and the WAN's preshared-key seed, as JSON
encrypted with AES-256-GCM under a key derived from the passphrase by scrypt (memory-hard). Every
other member is the GCM associated data (canonical JSON), so a changed document fails to open just as
a wrong passphrase does: either way nothing is imported. Values are then checked with the same
validators as the forms, so a hand-made document cannot smuggle text into a config.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from app.domain import addressing, keys, validation
from app.domain.errors import ValidationError

FORMAT = "wirewan-wan"
VERSION = 1
PASSPHRASE_MIN = 12
# scrypt cost: 2**15 × 8 × 128 B = 32 MiB and ~0.1 s per attempt. Documents may state more, up to a
# bound (a hostile document must not make the server allocate gigabytes).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
SCRYPT_N_MAX = 1 << 17
SCRYPT_R_MAX = 16
SCRYPT_P_MAX = 4
_SEALED_PREFIX = "scrypt"


class DocumentError(ValidationError):
    """The document cannot be imported: malformed, wrong passphrase or changed (HTTP 422)."""

    default_code = "bad_document"


def check_passphrase(value: object, field: str = "passphrase") -> str:
    if not isinstance(value, str) or len(value) < PASSPHRASE_MIN:
        raise ValidationError(f"The passphrase must be at least {PASSPHRASE_MIN} characters long.", field)
    if len(value) > 1024:
        raise ValidationError("The passphrase is longer than 1024 characters.", field)
    return value


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal(body: Mapping[str, Any], secrets: Mapping[str, Any], passphrase: str) -> dict[str, Any]:
    """The document: `body` (format, version, exported_at, wan, peers) plus `secrets` encrypted."""
    check_passphrase(passphrase)
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _kdf(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, _canonical(secrets), _canonical(body))
    sealed = "$".join(
        (_SEALED_PREFIX, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(nonce), _b64(ciphertext))
    )
    return {**body, "secrets": sealed}


def unseal(document: object, passphrase: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body, secrets) of a document; DocumentError when it is not one, was changed, or the
    passphrase is wrong (the last two are indistinguishable by design)."""
    phrase = check_passphrase(passphrase)
    if not isinstance(document, dict):
        raise DocumentError("The document must be a JSON object (as exported).", "document")
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise DocumentError(f"Not a WireWAN WAN document ({FORMAT}, version {VERSION}).", "document")
    sealed = document.get("secrets")
    parts = sealed.split("$") if isinstance(sealed, str) else []
    try:
        if len(parts) != 7 or parts[0] != _SEALED_PREFIX:
            raise ValueError
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, nonce, ciphertext = _unb64(parts[4]), _unb64(parts[5]), _unb64(parts[6])
        if not (1 < n <= SCRYPT_N_MAX and n & (n - 1) == 0 and 0 < r <= SCRYPT_R_MAX and 0 < p <= SCRYPT_P_MAX):
            raise ValueError
        if len(salt) < 16 or len(nonce) != 12:
            raise ValueError
    except (ValueError, binascii.Error):
        raise DocumentError("The document's secrets are not in the exported form.", "document") from None
    body = {k: v for k, v in document.items() if k != "secrets"}
    try:
        plain = AESGCM(_kdf(phrase, salt, n, r, p)).decrypt(nonce, ciphertext, _canonical(body))
    except InvalidTag:
        raise DocumentError(
            "Wrong passphrase, or the document was changed since it was exported. Nothing was imported.",
            "passphrase",
        ) from None
    secrets = json.loads(plain)
    if not isinstance(secrets, dict):
        raise DocumentError("The document's secrets are not in the exported form.", "document")
    return body, secrets


# --- checking what a document holds ---------------------------------------------------------------


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DocumentError(f"{where} must be an object.", "document")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DocumentError(f"{where} must be a list.", "document")
    return value


def _opt(fn: Any, value: object, *args: Any) -> Any:
    return None if value is None else fn(value, *args)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise DocumentError(f"{where} must be true or false.", "document")
    return value


def _int_or_none(value: object, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 31:
        raise DocumentError(f"{where} must be a non-negative integer.", "document")
    return value


def check_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The WAN and peers of an opened document with every value checked by the form validators
    (a ValidationError names the field), normalised as the services store them."""
    wan = _obj(body.get("wan"), "wan")
    out_wan = {
        "name": validation.validate_wan_name(wan.get("name")),
        "tunnel_cidr": str(addressing.parse_ipv4_network_strict(wan.get("tunnel_cidr"), "tunnel_cidr", "Tunnel range")),
        "services_cidr": str(
            addressing.parse_ipv4_network_strict(wan.get("services_cidr"), "services_cidr", "Services range")
        ),
        "nat_pool_cidr": str(addressing.parse_ipv4_network_strict(wan.get("nat_pool_cidr"), "nat_pool_cidr", "NAT")),
        "topology": validation.validate_topology(wan.get("topology")),
        "interface_name": validation.validate_interface_name(wan.get("interface_name")),
        "listen_port": validation.validate_port(wan.get("listen_port")),
        "keepalive": validation.validate_keepalive(wan.get("keepalive")),
        "mtu": validation.validate_mtu(wan.get("mtu")),
        "mgmt_cidrs": [
            str(addressing.parse_network_strict(c, "mgmt_cidrs", "Management CIDR"))
            for c in _list(wan.get("mgmt_cidrs", []), "wan.mgmt_cidrs")
        ],
        "dns": [str(addressing.parse_address(a, "dns", "DNS server")) for a in _list(wan.get("dns", []), "wan.dns")],
        "preshared_keys": _bool(wan.get("preshared_keys", False), "wan.preshared_keys"),
        "tunnel_cidr6": _ula(wan.get("tunnel_cidr6"), "tunnel_cidr6", "IPv6 tunnel range"),
        "services_cidr6": _ula(wan.get("services_cidr6"), "services_cidr6", "IPv6 services range"),
    }
    peers = []
    names: set[str] = set()
    for i, raw in enumerate(_list(body.get("peers"), "peers")):
        where = f"peers[{i}]"
        p = _obj(raw, where)
        name = validation.validate_peer_name(p.get("name"))
        if name in names:
            raise DocumentError(f"{where}: the name '{name}' appears twice.", "document")
        names.add(name)
        listen_port = validation.validate_port(p.get("listen_port"))
        endpoint_host = _opt(validation.validate_host, p.get("endpoint_host"), "endpoint", "Endpoint host")
        peer = {
            "id": _int_or_none(p.get("id"), f"{where}.id"),
            "uuid": _uuid(p.get("uuid"), where),
            "name": name,
            "kind": validation.validate_kind(p.get("kind")),
            "is_hub": _bool(p.get("is_hub", False), f"{where}.is_hub"),
            "hub_priority": _opt(
                validation.validate_int, p.get("hub_priority"), "hub_priority", "Hub priority", 0, 1000
            ),
            "tunnel_ip": str(addressing.parse_ipv4_address(p.get("tunnel_ip"), "tunnel_ip", "Tunnel IP")),
            "tunnel_ip6": _opt(
                lambda v: str(addressing.parse_ipv6_address(v, "tunnel_ip6", "Tunnel IPv6")), p.get("tunnel_ip6")
            ),
            "listen_port": listen_port,
            "endpoint_host": endpoint_host,
            "endpoint_port": _opt(validation.validate_port, p.get("endpoint_port"), "endpoint", "Endpoint port"),
            "has_port_forward": _bool(p.get("has_port_forward", False), f"{where}.has_port_forward"),
            "keepalive": _opt(validation.validate_keepalive, p.get("keepalive")),
            "public_key": keys.validate_public_key(p.get("public_key")),
            "enabled": _bool(p.get("enabled", True), f"{where}.enabled"),
            "expires_at": _opt(validation.parse_expiry, p.get("expires_at")),
            "applied_config_hash": _hash_or_none(p.get("applied_config_hash"), where),
            "mikrotik": None,
            "subnets": [],
            "services": [],
        }
        mt = p.get("mikrotik")
        if mt is not None and peer["kind"] == "mikrotik":
            m = _obj(mt, f"{where}.mikrotik")
            peer["mikrotik"] = {
                "host": _opt(validation.validate_host, m.get("host")),
                "port": validation.validate_port(m.get("port"), "mikrotik_port", "API port"),
                "use_tls": _bool(m.get("use_tls", False), f"{where}.mikrotik.use_tls"),
                "verify_cert": _bool(m.get("verify_cert", False), f"{where}.mikrotik.verify_cert"),
                "username": validation.validate_username(m.get("username")),
                "auto_deploy": _bool(m.get("auto_deploy", False), f"{where}.mikrotik.auto_deploy"),
            }
        for j, s in enumerate(_list(p.get("subnets", []), f"{where}.subnets")):
            s = _obj(s, f"{where}.subnets[{j}]")
            peer["subnets"].append(
                {
                    "id": _int_or_none(s.get("id"), f"{where}.subnets[{j}].id"),
                    "cidr": str(addressing.parse_network_strict(s.get("cidr"))),
                    "routed": _bool(s.get("routed", True), f"{where}.subnets[{j}].routed"),
                    "nat_cidr": _opt(
                        lambda v: str(addressing.parse_network_strict(v, "nat_cidr", "NAT")), s.get("nat_cidr")
                    ),
                }
            )
        for j, v in enumerate(_list(p.get("services", []), f"{where}.services")):
            v = _obj(v, f"{where}.services[{j}]")
            peer["services"].append(
                {
                    "id": _int_or_none(v.get("id"), f"{where}.services[{j}].id"),
                    "name": validation.validate_service_name(v.get("name")),
                    "protocol": validation.validate_protocol(v.get("protocol")),
                    "local_ip": str(addressing.parse_address(v.get("local_ip"), "local_ip", "Local IP")),
                    "local_port": validation.validate_port(v.get("local_port"), "local_port", "Local port"),
                    "shared_ip": str(addressing.parse_ipv4_address(v.get("shared_ip"), "shared_ip", "Shared IP")),
                    "shared_port": validation.validate_port(v.get("shared_port"), "shared_port", "Shared port"),
                }
            )
        peers.append(peer)
    return {"wan": out_wan, "peers": peers}


def check_secrets(secrets: Mapping[str, Any], peers: list[dict[str, Any]]) -> dict[str, Any]:
    """The decrypted secrets, checked: each private key must match its peer's public key."""
    by_uuid = _obj(secrets.get("peers", {}), "secrets.peers")
    out: dict[str, Any] = {"psk_seed": None, "peers": {}}
    seed = secrets.get("psk_seed")
    if seed is not None:
        if not isinstance(seed, str) or len(_unb64(seed)) != 32:
            raise DocumentError("The preshared-key seed is not 32 bytes of base64.", "document")
        out["psk_seed"] = seed
    for peer in peers:
        got = _obj(by_uuid.get(peer["uuid"], {}), "secrets.peers[]")
        private = got.get("private_key")
        if private is not None and keys.public_from_private(private) != peer["public_key"]:
            raise DocumentError(f"The private key of peer '{peer['name']}' does not match its public key.", "document")
        password = _opt(validation.validate_password, got.get("mikrotik_password"))
        out["peers"][peer["uuid"]] = {"private_key": private, "mikrotik_password": password}
    return out


def _ula(value: object, field: str, label: str) -> str | None:
    return None if value is None else str(addressing.parse_ula_range(value, field, label))


def _uuid(value: object, where: str) -> str:
    text = value if isinstance(value, str) else ""
    if len(text) != 36 or any(c not in "0123456789abcdef-" for c in text):
        raise DocumentError(f"{where}.uuid is not a lowercase UUID.", "document")
    return text


def _hash_or_none(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise DocumentError(f"{where}.applied_config_hash is not a SHA-256 hex digest.", "document")
    return value
