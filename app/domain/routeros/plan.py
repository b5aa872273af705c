"""Diff the desired state against a router's live rows into an ordered, minimal API plan.

Rules (DESIGN.md §6): unchanged resources are skipped; changed rows are `set` in place with only the
changed properties (WireGuard sessions survive); missing ones are added, accept rules placed before the
first drop rule of their chain; tagged rows that are no longer desired are removed; untagged rows are
never touched, except the demotion of shadowing static routes (distance → 11, the original recorded).
Adds and sets come before removes, in bootstrap-step order (the interface before its peers and
addresses), so nothing the management path uses disappears before its replacement exists. The one
exception: a stale peer entry that holds a public key or allowed-address a new entry needs is removed
right before that entry is added (RouterOS keeps both unique per interface).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import ip_address, ip_network
from typing import Literal

from app.domain.addressing import cached_network
from app.domain.model import IPAddress, IPNetwork
from app.domain.routeros.desired import (
    LIST_PROPS,
    RESET_DEFAULTS,
    ROUTE_MENUS,
    SECRET_PROPS,
    STEP_OF_MENU,
    TAGGED_MENUS,
    WG,
    WG_PEERS,
    DesiredState,
    Resource,
    fmt_duration,
    is_legacy_tag,
    is_managed_comment,
    legacy_key,
    managed_key,
)
from app.domain.routeros.escape import render_value

Row = Mapping[str, str]
ActualState = Mapping[str, Sequence[Row]]
Action = Literal["add", "set", "remove", "move"]

MASK = "***"
# Values written quoted even when they would be safe bare: they are (or may be) user text.
FORCE_QUOTE = frozenset({"comment", "public-key", "private-key", "password", "endpoint-address"})
DURATION_PROPS = frozenset({"persistent-keepalive"})
BOOL_PROPS = frozenset({"disabled", "dynamic", "invalid", "running", "active", "static", "connect", "advertise"})
_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")


# ---------------------------------------------------------------- reading the router


def parse_duration(text: str) -> int | None:
    """Seconds in a RouterOS duration (`25s`, `2m3s`, `1d2h`, `00:00:25`, `25`); None if unparsable."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if re.fullmatch(r"\d+:\d{2}:\d{2}", text):
        h, m, s = (int(x) for x in text.split(":"))
        return h * 3600 + m * 60 + s
    m2 = _DURATION.fullmatch(text)
    if not text or m2 is None:
        return None
    w, d, h, mi, s, _ms = (int(g) if g else 0 for g in m2.groups())
    return w * 604800 + d * 86400 + h * 3600 + mi * 60 + s


def _sort_list(text: str) -> str:
    items = [x.strip() for x in text.split(",") if x.strip()]
    nets: list[IPNetwork] = []
    try:
        nets = [cached_network(x, strict=False) for x in items]
    except ValueError:
        return ",".join(sorted(items))
    nets = sorted(set(nets), key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    return ",".join(str(n) for n in nets)


def _norm_value(menu: str, prop: str, raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, int):
        text = str(raw)
    else:
        text = str(raw)
    if prop in BOOL_PROPS and text in ("yes", "no"):
        return "true" if text == "yes" else "false"
    if prop in DURATION_PROPS:
        secs = parse_duration(text)
        return fmt_duration(secs) if secs is not None else text
    if prop in LIST_PROPS.get(menu, frozenset()):
        return _sort_list(text)
    if prop == "dst-address" and menu in ROUTE_MENUS:
        try:
            return str(cached_network(text, strict=False))
        except ValueError:
            return text
    return text


RawActual = Mapping[str, Iterable[Mapping[str, object]]]


class ParsedState(dict[str, list[dict[str, str]]]):
    """Rows already normalised by :func:`parse_actual` (parsing them again is skipped)."""


def parse_actual(rows_by_menu: RawActual) -> dict[str, list[dict[str, str]]]:
    """Normalise rows as librouteros returns them (bools, ints) into the desired state's string form.

    Idempotent, so `plan()`/`verify()` apply it to whatever they are given.
    """
    if isinstance(rows_by_menu, ParsedState):
        return rows_by_menu
    out = ParsedState()
    for menu, rows in rows_by_menu.items():
        # Most values are text that _norm_value would return as it is: only these props (and
        # booleans, numbers, None) need its work. 8,000 calls per 250-peer read were a job's hot spot.
        special = _normalised_props(menu)
        norm_rows = []
        for row in rows:
            norm: dict[str, str] = {}
            for prop, raw in row.items():
                if type(raw) is str and prop not in special:
                    norm[prop] = raw
                    continue
                val = _norm_value(menu, prop, raw)
                if val is not None:
                    norm[prop] = val
            norm_rows.append(norm)
        out[menu] = norm_rows
    return out


def _normalised_props(menu: str) -> frozenset[str]:
    """The props whose text values _norm_value changes in `menu`."""
    special = BOOL_PROPS | DURATION_PROPS | LIST_PROPS.get(menu, frozenset())
    return special | {"dst-address"} if menu in ROUTE_MENUS else special


# ---------------------------------------------------------------- operations


def cli_menu(menu: str) -> str:
    """`/interface/wireguard/peers` → `/interface wireguard peers`."""
    return "/" + " ".join(p for p in menu.split("/") if p)


def _mask(props: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if k in SECRET_PROPS else v) for k, v in props.items()}


