"""Field validators and the peer guardrails (endpoint port, management host).

Every validator takes the raw value (form text or a JSON value of any type), returns the clean
value or raises :class:`ValidationError` / :class:`GuardrailError` naming the field. Strict-charset
fields (names, usernames) are never trimmed: a space is reported, not silently dropped. Address
fields (hosts, endpoints) and the WAN display name are trimmed of surrounding ASCII spaces only,
because those are commonly pasted; any other whitespace (tab, newline, NUL) is refused.

Messages never echo a value that failed the length or control-character checks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import TypeVar

from app.domain.errors import GuardrailError, ValidationError
from app.domain.model import (
    PEER_KINDS,
    PROTOCOLS,
    TOPOLOGIES,
    PeerKind,
    Protocol,
    Topology,
)

PEER_NAME_MAX = 48
SERVICE_NAME_MAX = 32
INTERFACE_NAME_MAX = 15
USERNAME_MAX = 32
PASSWORD_MAX = 128
WAN_NAME_MAX = 64
HOST_MAX = 253
ENDPOINT_MAX = 300

MTU_MIN = 1280  # the IPv6 minimum; WireGuard carries IPv6 too
MTU_MAX = 9000

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9._-]")
_HOST_BAD_CHAR = re.compile(r"[^A-Za-z0-9.-]")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DIGITS = re.compile(r"[0-9]+")
_NUMERIC_DOTTED = re.compile(r"[0-9.]+")

_NAME_RULE = "letters A-Z and a-z, digits, '.', '_' and '-'"

_LOCKOUT_TAIL = (
    "WireWAN would manage the router through the tunnel itself, so any deploy that disturbs the "
    "tunnel (key rotation, listen-port change, firewall rebuild) cuts the management connection and "
    "locks WireWAN out; the only way back in is on site or via another tunnel. Use the router's LAN "
    "gateway IP (e.g. 192.168.1.1) or its public IP / DDNS hostname instead."
)


# --- text primitives (also used by addressing and keys) ----------------------------------------


def require_text(value: object, field: str, label: str, max_len: int, *, strip: bool = False) -> str:
    """Type, presence, length and control-character checks shared by every text field."""
    if not isinstance(value, str):
        raise ValidationError(f"{label} must be text.", field)
    if strip:
        value = value.strip(" ")
    if not value:
        raise ValidationError(f"{label} is required.", field)
    if len(value) > max_len:
        raise ValidationError(f"{label} is too long ({len(value)} characters); at most {max_len} are allowed.", field)
    if not value.isprintable():
        raise ValidationError(
            f"{label} contains a control or invisible character (such as a newline, tab or NUL); remove it.",
            field,
        )
    return value


def _charset_name(value: object, field: str, label: str, max_len: int) -> str:
    text = require_text(value, field, label, max_len)
    if not _NAME_CHARS.fullmatch(text):
        bad = _NAME_BAD_CHAR.search(text)
        assert bad is not None
        raise ValidationError(f"{label} may only contain {_NAME_RULE}; found {bad.group()!r}.", field)
    if text in (".", ".."):
        # Names become file names (peer .conf) and interface names; '.'/'..' are never valid there.
        raise ValidationError(f"{label} cannot be '.' or '..'.", field)
    return text


# --- names -------------------------------------------------------------------------------------


def validate_peer_name(value: object, field: str = "name") -> str:
    """`[A-Za-z0-9._-]{1,48}`: the name appears in config file names and router comments."""
    return _charset_name(value, field, "Peer name", PEER_NAME_MAX)


def validate_service_name(value: object, field: str = "name") -> str:
    """`[A-Za-z0-9._-]{1,32}`: the name appears in router rule comments."""
    return _charset_name(value, field, "Service name", SERVICE_NAME_MAX)


def validate_interface_name(value: object, field: str = "interface_name") -> str:
    """`[A-Za-z0-9._-]{1,15}`: Linux limits interface names to 15 bytes (IFNAMSIZ - 1)."""
    return _charset_name(value, field, "Interface name", INTERFACE_NAME_MAX)


def validate_username(value: object, field: str = "mikrotik_username") -> str:
    """RouterOS API user name, `[A-Za-z0-9._-]{1,32}`."""
    return _charset_name(value, field, "Router username", USERNAME_MAX)


def validate_wan_name(value: object, field: str = "name") -> str:
    """A friendly display name: 1-64 printable characters, any script, quotes allowed.

    It is only ever shown (HTML-escaped) in pages and API answers; it never reaches a config
    file, script or router comment, so no charset restriction is needed beyond printability.
    """
    return require_text(value, field, "WAN name", WAN_NAME_MAX, strip=True)


def validate_password(value: object, field: str = "mikrotik_password") -> str:
    """RouterOS password: 1-128 printable ASCII characters; quotes and `$` allowed (escaped later).

    Non-ASCII is refused: RouterOS scripts and its terminal do not handle it reliably, and a
    password that survives the API but not the bootstrap script would lock the user out.
    """
    text = require_text(value, field, "Router password", PASSWORD_MAX)
    for ch in text:
        if not " " <= ch <= "~":
            raise ValidationError(
                "Router password may only contain printable ASCII characters (RouterOS does not "
                f"handle other characters reliably in scripts); found {ch!r}.",
                field,
            )
    return text


# --- numbers -----------------------------------------------------------------------------------


def validate_int(value: object, field: str, label: str, low: int, high: int) -> int:
    """A whole number in [low, high], given as an int or as decimal ASCII digits."""
    message = f"{label} must be a whole number from {low} to {high}."
    if isinstance(value, bool):
        raise ValidationError(message, field)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        # Length first: int() of a 10 kB digit string raises (and would be slow anyway).
        if len(value) > 10 or not _DIGITS.fullmatch(value):
            raise ValidationError(message, field)
        number = int(value)
    else:
        raise ValidationError(message, field)
    if not low <= number <= high:
        raise ValidationError(message, field)
    return number


def validate_port(value: object, field: str = "listen_port", label: str = "Listen port") -> int:
    """A UDP/TCP port, 1-65535."""
    return validate_int(value, field, label, 1, 65535)


def validate_keepalive(value: object, field: str = "keepalive") -> int:
    """PersistentKeepalive seconds, 0 (off) to 65535."""
    return validate_int(value, field, "Keepalive", 0, 65535)


def validate_mtu(value: object, field: str = "mtu") -> int:
    """Interface MTU, 1280-9000."""
    return validate_int(value, field, "MTU", MTU_MIN, MTU_MAX)


# --- choices -----------------------------------------------------------------------------------

_C = TypeVar("_C", bound=str)


def _choice(value: object, choices: tuple[_C, ...], field: str, label: str) -> _C:
    for choice in choices:
        if value == choice:
            return choice
    listed = ", ".join(choices)
    raise ValidationError(f"{label} must be one of: {listed}.", field)


def validate_kind(value: object, field: str = "kind") -> PeerKind:
    return _choice(value, PEER_KINDS, field, "Peer type")


def validate_topology(value: object, field: str = "topology") -> Topology:
    return _choice(value, TOPOLOGIES, field, "Topology")


def validate_protocol(value: object, field: str = "protocol") -> Protocol:
    return _choice(value, PROTOCOLS, field, "Protocol")


# --- hosts and endpoints -----------------------------------------------------------------------


def _ipv6_literal(text: str, field: str, label: str, hint: str = "") -> str:
    if "%" in text:
        raise ValidationError(f"{label} '{text}': IPv6 zone ids (%...) are not supported.", field)
    try:
        addr = IPv6Address(text)
    except ValueError:
        raise ValidationError(f"{label} '{text}' is not a valid IPv6 address.{hint}", field) from None
    if addr.is_unspecified:
        raise ValidationError(f"{label} cannot be the unspecified address {addr}.", field)
    return str(addr)


def validate_host(value: object, field: str = "mikrotik_host", label: str = "Management host") -> str:
    """An RFC 1123 hostname, an IPv4 literal or an IPv6 literal (brackets optional).

    Returns the hostname as typed, or the IP literal in canonical form (IPv6 without brackets).
    """
    text = require_text(value, field, label, HOST_MAX, strip=True)
    if text.startswith("[") and text.endswith("]"):
        return _ipv6_literal(text[1:-1], field, label)
    if ":" in text:
        return _ipv6_literal(text, field, label)
    bad = _HOST_BAD_CHAR.search(text)
    if bad is not None:
        raise ValidationError(
            f"{label} may only contain letters, digits, '-' and '.' (or be an IP address); found {bad.group()!r}.",
            field,
        )
    if _NUMERIC_DOTTED.fullmatch(text):
        # All-numeric dotted text is meant as an IPv4 address (RFC 1123 2.1), never a hostname.
        try:
            addr4 = IPv4Address(text)
        except ValueError:
            raise ValidationError(f"{label} '{text}' is not a valid IPv4 address.", field) from None
        if addr4.is_unspecified:
            raise ValidationError(f"{label} cannot be the unspecified address 0.0.0.0.", field)
        return str(addr4)
    if not all(_HOST_LABEL.fullmatch(part) for part in text.split(".")):
        raise ValidationError(
            f"{label} '{text}' is not a valid hostname: each dot-separated label must be 1-63 "
            "characters and cannot start or end with '-'.",
            field,
        )
    return text


def parse_endpoint(text: object, listen_port: int, field: str = "endpoint") -> tuple[str, int] | None:
    """Parse `host:port`, `[v6]:port`, `host` or a bare IPv6 literal; None/empty means CGNAT.

    Without a port the peer's listen port is used. The host comes back unbracketed.
    """
    if text is None:
        return None
    if isinstance(text, str) and not text.strip(" "):
        return None
    raw = require_text(text, field, "Endpoint", ENDPOINT_MAX, strip=True)
    v6_hint = " To give a port with an IPv6 address write [address]:port, e.g. [2001:db8::1]:51820."
    if raw.startswith("["):
        close = raw.find("]")
        rest = raw[close + 1 :] if close != -1 else ""
        if close == -1 or (rest and not rest.startswith(":")):
            raise ValidationError(
                f"Endpoint '{raw}' is malformed: write an IPv6 endpoint as [address]:port, e.g. [2001:db8::1]:51820.",
                field,
            )
        inner = raw[1:close]
        if not inner or ":" not in inner:
            raise ValidationError(
                f"Endpoint '{raw}': only IPv6 addresses go in brackets; write an IPv4 address or "
                "a hostname without them.",
                field,
            )
        host = _ipv6_literal(inner, field, "Endpoint host")
        if not rest:
            return host, listen_port
        return host, _endpoint_port(rest[1:], raw, listen_port, field)
    if raw.count(":") >= 2:
        return _ipv6_literal(raw, field, "Endpoint", v6_hint), listen_port
    if ":" in raw:
        host_text, port_text = raw.split(":")
        port = _endpoint_port(port_text, raw, listen_port, field)
        return validate_host(host_text, field, "Endpoint host"), port
    return validate_host(raw, field, "Endpoint host"), listen_port


def _endpoint_port(port_text: str, raw: str, listen_port: int, field: str) -> int:
    if not port_text:
        raise ValidationError(
            f"Endpoint '{raw}' ends with ':' but has no port; write host:port, e.g. "
            f"vpn.example.com:51820, or just the host to use the listen port {listen_port}.",
            field,
        )
    return validate_port(port_text, field, "Endpoint port")


# --- guardrails --------------------------------------------------------------------------------


def check_endpoint_port(
    endpoint_port: int | None, listen_port: int, has_port_forward: bool, field: str = "endpoint"
) -> None:
    """Refuse an endpoint port that differs from the listen port unless a port-forward translates it."""
    if endpoint_port is None or endpoint_port == listen_port or has_port_forward:
        return
    raise GuardrailError(
        f"Endpoint port {endpoint_port} differs from listen port {listen_port}. Other peers would "
        f"send their handshakes to port {endpoint_port} while this peer listens on {listen_port}: "
        "the packets land on the wrong WireGuard interface or are dropped by the firewall, and the "
        "tunnel silently never comes up (last-handshake = never). Use port "
        f"{listen_port} in the endpoint, or tick 'Has port-forward upstream' if a NAT box upstream "
        f"translates external port {endpoint_port} to internal port {listen_port}.",
        field,
    )


def check_management_host(
    host: str, tunnel_ip: IPv4Address, tunnel_cidr: IPv4Network, field: str = "mikrotik_host"
) -> None:
    """Refuse a management host equal to the tunnel IP or inside the tunnel range (lock-out).

    Hostnames cannot be checked without DNS and are accepted.
    """
    try:
        addr = ip_address(host.strip(" []"))
    except ValueError:
        return
    if addr == tunnel_ip:
        raise GuardrailError(f"Management host {addr} is this peer's tunnel IP. {_LOCKOUT_TAIL}", field)
    if addr.version == 4 and addr in tunnel_cidr:
        raise GuardrailError(
            f"Management host {addr} is inside the WAN's tunnel range {tunnel_cidr}. {_LOCKOUT_TAIL}",
            field,
        )


def parse_expiry(value: object, field: str = "expires_at") -> datetime:
    """An ISO 8601 date-time (`2027-01-31T18:00`, with `Z` or an offset; none means UTC), as naive UTC."""
    text = require_text(value, field, "Expiry", 40, strip=True)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"Expiry {text!r} is not an ISO 8601 date and time, e.g. 2027-01-31T18:00Z.", field
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
