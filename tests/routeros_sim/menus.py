"""Schemas of the RouterOS menus the simulator models.

A :class:`Menu` says which properties exist, which are writable, how values are
normalised, which exist only from/until some RouterOS version, and how rows are
validated against the rest of the router.  The mechanics (ids, ordering, print,
add/set/remove/move) live in :mod:`state`; only per-menu *rules* live here, so
adding a menu means adding a schema, not touching the engine.

Normalisers receive the raw API string and return the string RouterOS would
print back, raising ``ValueError`` for a bad value (-> ``invalid value for
argument <name>``).  Messages marked ⚠ in the reference are plausible, not
verified; callers should match them by substring (``already have``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import values as V
from .errors import RosError, bad_reference

if TYPE_CHECKING:
    from .state import RouterState

Row = dict[str, str]
Norm = Callable[[str], str]
Version = tuple[int, ...]


@dataclass(frozen=True)
class Field:
    """One property of a menu row."""

    name: str
    norm: Norm | None = None
    default: str | None = None
    read_only: bool = False
    write_only: bool = False  # accepted on add/set, never printed (user password)
    required: bool = False
    since: Version | None = None  # first version that has it
    until: Version | None = None  # first version that no longer has it
    volatile: bool = False  # counters/timestamps: dropped by normalized_dump()

    def available(self, version: Version) -> bool:
        if self.since is not None and version < self.since:
            return False
        return not (self.until is not None and version >= self.until)


@dataclass
class Menu:
    """Schema and rules of one menu path such as ``/interface/wireguard``."""

    path: str
    fields: dict[str, Field]
    singleton: bool = False
    can_add: bool = True
    can_remove: bool = True
    ordered: bool = False  # order is meaningful: place-before and move are supported
    name_ids: bool = False  # ``.id`` may be given as the row's name
    id_space: str = ""  # menus sharing an id space (interfaces) share .id values
    validate: Callable[[RouterState, Row, Row | None], None] | None = None
    computed: Callable[[RouterState, Row], Row] | None = None  # read-only values at print time
    extra_commands: dict[str, Version] = field(default_factory=dict)  # verb -> first version
    command_params: dict[str, frozenset[str]] = field(default_factory=dict)  # verb -> its parameters

    def __post_init__(self) -> None:
        if not self.id_space:
            self.id_space = self.path


def F(name: str, norm: Norm | None = None, **kw: object) -> Field:  # noqa: N802 - schema shorthand
    return Field(name, norm, **kw)  # type: ignore[arg-type]


def fields(*items: Field) -> dict[str, Field]:
    return {f.name: f for f in items}


def ro(name: str, **kw: object) -> Field:
    return Field(name, read_only=True, **kw)  # type: ignore[arg-type]


def port(value: str) -> str:
    return V.norm_int(value, 1, 65535)


def mtu(value: str) -> str:
    return V.norm_int(value, 68, 65535)


def distance(value: str) -> str:
    return V.norm_int(value, 0, 255)


def choice(*options: str) -> Norm:
    def norm(value: str) -> str:
        if value not in options:
            raise ValueError(value)
        return value

    return norm


def csv_of(*options: str) -> Norm:
    def norm(value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not all(p.lstrip("!") in options for p in parts):
            raise ValueError(value)
        return ",".join(parts)

    return norm


def name_norm(value: str) -> str:
    if value == "" or any(c in value for c in "\r\n\t"):
        raise ValueError(value)
    return value


BOOL = V.norm_bool
DUR = V.norm_duration


# --------------------------------------------------------------------------- keys


def generate_private_key() -> str:
    """A clamped Curve25519 private key, as ``wg genkey`` produces."""
    raw = bytearray(os.urandom(32))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode("ascii")


def derive_public_key(private_key: str) -> str:
    """The real X25519 public key, so tests can pair the sim with real WireGuard peers."""
    raw = base64.b64decode(private_key)
    pub = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(pub).decode("ascii")


# --------------------------------------------------------------------------- validators


def _require_interface(state: RouterState, value: str, prop: str, *, allow_negation: bool = False) -> None:
    name = value[1:] if allow_negation and value.startswith("!") else value
    if name not in state.interface_names():
        raise bad_reference(prop)


def _require_interface_list(state: RouterState, value: str, prop: str) -> None:
    name = value[1:] if value.startswith("!") else value
    if name not in {r["name"] for r in state.table("/interface/list")}:
        raise bad_reference(prop)


def _validate_wireguard(state: RouterState, row: Row, old: Row | None) -> None:
    if "private-key" not in row:
        row["private-key"] = generate_private_key()
        row["_generated-key"] = "true"
    elif old is None or old.get("private-key") != row["private-key"]:
        row.pop("_generated-key", None)
    row["public-key"] = derive_public_key(row["private-key"])
    if "listen-port" not in row:
        used = {r.get("listen-port") for r in state.table("/interface/wireguard")}
        port_no = 13231
        while str(port_no) in used:
            port_no += 1
        row["listen-port"] = str(port_no)
    renamed = old is None or old.get("name") != row["name"]
    if renamed and row["name"] in state.interface_names():
        raise RosError("failure: already have interface with such name")
    for other in state.table("/interface/wireguard"):
        if other.get(".id") != row.get(".id") and other.get("listen-port") == row["listen-port"]:
            raise RosError("failure: already have wireguard interface with such listen-port")  # ⚠ wording


def _validate_peer(state: RouterState, row: Row, old: Row | None) -> None:
    wg_names = {r["name"] for r in state.table("/interface/wireguard")}
    if row.get("interface") not in wg_names:
        raise bad_reference("interface")
    for other in state.table("/interface/wireguard/peers"):
        if other.get(".id") == row.get(".id") or other.get("interface") != row["interface"]:
            continue
        if other.get("public-key") == row.get("public-key"):
            raise RosError("failure: already have peer with such public key on this interface")  # ⚠ wording
        mine = set(row.get("allowed-address", "").split(",")) - {""}
        theirs = set(other.get("allowed-address", "").split(",")) - {""}
        if mine & theirs:
            # Identical prefixes on two peers of one interface cannot both be routed;
            # containment (a /24 and a /32 inside it) is legal WireGuard longest-prefix routing.
            raise RosError("failure: allowed-address overlaps with another peer")  # ⚠ wording


def _validate_address(state: RouterState, row: Row, old: Row | None) -> None:
    _require_interface(state, row.get("interface", ""), "interface")
    for other in state.table("/ip/address"):
        if (
            other.get(".id") != row.get(".id")
            and other.get("address") == row["address"]
            and other.get("interface") == row["interface"]
        ):
            raise RosError("failure: already have such address")


def _validate_address6(state: RouterState, row: Row, old: Row | None) -> None:
    _require_interface(state, row.get("interface", ""), "interface")
    if ":" not in row.get("address", ""):
        raise RosError("failure: invalid value for argument address")  # ⚠ wording
    for other in state.table("/ipv6/address"):
        if other.get(".id") != row.get(".id") and other.get("address") == row["address"]:
            raise RosError("failure: already have such address")


def _validate_route(state: RouterState, row: Row, old: Row | None) -> None:
    if row.get("gateway", "") == "" and row.get("blackhole") != "true":
        # v7 accepts a gateway-less route only as a blackhole.
        raise RosError("failure: gateway or blackhole must be set")  # ⚠ wording


def _validate_firewall(state: RouterState, row: Row, old: Row | None) -> None:
    for prop in ("in-interface", "out-interface"):
        if prop in row:
            _require_interface(state, row[prop], prop, allow_negation=True)
    for prop in ("in-interface-list", "out-interface-list"):
        if prop in row:
            _require_interface_list(state, row[prop], prop)
    if ("dst-port" in row or "src-port" in row) and row.get("protocol", "").lstrip("!") not in {
        "tcp",
        "udp",
        "udp-lite",
        "dccp",
        "sctp",
    }:
        raise RosError("failure: dst-port and src-port can be used only with tcp, udp, udp-lite, dccp, sctp")


def _validate_member(state: RouterState, row: Row, old: Row | None) -> None:
    _require_interface_list(state, row.get("list", ""), "list")
    _require_interface(state, row.get("interface", ""), "interface")
    for other in state.table("/interface/list/member"):
        if (
            other.get(".id") != row.get(".id")
            and other.get("list") == row["list"]
            and other.get("interface") == row["interface"]
        ):
            raise RosError("failure: already have such member")  # ⚠ wording


def _unique_name(message: str) -> Callable[[RouterState, Row, Row | None], None]:
    def check(state: RouterState, row: Row, old: Row | None) -> None:
        menu = state.current_menu_path
        for other in state.table(menu):
            if other.get(".id") != row.get(".id") and other.get("name") == row.get("name"):
                raise RosError(message)

    return check


def _validate_user(state: RouterState, row: Row, old: Row | None) -> None:
    _unique_name("failure: user with the same name already exists")(state, row, old)
    if row.get("group") not in {r["name"] for r in state.table("/user/group")}:
        raise bad_reference("group")


def _validate_interface_set(state: RouterState, row: Row, old: Row | None) -> None:
    if old is not None and old.get("name") != row.get("name") and row["name"] in state.interface_names():
        raise RosError("failure: already have interface with such name")


# --------------------------------------------------------------------------- computed values


def _compute_interface(state: RouterState, row: Row) -> Row:
    up = row.get("disabled") != "true"
    return {"running": "true" if up else "false", "actual-mtu": row.get("mtu", "1500")}


def _compute_wireguard(state: RouterState, row: Row) -> Row:
    return {"running": "false" if row.get("disabled") == "true" else "true"}


def _compute_peer(state: RouterState, row: Row) -> Row:
    return state.handshake_view(row)


def _compute_address(state: RouterState, row: Row) -> Row:
    iface = row.get("interface", "")
    valid = iface in state.interface_names()
    return {
        "network": str(V.norm_prefix(row["address"]).split("/")[0]),
        "actual-interface": iface if valid else "",
        "invalid": "false" if valid else "true",
    }


def _compute_route(state: RouterState, row: Row) -> Row:
    return state.route_view(row)


def _compute_address6(state: RouterState, row: Row) -> Row:
    iface = row.get("interface", "")
    valid = iface in state.interface_names()
    return {"actual-interface": iface if valid else "", "invalid": "false" if valid else "true"}


def _compute_route6(state: RouterState, row: Row) -> Row:
    """IPv6 routes: ``active`` = enabled, gateway an existing interface (our routes) or a
    blackhole, and best distance for its dst and table. No connected routes are modelled."""

    def usable(r: Row) -> bool:
        if r.get("disabled") == "true":
            return False
        return r.get("blackhole") == "true" or r.get("gateway", "") in state.interface_names()

    key = (row.get("routing-table", "main"), row.get("dst-address"))
    rivals = [
        r
        for r in state.tables["/ipv6/route"]
        if (r.get("routing-table", "main"), r.get("dst-address")) == key and usable(r)
    ]
    best = min((int(r.get("distance", "1")) for r in rivals), default=None)
    active = usable(row) and best is not None and int(row.get("distance", "1")) == best
    dynamic = row.get("dynamic") == "true"
    return {
        "active": "true" if active else "false",
        "inactive": "true" if (not active and row.get("disabled") != "true") else "false",
        "static": "false" if dynamic else "true",
        "dynamic": "true" if dynamic else "false",
    }


def _compute_firewall(state: RouterState, row: Row) -> Row:
    return {"invalid": "false"}


def _compute_file(state: RouterState, row: Row) -> Row:
    return {"size": str(len(row.get("contents", "").encode("utf-8")))}


def _compute_resource(state: RouterState, row: Row) -> Row:
    return {
        "version": f"{state.version} (stable)",
        "uptime": V.format_duration_ms(int(state.clock * 1000)),
    }


def _compute_scheduler(state: RouterState, row: Row) -> Row:
    out: Row = {}
    nxt = row.get("_next")
    if nxt is not None and row.get("disabled") != "true":
        out["next-run"] = V.format_duration_ms(int((float(nxt) - state.clock) * 1000)) + " from now"
    return out


# --------------------------------------------------------------------------- schemas

V7_12: Version = (7, 12)

FIREWALL_COMMON = (
    F("chain", name_norm, required=True),
    F("protocol"),
    F("src-address"),
    F("dst-address"),
    F("src-address-list"),
    F("dst-address-list"),
    F("src-port"),
    F("dst-port"),
    F("port"),
    F("in-interface"),
    F("out-interface"),
    F("in-interface-list"),
    F("out-interface-list"),
    F(
        "connection-state",
        csv_of("established", "related", "new", "invalid", "untracked"),
    ),
    F("connection-nat-state", csv_of("srcnat", "dstnat")),
    F("ipsec-policy"),
    F("comment"),
    F("disabled", BOOL, default="false"),
    F("log", BOOL, default="false"),
    F("log-prefix", default=""),
    F("jump-target"),
    ro("bytes", volatile=True),
    ro("packets", volatile=True),
    ro("invalid"),
    ro("dynamic"),
)

FILTER_ACTIONS = (
    "accept",
    "drop",
    "reject",
    "jump",
    "return",
    "passthrough",
    "log",
    "fasttrack-connection",
    "add-src-to-address-list",
    "add-dst-to-address-list",
    "tarpit",
)
NAT_ACTIONS = (
    "accept",
    "masquerade",
    "src-nat",
    "dst-nat",
    "netmap",
    "redirect",
    "same",
    "jump",
    "return",
    "passthrough",
    "log",
    "endpoint-independent-nat",
)


def build_menus() -> dict[str, Menu]:
    """All menus, keyed by path.  Built per router since nothing here is shared state."""
    menus = [
        Menu(
            "/system/resource",
            fields(
                ro("version"),
                ro("uptime", volatile=True),
                ro("board-name"),
                ro("architecture-name"),
                ro("platform"),
                ro("cpu"),
                ro("cpu-count"),
                ro("cpu-load", volatile=True),
                ro("free-memory", volatile=True),
                ro("total-memory"),
                ro("free-hdd-space", volatile=True),
                ro("total-hdd-space"),
            ),
            singleton=True,
            can_add=False,
            can_remove=False,
            computed=_compute_resource,
        ),
        Menu("/system/identity", fields(F("name", name_norm)), singleton=True, can_add=False, can_remove=False),
        Menu(
            "/interface",
            fields(
                F("name", name_norm),
                ro("type"),
                F("mtu", mtu),
                ro("actual-mtu"),
                ro("mac-address"),
                ro("running"),
                ro("default-name"),
                F("disabled", BOOL, default="false"),
                F("comment"),
                ro("dynamic"),
            ),
            can_add=False,
            can_remove=False,
            name_ids=True,
            id_space="interface",
            validate=_validate_interface_set,
            computed=_compute_interface,
        ),
        Menu(
            "/interface/list",
            fields(
                F("name", name_norm, required=True),
                F("include"),
                F("exclude"),
                F("comment"),
                ro("builtin"),
                ro("dynamic"),
            ),
            name_ids=True,
            validate=_unique_name("failure: already have interface list with such name"),  # ⚠
        ),
        Menu(
            "/interface/list/member",
            fields(
                F("list", required=True),
                F("interface", required=True),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("dynamic"),
            ),
            validate=_validate_member,
        ),
        Menu(
            "/interface/wireguard",
            fields(
                F("name", name_norm, required=True),
                F("listen-port", port),
                F("mtu", mtu, default="1420"),
                F("private-key", V.norm_wg_key),
                ro("public-key"),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("running"),
            ),
            name_ids=True,
            id_space="interface",
            validate=_validate_wireguard,
            computed=_compute_wireguard,
            extra_commands={"wg-import": (7, 19)},
            command_params={"wg-import": frozenset({"file", "config-string"})},
        ),
        Menu(
            "/interface/wireguard/peers",
            fields(
                F("interface", required=True),
                F("public-key", V.norm_wg_key, required=True),
                F("allowed-address", V.norm_prefix_list, required=True),
                F("endpoint-address"),
                F("endpoint-port", lambda v: V.norm_int(v, 0, 65535)),
                F("preshared-key", V.norm_wg_key),
                F("persistent-keepalive", DUR),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("current-endpoint-address", volatile=True),
                ro("current-endpoint-port", volatile=True),
                ro("last-handshake", volatile=True),
                ro("rx", volatile=True),
                ro("tx", volatile=True),
                ro("dynamic"),
                F("client-address", since=V7_12),
                F("client-dns", since=V7_12),
                F("client-endpoint", since=V7_12),
                F("client-keepalive", DUR, since=V7_12),
                F("client-listen-port", port, since=V7_12),
                F("name", since=(7, 15)),
                F("is-responder", BOOL, since=(7, 15), until=(7, 17)),
                F("responder", BOOL, since=(7, 17)),
                F("client-allowed-address", V.norm_prefix_list, since=(7, 21)),
            ),
            validate=_validate_peer,
            computed=_compute_peer,
        ),
        Menu(
            "/ip/address",
            fields(
                F("address", V.norm_interface_address, required=True),
                ro("network"),
                F("interface", required=True),
                ro("actual-interface"),
                ro("invalid"),
                ro("dynamic"),
                F("disabled", BOOL, default="false"),
                F("comment"),
            ),
            validate=_validate_address,
            computed=_compute_address,
        ),
        Menu(
            "/ip/route",
            fields(
                F("dst-address", V.norm_prefix, default="0.0.0.0/0"),
                F("gateway"),
                F("distance", distance, default="1"),
                F("routing-table", name_norm, default="main"),
                F("scope", lambda v: V.norm_int(v, 0, 255), default="30"),
                F("target-scope", lambda v: V.norm_int(v, 0, 255), default="10"),
                F("pref-src"),
                F("check-gateway", choice("arp", "bfd", "bfd-multihop", "ping", "none")),
                F("blackhole", BOOL),
                F("vrf-interface"),
                F("suppress-hw-offload", BOOL, default="false"),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("active"),
                ro("dynamic"),
                ro("static"),
                ro("connect"),
                ro("inactive"),
                ro("ecmp"),
                ro("dhcp"),
                ro("immediate-gw"),
            ),
            validate=_validate_route,
            computed=_compute_route,
        ),
        Menu(
            "/ip/firewall/filter",
            fields(
                *FIREWALL_COMMON,
                F("action", choice(*FILTER_ACTIONS), default="accept"),
                F("reject-with"),
                F("hw-offload", BOOL),
            ),
            ordered=True,
            validate=_validate_firewall,
            computed=_compute_firewall,
        ),
        Menu(
            "/ip/firewall/nat",
            fields(
                *FIREWALL_COMMON,
                F("action", choice(*NAT_ACTIONS), default="accept"),
                F("to-addresses"),
                F("to-ports"),
            ),
            ordered=True,
            validate=_validate_firewall,
            computed=_compute_firewall,
        ),
        Menu(
            "/ipv6/address",
            fields(
                F("address", V.norm_interface_address, required=True),
                F("interface", required=True),
                F("advertise", BOOL, default="true"),
                F("eui-64", BOOL, default="false"),
                F("no-dad", BOOL, default="false"),
                F("from-pool"),
                ro("actual-interface"),
                ro("invalid"),
                ro("dynamic"),
                F("disabled", BOOL, default="false"),
                F("comment"),
            ),
            validate=_validate_address6,
            computed=_compute_address6,
        ),
        Menu(
            "/ipv6/route",
            fields(
                F("dst-address", V.norm_prefix, default="::/0"),
                F("gateway"),
                F("distance", distance, default="1"),
                F("routing-table", name_norm, default="main"),
                F("scope", lambda v: V.norm_int(v, 0, 255), default="30"),
                F("target-scope", lambda v: V.norm_int(v, 0, 255), default="10"),
                F("check-gateway", choice("bfd", "bfd-multihop", "ping", "none")),
                F("blackhole", BOOL),
                F("vrf-interface"),
                F("suppress-hw-offload", BOOL, default="false"),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("active"),
                ro("dynamic"),
                ro("static"),
                ro("inactive"),
            ),
            validate=_validate_route,
            computed=_compute_route6,
        ),
        Menu(
            "/ipv6/firewall/filter",
            fields(
                *FIREWALL_COMMON,
                F("action", choice(*FILTER_ACTIONS), default="accept"),
                F("reject-with"),
                F("hop-limit"),
            ),
            ordered=True,
            validate=_validate_firewall,
            computed=_compute_firewall,
        ),
        Menu(
            "/ipv6/firewall/address-list",
            fields(
                F("list", required=True),
                F("address", required=True),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("dynamic"),
            ),
        ),
        Menu(
            "/ip/service",
            fields(
                ro("name"),
                F("port", port),
                F("address", V.norm_prefix_list, default=""),
                F("certificate"),
                F("tls-version", choice("any", "only-1.2", "only-1.3")),
                F("vrf", default="main"),
                F("max-sessions", lambda v: V.norm_int(v, 1, 1000)),
                F("disabled", BOOL, default="false"),
                ro("invalid"),
            ),
            can_add=False,
            can_remove=False,
            name_ids=True,
        ),
        Menu(
            "/user",
            fields(
                F("name", name_norm, required=True),
                F("group", required=True),
                F("password", write_only=True),
                F("address", V.norm_prefix_list, default=""),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("last-logged-in", volatile=True),
            ),
            name_ids=True,
            validate=_validate_user,
        ),
        Menu(
            "/user/group",
            fields(F("name", name_norm, required=True), F("policy"), F("skin", default="default"), F("comment")),
            name_ids=True,
            validate=_unique_name("failure: group with the same name already exists"),  # ⚠
        ),
        Menu(
            "/file",
            fields(
                F("name", name_norm, required=True),
                ro("type"),
                ro("size"),
                ro("creation-time", volatile=True),
                F("contents", default=""),
            ),
            name_ids=True,
            validate=_unique_name("failure: file already exists"),  # ⚠
            computed=_compute_file,
        ),
        Menu(
            "/system/scheduler",
            fields(
                F("name", name_norm, required=True),
                F("start-date"),
                F("start-time", default="startup"),
                F("interval", DUR, default="0s"),
                F("on-event", default=""),
                F("policy"),
                F("comment"),
                F("disabled", BOOL, default="false"),
                ro("owner"),
                ro("run-count", volatile=True),
                ro("next-run", volatile=True),
            ),
            name_ids=True,
            validate=_unique_name("failure: item with such name already exists"),  # ⚠
            computed=_compute_scheduler,
        ),
        Menu(
            "/system/script",
            fields(
                F("name", name_norm, required=True),
                F("source", default=""),
                F("policy"),
                F("dont-require-permissions", BOOL, default="false"),
                F("comment"),
                ro("owner"),
                ro("run-count", volatile=True),
                ro("last-started", volatile=True),
            ),
            name_ids=True,
            validate=_unique_name("failure: item with such name already exists"),  # ⚠
            extra_commands={"run": (0,)},
        ),
        # Not a real table: only its save/load commands (used by commit-confirmed rollback).
        Menu(
            "/system/backup",
            {},
            can_add=False,
            can_remove=False,
            extra_commands={"save": (0,), "load": (0,)},
            command_params={
                "save": frozenset({"name", "password", "dont-encrypt"}),
                "load": frozenset({"name", "password"}),
            },
        ),
    ]
    return {m.path: m for m in menus}