def _prop_words(props: Mapping[str, str]) -> str:
    return " ".join(
        f"{k}={MASK if k in SECRET_PROPS else render_value(v, force_quote=k in FORCE_QUOTE)}" for k, v in props.items()
    )


@dataclass(frozen=True)
class Op:
    """One API write. `id` is the live row's `.id` (None for add); `key` names the resource."""

    action: Action
    menu: str
    id: str | None
    props: Mapping[str, str]
    key: str
    place_before: str | None = None
    reason: str = ""
    # Values the set replaces (a demotion records the original distance here, for restore on clear).
    previous: Mapping[str, str] = field(default_factory=dict)
    # Natural key of an untagged "ensure" row (`/user`, `/ip/service`): selected by it in cli().
    match: Mapping[str, str] = field(default_factory=dict)
    # Select the row by `.id` in cli() (unmanaged rows, duplicate tagged rows).
    by_id: bool = False

    def _selector(self) -> str:
        if self.match:
            cond = " ".join(f"{k}={render_value(v, force_quote=True)}" for k, v in self.match.items())
            return f"[find {cond}]"
        if self.by_id or not is_managed_comment(self.key):
            return self.id or "?"
        return f"[find comment={render_value(self.key, force_quote=True)}]"

    def cli(self) -> str:
        """A readable RouterOS CLI line for this op, secrets shown as `***`."""
        menu = cli_menu(self.menu)
        if self.action == "add":
            line = f"{menu} add {_prop_words(self.props)}"
            if self.place_before:
                line += f" place-before={self.place_before}"
            return line
        if self.action == "set":
            return f"{menu} set {self._selector()} {_prop_words(self.props)}"
        if self.action == "move":
            return f"{menu} move {self._selector()} destination={self.place_before}"
        return f"{menu} remove {self._selector()}"

    def to_dict(self) -> dict[str, object]:
        """JSON form (secrets masked), as stored with a deployment and hashed by plan_hash()."""
        return {
            "action": self.action,
            "menu": self.menu,
            "id": self.id,
            "props": _mask(self.props),
            "key": self.key,
            "place_before": self.place_before,
            "previous": _mask(self.previous),
            "match": dict(self.match),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    ops: tuple[Op, ...]
    # Things the operator should know; the plan is still applicable.
    warnings: tuple[str, ...] = ()
    # Reasons the plan cannot be applied as is (a deploy must refuse while there are any).
    conflicts: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.ops

    def cli_lines(self) -> list[str]:
        return [op.cli() for op in self.ops]


def plan_hash(p: Plan) -> str:
    """SHA-256 over the canonical JSON of the ops (ids included: they pin the router's state).

    Secrets are masked before hashing: a hash of a low-entropy password could be brute-forced.
    The human `reason` texts are left out so rewording never invalidates a previewed plan.
    """
    body = []
    for op in p.ops:
        d = op.to_dict()
        d.pop("reason")
        body.append(d)
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode("ascii")).hexdigest()


