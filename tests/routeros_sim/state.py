"""The router's configuration and the engine that changes it.

:class:`RouterState` owns every menu's rows and implements the generic
operations (print, add, set, remove, move, unset, enable/disable) on top of the
schemas in :mod:`menus`.  Both the API server and the ``.rsc`` executor call
these methods, so a change made by a script and the same change made over the
API go through exactly the same rules -- which is what lets tests compare
"state after script" with "state after API plan".

Storage conventions
-------------------
* Rows are ``dict[str, str]`` holding exactly what RouterOS would print
  (``true``/``false``, normalised durations), plus ``.id`` and hidden
  bookkeeping keys starting with ``_`` (never printed, e.g. ``_password``).
* Read-only values that depend on other rows (route ``active``, peer
  handshake data, address ``invalid``) are computed at print time.
* Time is virtual: :attr:`RouterState.clock` (seconds since boot) only moves
  when a test calls ``advance()``, so handshake ages and scheduler runs are
  deterministic.

All public methods take :attr:`lock`; the server handles connections on
threads and a script run must be atomic with respect to API commands.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import values as V
from .errors import RosError, invalid_value, no_such_item, unknown_parameter
from .menus import Menu, Row, build_menus
from .query import Query

DUMP_FORMAT = "wirewan-routeros-sim/1"

#: Fields an ``/interface`` row of a WireGuard interface forwards to ``/interface/wireguard``.
_WG_VIA_INTERFACE = ("name", "mtu", "disabled", "comment")

#: Where interface names are referenced, so a rename follows (RouterOS links by id).
_INTERFACE_REFS: tuple[tuple[str, str], ...] = (
    ("/ip/address", "interface"),
    ("/interface/wireguard/peers", "interface"),
    ("/interface/list/member", "interface"),
    ("/ip/route", "gateway"),
    ("/ip/firewall/filter", "in-interface"),
    ("/ip/firewall/filter", "out-interface"),
    ("/ip/firewall/nat", "in-interface"),
    ("/ip/firewall/nat", "out-interface"),
)

#: Sizes of a WireGuard handshake initiation / response, used as rx/tx after one.
HANDSHAKE_RX = 148
HANDSHAKE_TX = 92


@dataclass
class Handshake:
    """Handshake state of one peer (keyed by its public key)."""

    at: float  # virtual clock time of the last handshake
    rx: int = HANDSHAKE_RX
    tx: int = HANDSHAKE_TX
    endpoint_address: str | None = None
    endpoint_port: int | None = None


def _is_id(text: str) -> bool:
    if len(text) < 2 or text[0] != "*":
        return False
    try:
        int(text[1:], 16)
    except ValueError:
        return False
    return True


class RouterState:
    """All configuration of one simulated router."""

    def __init__(self, version: str = "7.16.2") -> None:
        self.version = version
        self.version_tuple = V.parse_version(version)
        self.lock = threading.RLock()
        self.menus: dict[str, Menu] = build_menus()
        self.tables: dict[str, list[Row]] = {path: [] for path in self.menus}
        self.next_ids: dict[str, int] = {}
        self.clock: float = 0.0
        self.handshakes: dict[str, Handshake] = {}
        #: When true, the far ends answer as WireGuard does (whitepaper §5.1; wireguard.com "roaming"):
        #: an entry that is added, or whose public-key changes, handshakes at once (a new session,
        #: age 0); an entry that already had a session keeps it through any other ``set`` (endpoint,
        #: allowed-address, keepalive...) — its last handshake stays ``auto_handshake_age`` seconds
        #: old (the session is re-keyed about every 2 minutes under traffic, so a live one is at
        #: most ~180 s old). Only entries with an endpoint-address initiate; others wait for the far
        #: end (tests call :meth:`set_handshake`).
        self.auto_handshake = False
        self.auto_handshake_age = 90.0
        self.logs: list[tuple[str, str]] = []
        #: Called after a simulated reboot (backup load) so the server drops connections.
        self.reboot_hook: Callable[[], None] | None = None
        self.reboots = 0
        #: ``:global`` variables of the script executor; they outlive one script run.
        self.script_globals: dict[str, Any] = {}
        #: Path of the menu being validated; lets shared validators find their table.
        self.current_menu_path = ""

    # ------------------------------------------------------------------ lookup

    def menu(self, path: str) -> Menu:
        try:
            return self.menus[path]
        except KeyError:
            raise RosError(
                f"no such command or directory ({path.rsplit('/', 1)[-1]})",
                0,
                extra=["no such command prefix"],
            ) from None

    def table(self, path: str) -> list[Row]:
        """Stored rows of a menu (for ``/interface``: only the non-WireGuard ones)."""
        return self.tables[path]

    def interface_names(self) -> set[str]:
        names = {r["name"] for r in self.tables["/interface"]}
        names.update(r["name"] for r in self.tables["/interface/wireguard"])
        return names

    def field_available(self, menu: Menu, name: str) -> bool:
        f = menu.fields.get(name)
        return f is not None and f.available(self.version_tuple)

    def new_id(self, space: str) -> str:
        n = self.next_ids.get(space, 1)
        self.next_ids[space] = n + 1
        return f"*{n:X}"

    def _raw_rows(self, path: str) -> list[Row]:
        """Stored rows including the WireGuard projection for ``/interface``."""
        rows = self.tables[path]
        if path != "/interface":
            return rows
        merged = list(rows)
        for wg in self.tables["/interface/wireguard"]:
            merged.append(
                {
                    ".id": wg[".id"],
                    "name": wg["name"],
                    "type": "wg",
                    "mtu": wg.get("mtu", "1420"),
                    "disabled": wg.get("disabled", "false"),
                    "dynamic": "false",
                    **({"comment": wg["comment"]} if "comment" in wg else {}),
                }
            )
        merged.sort(key=lambda r: int(r[".id"][1:], 16))
        return merged

    def public_rows(self, path: str) -> list[Row]:
        """Rows as ``print`` shows them: computed values added, hidden ones removed."""
        with self.lock:
            menu = self.menu(path)
            out: list[Row] = []
            for raw in self._raw_rows(path):
                row = {k: v for k, v in raw.items() if not k.startswith("_")}
                if menu.computed is not None:
                    row.update(menu.computed(self, raw))
                public: Row = {}
                if ".id" in row and not menu.singleton:
                    public[".id"] = row[".id"]
                for key, value in row.items():
                    f = menu.fields.get(key)
                    if f is None or f.write_only or not f.available(self.version_tuple):
                        continue
                    public[key] = value
                out.append(public)
            return out

    # ------------------------------------------------------------------ print

    def print(
        self,
        path: str,
        *,
        proplist: Sequence[str] | None = None,
        query: Sequence[str] = (),
    ) -> list[Row]:
        with self.lock:
            rows = self.public_rows(path)
            q = Query(query)
            rows = [r for r in rows if q.matches(r)]
            if proplist is not None:
                wanted = [p for p in proplist if p]
                rows = [{k: r[k] for k in wanted if k in r} for r in rows]
            return rows

    def find(self, path: str, predicate: Any) -> list[str]:
        """Ids of rows (as printed) for which ``predicate(row)`` holds, in print order."""
        with self.lock:
            return [r[".id"] for r in self.public_rows(path) if ".id" in r and predicate(r)]

    # ------------------------------------------------------------------ id resolution

    def resolve_ids(self, path: str, spec: str | Iterable[str]) -> list[str]:
        """Turn ``*1,*2`` / names / a list of ids into existing ids (else ``no such item``)."""
        menu = self.menu(path)
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        rows = self._raw_rows(path)
        by_id = {r[".id"]: r for r in rows}
        out: list[str] = []
        for item in (i.strip() for i in items):
            if item == "":
                continue
            if _is_id(item):
                if item not in by_id:
                    raise no_such_item()
                found = item
            elif menu.name_ids:
                matches = [r[".id"] for r in rows if r.get("name") == item]
                if len(matches) != 1:
                    raise no_such_item()
                found = matches[0]
            else:
                # A bare number is a CLI print index, meaningless over the API.
                raise no_such_item()
            if found not in out:
                out.append(found)
        return out

    # ------------------------------------------------------------------ writes

    def _normalise(self, menu: Menu, attrs: dict[str, str]) -> dict[str, str]:
        clean: dict[str, str] = {}
        for key, value in attrs.items():
            f = menu.fields.get(key)
            if f is None or f.read_only or not f.available(self.version_tuple):
                raise unknown_parameter(key)
            if f.norm is not None:
                try:
                    value = f.norm(value)
                except (ValueError, TypeError):
                    raise invalid_value(key) from None
            clean[key] = value
        return clean

    def _store_value(self, row: Row, key: str, value: str, menu: Menu) -> None:
        f = menu.fields[key]
        if f.write_only:
            row[f"_{key}"] = value
        else:
            row[key] = value

    def _check_changeable(self, row: Row) -> None:
        if row.get("dynamic") == "true":
            raise RosError("failure: can not change dynamic item")  # ⚠ wording

    def add(self, path: str, attrs: dict[str, str]) -> str:
        """``add``: validate, allocate an id, insert (honouring ``place-before``)."""
        with self.lock:
            menu = self.menu(path)
            if not menu.can_add or menu.singleton:
                raise RosError("no such command or directory (add)", 0, extra=["no such command prefix"])
            attrs = dict(attrs)
            place_before = attrs.pop("place-before", None) if menu.ordered else None
            clean = self._normalise(menu, attrs)
            row: Row = {}
            for key, value in clean.items():
                self._store_value(row, key, value, menu)
            for f in menu.fields.values():
                if f.default is not None and f.name not in row and f.available(self.version_tuple):
                    row[f.name] = f.default
            missing = [f.name for f in menu.fields.values() if f.required and f.name not in clean]
            if missing:
                raise RosError(f"missing value(s) of argument(s) {','.join(missing)}")  # ⚠ wording
            for flag in ("dynamic", "builtin"):
                if flag in menu.fields:
                    row[flag] = "false"
            index = len(self.tables[path])
            if place_before is not None:
                index = self._position_before(path, place_before)
            self.current_menu_path = path
            if menu.validate is not None:
                menu.validate(self, row, None)
            new_id = self.new_id(menu.id_space)
            row = {".id": new_id, **row}
            if path == "/system/scheduler":
                self._schedule(row)
            if path == "/file":
                row.setdefault("type", "script" if row["name"].endswith(".rsc") else "file")
                row["creation-time"] = V.format_duration_ms(int(self.clock * 1000))
            self.tables[path].insert(index, row)
            if path == "/interface/wireguard/peers":
                self._new_session(row)
            self._after_change(path)
            return new_id

    def _position_before(self, path: str, target: str) -> int:
        ids = self.resolve_ids(path, target)
        if len(ids) != 1:
            raise no_such_item()
        rows = self.tables[path]
        index = next(i for i, r in enumerate(rows) if r[".id"] == ids[0])
        if rows[index].get("dynamic") == "true":
            # RouterOS keeps dynamic rules (the fasttrack counter dummy) on top.
            raise RosError("failure: can not place before dynamic rule")  # ⚠ wording
        return index

    def set(self, path: str, ids: str | Iterable[str] | None, attrs: dict[str, str]) -> None:
        """``set`` on one or more rows; all rows validated before any is changed."""
        with self.lock:
            menu = self.menu(path)
            clean = self._normalise(menu, attrs)
            if menu.singleton:
                row = self.tables[path][0]
                for key, value in clean.items():
                    self._store_value(row, key, value, menu)
                return
            if ids is None:
                raise RosError("missing =.id=")
            targets = self.resolve_ids(path, ids)
            if path == "/interface":
                self._set_interface(targets, clean)
                return
            staged: list[tuple[int, Row, Row]] = []
            self.current_menu_path = path
            for target in targets:
                index = next(i for i, r in enumerate(self.tables[path]) if r[".id"] == target)
                old = self.tables[path][index]
                self._check_changeable(old)
                new = dict(old)
                for key, value in clean.items():
                    self._store_value(new, key, value, menu)
                if menu.validate is not None:
                    menu.validate(self, new, old)
                staged.append((index, old, new))
            for index, old, new in staged:
                if path == "/system/scheduler" and old.get("interval") != new.get("interval"):
                    self._schedule(new)
                self.tables[path][index] = new
                if path == "/interface/wireguard/peers" and old.get("public-key") != new.get("public-key"):
                    self._new_session(new)
                if "name" in old and old.get("name") != new.get("name") and menu.id_space == "interface":
                    self._rename_interface(old["name"], new["name"])
            self._after_change(path)

    def _set_interface(self, targets: list[str], clean: dict[str, str]) -> None:
        """``/interface set``: physical rows directly, WireGuard rows via their own menu."""
        wg_ids = {r[".id"] for r in self.tables["/interface/wireguard"]}
        for target in targets:
            if target in wg_ids:
                forwarded = {k: v for k, v in clean.items() if k in _WG_VIA_INTERFACE}
                if len(forwarded) != len(clean):
                    bad = next(k for k in clean if k not in _WG_VIA_INTERFACE)
                    raise unknown_parameter(bad)
                self.set("/interface/wireguard", [target], forwarded)
                continue
            rows = self.tables["/interface"]
            index = next(i for i, r in enumerate(rows) if r[".id"] == target)
            old = rows[index]
            new = {**old, **clean}
            menu = self.menus["/interface"]
            if menu.validate is not None:
                menu.validate(self, new, old)
            rows[index] = new
            if old["name"] != new["name"]:
                self._rename_interface(old["name"], new["name"])
        self._after_change("/interface")

    def _rename_interface(self, old: str, new: str) -> None:
        for path, prop in _INTERFACE_REFS:
            for row in self.tables[path]:
                value = row.get(prop)
                if value == old:
                    row[prop] = new
                elif value == f"!{old}":
                    row[prop] = f"!{new}"

    def unset(self, path: str, ids: str | Iterable[str] | None, prop: str) -> None:
        with self.lock:
            menu = self.menu(path)
            f = menu.fields.get(prop)
            if f is None or f.read_only or not f.available(self.version_tuple):
                raise unknown_parameter(prop)
            if f.required:
                raise RosError(f"failure: can not unset {prop}")  # ⚠ wording
            targets = self.resolve_ids(path, ids or "") if not menu.singleton else []
            rows = self.tables[path]
            for row in rows if menu.singleton else [r for r in rows if r[".id"] in targets]:
                self._check_changeable(row)
                row.pop(prop, None)
                row.pop(f"_{prop}", None)
                if f.default is not None:
                    row[prop] = f.default
            self._after_change(path)

    def remove(self, path: str, ids: str | Iterable[str]) -> None:
        with self.lock:
            menu = self.menu(path)
            if not menu.can_remove or menu.singleton:
                raise RosError("no such command or directory (remove)", 0, extra=["no such command prefix"])
            targets = self.resolve_ids(path, ids)
            rows = self.tables[path]
            doomed = [r for r in rows if r[".id"] in targets]
            for row in doomed:
                self._check_changeable(row)
            self.tables[path] = [r for r in rows if r[".id"] not in targets]
            if path == "/interface/wireguard":
                # ⚠ Peers of a removed interface are removed with it here.
                gone = {r["name"] for r in doomed}
                peers = self.tables["/interface/wireguard/peers"]
                self.tables["/interface/wireguard/peers"] = [p for p in peers if p.get("interface") not in gone]
            self._after_change(path)

    def move(self, path: str, numbers: str | Iterable[str], destination: str | None) -> None:
        """``move``: put ``numbers`` (in the given order) before ``destination``, or at the end."""
        with self.lock:
            menu = self.menu(path)
            if not menu.ordered:
                raise RosError("no such command or directory (move)", 0, extra=["no such command prefix"])
            targets = self.resolve_ids(path, numbers)
            rows = self.tables[path]
            moving = [next(r for r in rows if r[".id"] == t) for t in targets]
            for row in moving:
                self._check_changeable(row)
            dest_id: str | None = None
            if destination not in (None, ""):
                dest_ids = self.resolve_ids(path, destination)
                if len(dest_ids) != 1:
                    raise no_such_item()
                dest_id = dest_ids[0]
                dest_row = next(r for r in rows if r[".id"] == dest_id)
                if dest_row.get("dynamic") == "true":
                    raise RosError("failure: can not place before dynamic rule")  # ⚠ wording
            if dest_id in targets:
                return  # moving rows before themselves changes nothing
            remaining = [r for r in rows if r[".id"] not in targets]
            if dest_id is None:
                index = len(remaining)
            else:
                index = next(i for i, r in enumerate(remaining) if r[".id"] == dest_id)
            self.tables[path] = remaining[:index] + moving + remaining[index:]

    def enable(self, path: str, ids: str | Iterable[str], disabled: bool) -> None:
        self.set(path, ids, {"disabled": "true" if disabled else "false"})

    # ------------------------------------------------------------------ derived rows

    def _after_change(self, path: str) -> None:
        if path in ("/ip/address", "/interface", "/interface/wireguard"):
            self._sync_connected_routes()

    def _sync_connected_routes(self) -> None:
        """Keep one dynamic connected route per usable address, preserving route ids."""
        enabled_ifaces = {r["name"] for r in self._raw_rows("/interface") if r.get("disabled") != "true"}
        wanted: dict[str, Row] = {}
        for addr in self.tables["/ip/address"]:
            if addr.get("disabled") == "true" or addr.get("interface") not in enabled_ifaces:
                continue
            iface = ipaddress.ip_interface(addr["address"])
            wanted[addr[".id"]] = {
                "dst-address": str(iface.network),
                "gateway": addr["interface"],
                "distance": "0",
                "routing-table": "main",
                "scope": "10",
                "target-scope": "5",
                "pref-src": str(iface.ip),
                "dynamic": "true",
                "connect": "true",
                "disabled": "false",
                "suppress-hw-offload": "false",
            }
        routes = self.tables["/ip/route"]
        kept: list[Row] = []
        for route in routes:
            owner = route.get("_owner", "")
            if not owner.startswith("address:"):
                kept.append(route)
                continue
            spec = wanted.pop(owner[len("address:") :], None)
            if spec is not None:
                kept.append({".id": route[".id"], **spec, "_owner": owner})
        for addr_id, spec in wanted.items():
            kept.append({".id": self.new_id("/ip/route"), **spec, "_owner": f"address:{addr_id}"})
        self.tables["/ip/route"] = kept

    def _gateway_reachable(self, gateway: str, connected: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
        enabled_ifaces = {r["name"] for r in self._raw_rows("/interface") if r.get("disabled") != "true"}
        for gw in gateway.split(","):
            gw = gw.strip()
            if "%" in gw:
                gw = gw.split("%", 1)[1]
            if gw in enabled_ifaces:
                return True
            try:
                ip = ipaddress.ip_address(gw)
            except ValueError:
                continue
            if any(ip.version == net.version and ip in net for net in connected):
                return True
        return False

    def route_view(self, row: Row) -> Row:
        """``active`` = reachable, enabled, and best (lowest) distance for its dst and table."""
        routes = self.tables["/ip/route"]
        connected = [ipaddress.ip_network(r["dst-address"]) for r in routes if r.get("connect") == "true"]

        def usable(r: Row) -> bool:
            if r.get("disabled") == "true":
                return False
            if r.get("blackhole") == "true" or r.get("connect") == "true" or r.get("dhcp") == "true":
                return True
            return self._gateway_reachable(r.get("gateway", ""), connected)

        key = (row.get("routing-table", "main"), row.get("dst-address"))
        rivals = [r for r in routes if (r.get("routing-table", "main"), r.get("dst-address")) == key and usable(r)]
        best = min((int(r.get("distance", "1")) for r in rivals), default=None)
        winners = [r for r in rivals if int(r.get("distance", "1")) == best]
        active = usable(row) and best is not None and int(row.get("distance", "1")) == best
        dynamic = row.get("dynamic") == "true"
        out: Row = {
            "active": "true" if active else "false",
            "inactive": "true" if (not active and row.get("disabled") != "true") else "false",
            "static": "false" if dynamic else "true",
            "dynamic": "true" if dynamic else "false",
            "connect": row.get("connect", "false"),
            "dhcp": row.get("dhcp", "false"),
            "ecmp": "true" if active and len(winners) > 1 else "false",
        }
        gw = row.get("gateway", "")
        if gw:
            out["immediate-gw"] = gw if "%" in gw or not _looks_like_ip(gw) else self._immediate_gw(gw)
        return out

    def _immediate_gw(self, gateway: str) -> str:
        ip = ipaddress.ip_address(gateway.split(",")[0].strip())
        for r in self.tables["/ip/route"]:
            if r.get("connect") == "true" and ip in ipaddress.ip_network(r["dst-address"]):
                return f"{ip}%{r['gateway']}"
        return ""

    # ------------------------------------------------------------------ handshake model

    def handshake_view(self, peer: Row) -> Row:
        """Read-only peer values (rx, tx, last-handshake, current-endpoint-*)."""
        out: Row = {"rx": "0", "tx": "0"}
        wg = next((w for w in self.tables["/interface/wireguard"] if w["name"] == peer.get("interface")), None)
        if peer.get("disabled") == "true" or wg is None or wg.get("disabled") == "true":
            return out
        hs = self.handshakes.get(peer.get("public-key", ""))
        if hs is None and self.auto_handshake and peer.get("endpoint-address"):
            hs = Handshake(at=self.clock - self.auto_handshake_age)
        if hs is None:
            return out
        out["rx"], out["tx"] = str(hs.rx), str(hs.tx)
        out["last-handshake"] = V.format_duration_ms(int(round((self.clock - hs.at) * 1000)))
        address = hs.endpoint_address or peer.get("endpoint-address")
        port = hs.endpoint_port or (int(peer["endpoint-port"]) if peer.get("endpoint-port") else None)
        if address:
            out["current-endpoint-address"] = address
        if port:
            out["current-endpoint-port"] = str(port)
        return out

    def set_handshake(
        self,
        public_key: str,
        seconds_ago: float = 0.0,
        *,
        rx: int = HANDSHAKE_RX,
        tx: int = HANDSHAKE_TX,
        endpoint_address: str | None = None,
        endpoint_port: int | None = None,
    ) -> None:
        with self.lock:
            self.handshakes[public_key] = Handshake(self.clock - seconds_ago, rx, tx, endpoint_address, endpoint_port)

    def _new_session(self, peer: Row) -> None:
        """A new or re-keyed entry with an endpoint handshakes at once (auto_handshake only)."""
        if self.auto_handshake and peer.get("endpoint-address") and peer.get("public-key"):
            self.handshakes[peer["public-key"]] = Handshake(self.clock)

    def clear_handshake(self, public_key: str) -> None:
        with self.lock:
            self.handshakes.pop(public_key, None)

    # ------------------------------------------------------------------ extra commands

    def extra_command(self, path: str, verb: str, attrs: dict[str, str]) -> str | None:
        """Menu-specific commands other than the generic verbs (``/system/script/run`` excepted)."""
        with self.lock:
            menu = self.menu(path)
            since = menu.extra_commands.get(verb)
            if since is None or self.version_tuple < since:
                raise RosError(f"no such command or directory ({verb})", 0, extra=["no such command prefix"])
            allowed = menu.command_params.get(verb, frozenset())
            for key in attrs:
                if key not in allowed:
                    raise unknown_parameter(key)
            if (path, verb) == ("/system/backup", "save"):
                self._backup_save(attrs)
                return None
            if (path, verb) == ("/system/backup", "load"):
                self._backup_load(attrs)
                return None
            raise RosError(f"failure: {verb} is not modelled by the simulator")

    def _backup_save(self, attrs: dict[str, str]) -> None:
        """Snapshot the configuration into ``<name>.backup`` (a /file row)."""
        name = attrs.get("name") or "backup"
        filename = name if name.endswith(".backup") else f"{name}.backup"
        snapshot = json.dumps(
            {
                "tables": {p: rows for p, rows in self.tables.items() if p != "/file"},
                "next_ids": self.next_ids,
            }
        )
        files = self.tables["/file"]
        files[:] = [f for f in files if f.get("name") != filename]
        files.append(
            {
                ".id": self.new_id("/file"),
                "name": filename,
                "type": "backup",
                "contents": "",
                "creation-time": V.format_duration_ms(int(self.clock * 1000)),
                "_snapshot": snapshot,
                "_password": attrs.get("password", ""),
            }
        )

    def _backup_load(self, attrs: dict[str, str]) -> None:
        """Restore a snapshot, then "reboot" (every API connection is dropped)."""
        name = attrs.get("name", "")
        filename = name if name.endswith(".backup") else f"{name}.backup"
        row = next((f for f in self.tables["/file"] if f.get("name") == filename and "_snapshot" in f), None)
        if row is None:
            raise RosError("failure: no such file")  # ⚠ wording
        if row.get("_password", "") != attrs.get("password", ""):
            raise RosError("failure: wrong password")  # ⚠ wording
        snapshot = json.loads(row["_snapshot"])
        files = self.tables["/file"]
        self.tables = {p: [dict(r) for r in snapshot["tables"].get(p, [])] for p in self.menus}
        self.tables["/file"] = files
        self.next_ids.update({k: max(v, self.next_ids.get(k, 1)) for k, v in snapshot["next_ids"].items()})
        self.reboots += 1
        if self.reboot_hook is not None:
            self.reboot_hook()

    # ------------------------------------------------------------------ scheduler bookkeeping

    def _schedule(self, row: Row) -> None:
        interval_ms = V.parse_duration_ms(row.get("interval", "0s"))
        row.pop("_next", None)
        if interval_ms > 0:
            row["_next"] = repr(self.clock + interval_ms / 1000)
        row.setdefault("run-count", "0")

    # ------------------------------------------------------------------ dump / load

    def dump(self) -> dict[str, Any]:
        """Everything needed to recreate this router exactly (ids, hidden keys, clock)."""
        with self.lock:
            return {
                "format": DUMP_FORMAT,
                "version": self.version,
                "clock": self.clock,
                "next_ids": dict(self.next_ids),
                "tables": copy.deepcopy(self.tables),
                "handshakes": {k: asdict(v) for k, v in self.handshakes.items()},
                "auto_handshake": self.auto_handshake,
            }

    def load(self, data: dict[str, Any]) -> None:
        """Replace the whole configuration with a :meth:`dump` (the version is not changed)."""
        with self.lock:
            if data.get("format") != DUMP_FORMAT:
                raise ValueError(f"not a simulator dump (format {data.get('format')!r})")
            tables = data["tables"]
            unknown = set(tables) - set(self.menus)
            if unknown:
                raise ValueError(f"unknown menus in dump: {sorted(unknown)}")
            self.tables = {path: [dict(r) for r in tables.get(path, [])] for path in self.menus}
            self.next_ids = {k: int(v) for k, v in data.get("next_ids", {}).items()}
            self.clock = float(data.get("clock", 0.0))
            self.handshakes = {k: Handshake(**v) for k, v in data.get("handshakes", {}).items()}
            self.auto_handshake = bool(data.get("auto_handshake", False))
            self._sync_connected_routes()

    def normalized_dump(self) -> dict[str, list[dict[str, str]]]:
        """A dump two routers share when they hold the same configuration.

        Dropped: ``.id`` values, hidden bookkeeping, counters and timestamps
        (fields marked volatile), and the value of generated private keys (their
        derived public keys too) -- randomness, not configuration.  Rows of menus
        whose order means nothing are sorted; firewall rules keep their order.
        """
        with self.lock:
            out: dict[str, list[dict[str, str]]] = {}
            for path in sorted(self.menus):
                menu = self.menus[path]
                rows = []
                for raw in self.tables[path]:
                    row = {
                        k: v
                        for k, v in raw.items()
                        if k != ".id" and not k.startswith("_") and not (k in menu.fields and menu.fields[k].volatile)
                    }
                    if raw.get("_password") is not None:
                        row["password"] = raw["_password"]
                    if raw.get("_generated-key") == "true":
                        row["private-key"] = row["public-key"] = "<generated>"
                    rows.append(dict(sorted(row.items())))
                if not menu.ordered:
                    rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
                out[path] = rows
            return out


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split(",")[0].strip())
    except ValueError:
        return False
    return True