# ---------------------------------------------------------------- matching (shared with verify.py)


def is_dynamic(row: Row) -> bool:
    return row.get("dynamic") == "true"


class RowIndex:
    """Rows of one router by tag and by natural key, so finding each resource's rows is a lookup
    (a 250-peer router has 343 resources in menus of up to 250 rows)."""

    def __init__(self, actual: ActualState) -> None:
        self.actual = actual
        self._by_comment: dict[str, dict[str, list[Row]]] = {}

    def by_comment(self, menu: str) -> dict[str, list[Row]]:
        index = self._by_comment.get(menu)
        if index is None:
            index = {}
            for row in self.actual.get(menu, ()):
                comment = row.get("comment")
                if comment and not is_dynamic(row):
                    index.setdefault(comment, []).append(row)
            self._by_comment[menu] = index
        return index

    def find(self, res: Resource) -> list[Row]:
        """Same answer as find_rows(res, actual[res.menu])."""
        if not res.tagged:
            return find_rows(res, self.actual.get(res.menu, ()))
        index = self.by_comment(res.menu)
        old = legacy_key(res.key)
        found = list(index.get(res.key, ()))
        if old != res.key:
            found += index.get(old, ())
        return found


def find_rows(res: Resource, rows: Sequence[Row]) -> list[Row]:
    """Live rows that are this resource: by comment tag, or by natural key for ensured rows.

    A row with the resource's old-format tag (before tags named their WAN) is the same resource:
    it comes after rows with the current tag, and a plan re-tags it in place with `set`.
    """
    if res.tagged:
        old = legacy_key(res.key)
        exact = [r for r in rows if r.get("comment") == res.key and not is_dynamic(r)]
        if old == res.key:
            return exact
        return exact + [r for r in rows if r.get("comment") == old and not is_dynamic(r)]
    return [r for r in rows if all(r.get(k) == v for k, v in res.match.items())]


INTERFACE_REFS = ("name", "interface", "in-interface", "out-interface", "gateway")


def interface_names(desired: DesiredState, actual: ActualState) -> set[str]:
    """The names this WAN's WireGuard interface has: desired, and as found on the router."""
    names = {desired.interface_name}
    for res in desired.in_menu(WG):
        for row in find_rows(res, actual.get(WG, ())):
            if "name" in row:
                names.add(row["name"])
    return names


def is_ours(desired: DesiredState, row: Row, names: set[str] | None = None) -> bool:
    """Is this tagged row the deploying WAN's? Rows tagged for it; old-format rows when their tag
    is one of its (or it claims it) or they hang off its interface. Another WAN's rows never are."""
    comment = row.get("comment")
    if desired.owns_tag(comment):
        return True
    if not is_legacy_tag(comment):
        return False
    if comment in desired.legacy_claims():
        return True
    return names is not None and any(row.get(p) in names for p in INTERFACE_REFS)


def secrets_visible(actual: ActualState) -> bool:
    """Whether this API user is shown sensitive values (RouterOS's `sensitive` policy): then a secret
    missing from a row is unset, not hidden. The WireGuard interface always has a private key, so it
    tells which."""
    return any("private-key" in row for row in actual.get(WG, ()))


def diff_props(
    res: Resource, row: Row, *, secrets_shown: bool = False
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(wanted values, current values, skipped secrets) of the properties that differ."""
    defaults = RESET_DEFAULTS.get(res.menu, {})
    want: dict[str, str] = {}
    have: dict[str, str] = {}
    skipped: list[str] = []
    for prop, value in res.compared_props().items():
        if prop in SECRET_PROPS and prop not in row and not secrets_shown:
            skipped.append(prop)  # hidden from this API user: cannot compare, never rewrite blindly
            continue
        current = row.get(prop, defaults.get(prop))
        if current != value:
            want[prop] = value
            if prop in row:
                have[prop] = row[prop]
    return want, have, skipped


def anchor(placement: str, rows: Sequence[Row]) -> tuple[int, str] | None:
    """(index, .id) of the row a placed rule must precede, or None (append)."""
    kind, _, chain = placement.partition(":")
    for i, row in enumerate(rows):
        if row.get("chain") != chain or is_dynamic(row):
            continue
        if (
            kind == "top"
            or (kind == "before-first-drop" and row.get("action") == "drop")
            or (kind == "before-first-masquerade" and row.get("action") == "masquerade")
        ):
            return i, row.get(".id", "")
    return None


def anchor_word(placement: str | None) -> str:
    kind, _, chain = (placement or "").partition(":")
    what = "drop" if kind == "before-first-drop" else "masquerade"
    return f"the first {what} rule of chain {chain}"


def misplaced(res: Resource, row: Row, rows: Sequence[Row]) -> tuple[int, str] | None:
    """The anchor a placed rule sits behind, if it does (`top` rules are only placed on add)."""
    if not res.placement or res.placement.startswith("top:"):
        return None
    found = anchor(res.placement, rows)
    if found is None:
        return None
    index = next(i for i, r in enumerate(rows) if r is row)
    return found if found[0] < index else None


def demotion_candidates(desired: DesiredState, actual: ActualState) -> list[tuple[str, Row]]:
    """Unmanaged static routes to a managed destination with distance below 10."""
    out: list[tuple[str, Row]] = []
    by_dst: dict[str, dict[str, list[Row]]] = {}
    for prefix in desired.demotion.dst_prefixes:
        menu = desired.demotion.menu_of(prefix)
        if menu not in by_dst:
            by_dst[menu] = {}
            for row in actual.get(menu, ()):
                by_dst[menu].setdefault(row.get("dst-address", ""), []).append(row)
        for row in by_dst[menu].get(str(prefix), ()):
            if is_dynamic(row):
                continue
            if is_managed_comment(row.get("comment")):
                continue
            distance = row.get("distance", "1")
            if distance.isdigit() and int(distance) < desired.demotion.below:
                out.append((menu, row))
    return out


def _is_static(row: Row) -> bool:
    return not is_dynamic(row) and row.get("connect") != "true"


def _in_main_table(row: Row) -> bool:
    # WireWAN's routes go to the main table; a route in another table (a VRF) shadows nothing there.
    return row.get("routing-table", "main") == "main"


def endpoint_hosts(desired: DesiredState) -> list[IPAddress]:
    """Remote peers' endpoint addresses this router dials (DNS names left out)."""
    out: list[IPAddress] = []
    for res in desired.in_menu(WG_PEERS):
        text = res.props.get("endpoint-address", "")
        if not text:
            continue
        try:
            out.append(ip_address(text))
        except ValueError:
            continue  # a DNS name
    return out


def _span(net: IPNetwork) -> tuple[int, int, int]:
    return net.version, int(net.network_address), int(net.broadcast_address)


def shadowed_routes(desired: DesiredState, actual: ActualState) -> list[Resource]:
    """Managed routes to exactly the destination of each unmanaged static route that lies strictly
    inside one of WireWAN's routes (DESIGN.md §6, "Route conflict demotion").

    RouterOS picks the longest matching prefix before it looks at distance, so an old static route to
    10.1.2.0/24 beats WireWAN's aggregated 10.1.0.0/22 however it is demoted. A WireWAN route to the
    same /24 (the covering route's gateway and distance, this WAN's tag) makes the two comparable by
    distance again, and the normal demotion then hands the LAN to the overlay. Left alone: routes
    tagged by any WAN, dynamic and connected routes, other routing tables, and a route to a remote
    peer's endpoint (it keeps the tunnel's own packets off the tunnel).
    """
    covering = [
        (_span(net), net, res)
        for menu in ROUTE_MENUS
        for res in desired.in_menu(menu)
        if res.tagged and "dst-address" in res.props
        for net in (ip_network(res.props["dst-address"]),)
    ]
    if not covering:
        return []
    endpoints: list[tuple[int, int]] | None = None  # read only when a candidate turns up
    found: dict[IPNetwork, Resource] = {}
    for menu in ROUTE_MENUS:
        for row in actual.get(menu, ()):
            if not _is_static(row) or is_managed_comment(row.get("comment")) or not _in_main_table(row):
                continue
            try:
                dst = ip_network(row.get("dst-address", ""), strict=False)
            except ValueError:
                continue
            version, low, high = _span(dst)
            inside = [
                (net, res)
                for (v, lo, hi), net, res in covering
                if v == version and lo <= low and high <= hi and net != dst
            ]
            if not inside or dst in found or any(net == dst for _, net, _ in covering):
                continue
            if endpoints is None:
                endpoints = [(host.version, int(host)) for host in endpoint_hosts(desired)]
            if any(v == version and low <= host <= high for v, host in endpoints):
                continue
            net, res = max(inside, key=lambda t: t[0].prefixlen)  # the most specific covering route
            found[dst] = Resource(
                res.menu,
                managed_key("route", dst, desired.wan_id),
                {**res.props, "dst-address": str(dst)},
                title=f"route {dst} (inside {net}, over an unmanaged route to {dst})",
            )
    return sorted(found.values(), key=lambda r: (r.menu, r.key))


def with_shadowed_routes(desired: DesiredState, actual: ActualState) -> DesiredState:
    """`desired` plus :func:`shadowed_routes`, whose unmanaged routes it then demotes too: the state a
    plan and a verify compare the router with. Built from the router, so never hashed for staleness."""
    extra = shadowed_routes(desired, actual)
    if not extra:
        return desired
    prefixes = tuple(ip_network(r.props["dst-address"]) for r in extra)
    return replace(
        desired,
        resources=desired.resources + tuple(extra),
        demotion=replace(desired.demotion, dst_prefixes=desired.demotion.dst_prefixes + prefixes),
    )


def stale_rows(desired: DesiredState, actual: ActualState) -> list[tuple[str, Row]]:
    """This WAN's tagged rows of managed menus that its desired state no longer has (rows of other
    WANs on the same router are never stale here)."""
    out: list[tuple[str, Row]] = []
    names = interface_names(desired, actual)
    for menu in TAGGED_MENUS:
        keys = {r.key for r in desired.in_menu(menu)}
        keys |= {legacy_key(k) for k in keys}
        for row in actual.get(menu, ()):
            if is_dynamic(row) or not is_ours(desired, row, names) or row["comment"] in keys:
                continue
            out.append((menu, row))
    return out


# ---------------------------------------------------------------- planning


def _nets(text: str) -> set[IPNetwork]:
    out: set[IPNetwork] = set()
    for item in text.split(","):
        if item.strip():
            try:
                out.add(cached_network(item.strip(), strict=False))
            except ValueError:
                continue
    return out


def _overlap(a: set[IPNetwork], b: set[IPNetwork]) -> bool:
    return any(x.version == y.version and x.overlaps(y) for x in a for y in b)


@dataclass
class _Builder:
    desired: DesiredState
    actual: ActualState
    forward: list[tuple[int, Op]] = field(default_factory=list)
    removes: list[tuple[int, Op]] = field(default_factory=list)
    early_removes: list[Op] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    index: RowIndex | None = None
    secrets_shown: bool = False

    def rows(self, menu: str) -> Sequence[Row]:
        return self.actual.get(menu, ())

    def find(self, res: Resource) -> list[Row]:
        if self.index is None:
            self.index = RowIndex(self.actual)
        return self.index.find(res)

    def our_interface_names(self) -> set[str]:
        return interface_names(self.desired, self.actual)

    def add_conflict(self, res: Resource) -> str | None:
        """Why adding `res` would hit an untagged row RouterOS keeps unique, if it would."""
        if res.menu == WG:
            name = res.props.get("name")
            for row in self.rows(WG):
                if row.get("name") == name and not is_managed_comment(row.get("comment")):
                    return (
                        f"an interface named {name!r} exists without a WireWAN tag; rename it or "
                        "change the WAN's interface name"
                    )
        if res.menu == WG_PEERS:
            ours = self.our_interface_names()
            for row in self.rows(WG_PEERS):
                if (
                    row.get("interface") in ours
                    and row.get("public-key") == res.props.get("public-key")
                    and not is_managed_comment(row.get("comment"))
                ):
                    return (
                        f"an untagged peer entry {row.get('.id')} on {row.get('interface')} already uses "
                        f"the public key of {res.title or res.key}; remove it on the router"
                    )
        return None

    def resource(self, res: Resource) -> None:
        rows = self.rows(res.menu)
        found = self.find(res)
        step = res.step
        if not found:
            if not res.create:
                self.warnings.append(f"{res.title or res.key} does not exist on the router; not created")
                return
            why = self.add_conflict(res)
            if why:
                self.conflicts.append(why)
                return
            before = None
            if res.placement:
                hit = anchor(res.placement, rows)
                before = hit[1] if hit else None
            self.forward.append(
                (
                    step,
                    Op("add", res.menu, None, res.add_props(), res.key, before, f"add {res.title or res.key}"),
                )
            )
            return
        row = found[0]
        for dup in found[1:]:
            self.removes.append(
                (
                    step,
                    Op(
                        "remove",
                        res.menu,
                        dup.get(".id"),
                        {},
                        res.key,
                        reason=f"duplicate of {res.title or res.key}",
                        by_id=True,
                    ),
                )
            )
        want, have, skipped = diff_props(res, row, secrets_shown=self.secrets_shown)
        if res.tagged and row.get("comment") != res.key:
            # An old-format tag: re-tag in place (a set keeps the row, so no session drops).
            want["comment"] = res.key
            have["comment"] = str(row.get("comment"))
        for prop in skipped:
            self.warnings.append(f"{prop} of {res.title or res.key} is not readable; left as is")
        if want:
            self.forward.append(
                (
                    step,
                    Op(
                        "set",
                        res.menu,
                        row.get(".id"),
                        want,
                        res.key,
                        reason=f"update {res.title or res.key}: {', '.join(want)}",
                        previous=have,
                        match=dict(res.match),
                        by_id="comment" in want,
                    ),
                )
            )
        hit = misplaced(res, row, rows)
        if hit is not None:
            self.forward.append(
                (
                    step,
                    Op(
                        "move",
                        res.menu,
                        row.get(".id"),
                        {},
                        res.key,
                        hit[1],
                        f"move {res.title or res.key} back before {anchor_word(res.placement)}",
                    ),
                )
            )
        for prop, value in res.expect.items():
            if prop in row and row[prop] != value:
                self.warnings.append(
                    f"{res.title or res.key}: {prop} on the router is {row[prop]}, WireWAN expects {value}"
                )

    def stale(self) -> None:
        for menu, row in stale_rows(self.desired, self.actual):
            self.removes.append(
                (
                    STEP_OF_MENU.get(menu, 99),
                    Op("remove", menu, row.get(".id"), {}, row["comment"], reason="no longer desired"),
                )
            )

    def demotions(self) -> None:
        for menu, row in demotion_candidates(self.desired, self.actual):
            distance = row.get("distance", "1")
            self.forward.append(
                (
                    6,
                    Op(
                        "set",
                        menu,
                        row.get(".id"),
                        {"distance": str(self.desired.demotion.to)},
                        row.get("comment", ""),
                        reason=(
                            f"demote unmanaged static route to {row.get('dst-address')} "
                            f"(distance {distance} -> {self.desired.demotion.to})"
                        ),
                        previous={"distance": distance},
                        by_id=True,
                    ),
                )
            )

    def order_peer_ops(self) -> None:
        """Free allowed-addresses and public keys before another peer entry takes them over."""
        ours = self.our_interface_names()
        rows = [r for r in self.rows(WG_PEERS) if r.get("interface") in ours]
        ops = [op for step, op in self.forward if op.menu == WG_PEERS and op.action in ("add", "set")]
        if not ops:
            return
        removing = {op.id: (s, op) for s, op in self.removes if op.menu == WG_PEERS and op.id}
        setting = {op.id: op for op in ops if op.action == "set"}

        def new_state(row: Row) -> tuple[set[IPNetwork], str | None]:
            op = setting.get(row.get(".id"))
            props = dict(row)
            if op is not None:
                props.update(op.props)
            return _nets(props.get("allowed-address", "")), props.get("public-key")

        deps: dict[int, set[int]] = {i: set() for i in range(len(ops))}
        index_of_set = {op.id: i for i, op in enumerate(ops) if op.action == "set"}
        for i, op in enumerate(ops):
            if op.action == "set" and "allowed-address" not in op.props and "public-key" not in op.props:
                continue
            mine_row = next((r for r in rows if op.id and r.get(".id") == op.id), {})
            merged = dict(mine_row)
            merged.update(op.props)
            nets, key = _nets(merged.get("allowed-address", "")), merged.get("public-key")
            for row in rows:
                rid = row.get(".id")
                if op.id and rid == op.id:
                    continue
                cur_nets = _nets(row.get("allowed-address", ""))
                if not (_overlap(nets, cur_nets) or (key and row.get("public-key") == key)):
                    continue
                if rid in removing:
                    step, rop = removing.pop(rid)
                    self.removes.remove((step, rop))
                    self.early_removes.append(rop)
                    continue
                if any(rop.id == rid for rop in self.early_removes):
                    continue
                later_nets, later_key = new_state(row)
                if rid in index_of_set and not _overlap(nets, later_nets) and later_key != key:
                    deps[i].add(index_of_set[rid])
                    continue
                self.conflicts.append(
                    f"peer entry {rid} ({row.get('comment') or 'untagged'}) on the WireWAN interface "
                    f"holds addresses or the key that {op.key} needs"
                )
        # Kahn's algorithm, stable; a cycle (two entries swapping prefixes) keeps the given order.
        order: list[int] = []
        done: set[int] = set()
        while len(order) < len(ops):
            ready = [i for i in range(len(ops)) if i not in done and deps[i] <= done]
            if not ready:
                self.warnings.append("peer entries swap addresses; applying in listed order may fail")
                ready = [i for i in range(len(ops)) if i not in done]
            order.append(ready[0])
            done.add(ready[0])
        sorted_ops = iter([ops[i] for i in order])
        self.forward = [
            (s, next(sorted_ops) if op.menu == WG_PEERS and op.action in ("add", "set") else op)
            for s, op in self.forward
        ]

    def build(self) -> Plan:
        for res in self.desired.resources:
            self.resource(res)
        self.stale()
        self.demotions()
        self.order_peer_ops()
        forward = [op for _, op in sorted(self.forward, key=lambda t: t[0])]
        # Early removes (stale peer entries in the way of a new one) go right before the peer ops.
        first_peer = next((i for i, op in enumerate(forward) if op.menu == WG_PEERS), None)
        if self.early_removes:
            at = first_peer if first_peer is not None else len(forward)
            forward[at:at] = self.early_removes
        removes = [op for _, op in sorted(self.removes, key=lambda t: -t[0])]
        return Plan(tuple(forward + removes), tuple(self.warnings), tuple(self.conflicts))


def plan(desired: DesiredState, actual: RawActual) -> Plan:
    """The ordered, minimal operations that turn `actual` into `desired`.

    :param actual: rows per menu as read from the router (raw librouteros rows are fine).
    """
    parsed = parse_actual(actual)
    return _Builder(with_shadowed_routes(desired, parsed), parsed, secrets_shown=secrets_visible(parsed)).build()


def state_lines(desired: DesiredState) -> list[str]:
    """A desired state as readable RouterOS `add` lines (write-only values left out, secrets `***`)."""
    lines = []
    for res in desired.resources:
        props = {k: v for k, v in res.add_props().items() if k not in res.write_only}
        lines.append(Op("add", res.menu, None, props, res.key).cli())
    for prefix in desired.demotion.dst_prefixes:
        lines.append(f"# demote unmanaged static routes to {prefix} with distance < 10 to distance 11")
    if desired.demotion.dst_prefixes:
        lines.append(
            "# an unmanaged static route inside one of these gets a managed route to its exact "
            "destination, then is demoted too (seen on the router at deploy)"
        )
    return lines
