"""The only module that talks to routers: librouteros sessions, reading state, applying plans.

Every call is reported to an audit sink (command, arguments with secrets redacted, result or trap,
duration) and counted as a read or a write. Failures become `RouterError`s whose message a user can
act on: the seed's two causes of "invalid user name or password", refused, timed out, trap text.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import librouteros
from librouteros.api import Api
from librouteros.connections import SocketTransport
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)
from librouteros.protocol import ApiProtocol

from app.domain.model import DEFAULT_API_PORT
from app.domain.routeros.plan import Op, Plan

REDACTED_ARGS = frozenset({"private-key", "preshared-key", "password"})
READ_COMMANDS = ("print", "getall")

AUTH_FAILED = (
    "The router refused the login ('invalid user name or password'). RouterOS says this in two cases: "
    "(1) the password stored in WireWAN does not match the router's — set it again on the router or in "
    "WireWAN; (2) the address WireWAN connects from is not in the user's allowed-address list — on the "
    "router run: /user set [find name={user}] address={ranges} and "
    "/ip service set [find name={service}] disabled=no address={ranges}"
)


class RouterError(Exception):
    """A router operation failed; `message` says what to do about it."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # auth | refused | timeout | unreachable | trap | lost


@dataclass(frozen=True)
class RouterTarget:
    host: str
    username: str
    password: str
    port: int = DEFAULT_API_PORT
    use_tls: bool = False
    verify_cert: bool = False
    # The ranges the WAN admits on the router (tunnel and management), for the refused-login help.
    admit: str = ""
    connect_timeout: float = 10.0
    command_timeout: float = 30.0

    @property
    def label(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True)
class CallRecord:
    command: str
    arguments: Mapping[str, str]
    result: str
    duration_ms: float
    write: bool


AuditSink = Callable[[CallRecord], None]


def redact(arguments: Mapping[str, Any]) -> dict[str, str]:
    return {k: ("***" if k in REDACTED_ARGS else str(v)) for k, v in arguments.items()}


def _tls_wrapper(target: RouterTarget) -> Callable[[socket.socket], socket.socket]:
    if target.verify_cert:
        ctx = ssl.create_default_context()
    else:
        # Routers without a certificate on api-ssl only speak anonymous DH, TLS 1.2 at most.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ADH:ALL:@SECLEVEL=0")
    return lambda sock: ctx.wrap_socket(sock, server_hostname=target.host)


# The marker bits of a 2-, 3- and 4-byte word length (the API's length encoding).
LENGTH_MARKS = {2: 0x8000, 3: 0xC00000, 4: 0xE0000000}


class BufferedTransport(SocketTransport):  # type: ignore[misc]  # librouteros ships no type information
    """librouteros reads every word with two exact-length `recv` calls (12,000 system calls for one
    print of 250 peer entries); this reads what the socket has, up to 64 KiB, and serves words from
    that buffer. Same blocking semantics: a read returns exactly `length` bytes or raises."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._buffer = bytearray()

    def _fill(self, needed: int) -> None:
        """Block until the buffer holds at least `needed` bytes."""
        buffer = self._buffer
        while len(buffer) < needed:
            got = self.sock.recv(max(65536, needed - len(buffer)))
            if not got:
                raise ConnectionClosed("Connection unexpectedly closed.")
            buffer += got

    def read(self, length: int) -> bytes:
        self._fill(length)
        buffer = self._buffer
        out = bytes(buffer[:length])
        del buffer[:length]  # O(1) from the front of a bytearray
        return out

    def read_sentence(self, encoding: str) -> list[str]:
        """Every word up to the empty word that ends a sentence, decoded as librouteros decodes them
        (`errors="ignore"`). Word by word through `read` this was most of a 250-row print's client
        time: a call per length byte and per word, and a debug log call per word."""
        buffer = self._buffer
        words: list[str] = []
        pos = 0
        while True:
            self._fill(pos + 1)
            first = buffer[pos]
            if first < 0x80:
                size, length = 1, first
            elif first < 0xC0:
                size = 2
            elif first < 0xE0:
                size = 3
            elif first < 0xF0:
                size = 4
            else:
                raise ProtocolError(f"Unknown control byte {first:#x}")
            if size > 1:
                self._fill(pos + size)
                length = int.from_bytes(buffer[pos : pos + size], "big") ^ LENGTH_MARKS[size]
            if length == 0:
                pos += size
                break
            start = pos + size
            self._fill(start + length)
            words.append(buffer[start : start + length].decode(encoding, errors="ignore"))
            pos = start + length
        del buffer[:pos]
        return words


class BufferedProtocol(ApiProtocol):  # type: ignore[misc]  # librouteros ships no type information
    """Reads a sentence in one pass over the transport's buffer (see BufferedTransport.read_sentence)."""

    transport: BufferedTransport

    def readSentence(self) -> tuple[str, tuple[str, ...]]:  # noqa: N802  (librouteros's name)
        words = self.transport.read_sentence(self.encoding)
        if not words:
            raise ProtocolError("The router sent an empty sentence.")
        if words[0] == "!fatal":
            self.transport.close()
            raise FatalError(words[1] if len(words) > 1 else "")
        return words[0], tuple(words[1:])


BOOLEANS: dict[str, bool] = {"yes": True, "true": True, "no": False, "false": False}


def api_value(value: str) -> str | int | bool:
    """librouteros's `parse_word` cast (an int only when it prints back the same: "00" stays a
    string; yes/no/true/false become booleans) without raising and catching a ValueError for
    every value that is not a number."""
    digits = value[1:] if value[:1] == "-" else value
    if digits.isdigit() and digits.isascii() and (digits == "0" or digits[0] != "0") and value != "-0":
        return int(value)
    return BOOLEANS.get(value, value)


class FastApi(Api):  # type: ignore[misc]  # librouteros ships no type information
    """librouteros's Api with a cheaper word parse (same results: see `api_value`)."""

    def readSentence(self) -> tuple[str, dict[str, Any]]:  # noqa: N802  (librouteros's name)
        reply_word, words = self.protocol.readSentence()
        attributes: dict[str, Any] = {}
        for word in words:
            _, key, value = word.split("=", 2)
            attributes[key] = api_value(value)
        return reply_word, attributes


@dataclass
class RouterSession:
    """One logged-in API connection. Use as a context manager."""

    target: RouterTarget
    audit: AuditSink | None = None
    reads: int = 0
    writes: int = 0
    calls: list[CallRecord] = field(default_factory=list)
    _api: Any = None

    def __enter__(self) -> RouterSession:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        t = self.target
        started = time.monotonic()
        try:
            self._api = librouteros.connect(
                t.host,
                t.username,
                t.password,
                port=t.port,
                timeout=t.connect_timeout,
                encoding="utf-8",
                subclass=FastApi,
                ssl_wrapper=_tls_wrapper(t) if t.use_tls else None,
            )
        except (TrapError, MultiTrapError) as exc:
            self._record("/login", {"name": t.username}, f"trap: {exc}", started, write=False)
            text = str(exc)
            if "invalid user name or password" in text or "cannot log in" in text:
                raise RouterError(
                    AUTH_FAILED.format(
                        user=t.username,
                        ranges=t.admit or "<tunnel range>,192.168.0.0/16",
                        service="api-ssl" if t.use_tls else "api",
                    ),
                    "auth",
                ) from exc
            if "not enough permissions" in text:
                raise RouterError(
                    f"User '{t.username}' may not use the API: give it a group with the api policy.", "auth"
                ) from exc
            raise RouterError(f"Login to {t.label} failed: {text}", "auth") from exc
        except (LibRouterosError, OSError) as exc:
            self._record("/login", {"name": t.username}, f"error: {type(exc).__name__}", started, write=False)
            raise connection_error(t, exc) from exc
        self._record("/login", {"name": t.username}, "ok", started, write=False)
        # After login, every command may take longer than the connect (a large print).
        self._socket().settimeout(t.command_timeout)
        self._api.protocol = BufferedProtocol(BufferedTransport(self._socket()), encoding="utf-8")

    def close(self) -> None:
        if self._api is not None:
            with contextlib.suppress(LibRouterosError, OSError):
                self._api.close()
            self._api = None

    def _socket(self) -> socket.socket:
        return self._api.protocol.transport.sock  # type: ignore[no-any-return]  # librouteros is untyped

    def local_address(self) -> str:
        """The address this connection comes from, as the router sees it (before any NAT)."""
        return str(self._socket().getsockname()[0])

    def _record(self, command: str, args: Mapping[str, Any], result: str, started: float, *, write: bool) -> None:
        record = CallRecord(command, redact(args), result, round((time.monotonic() - started) * 1000, 1), write)
        self.calls.append(record)
        if self.audit is not None:
            self.audit(record)

    def call(self, command: str, **arguments: str) -> list[dict[str, Any]]:
        """Run one API command; rows for prints, `[{"ret": id}]` for adds."""
        if self._api is None:
            raise RouterError("Not connected.", "lost")
        write = not command.endswith(READ_COMMANDS)
        if write:
            self.writes += 1
        else:
            self.reads += 1
        started = time.monotonic()
        try:
            rows = list(self._api(command, **arguments))
        except (TrapError, MultiTrapError) as exc:
            self._record(command, arguments, f"trap: {exc}", started, write=write)
            raise RouterError(f"The router refused {command}: {exc}", "trap") from exc
        except FatalError as exc:
            self._record(command, arguments, f"fatal: {exc}", started, write=write)
            self.close()  # close the dead socket, not just forget it (it would leak until GC)
            raise RouterError(f"The router ended the session during {command}: {exc}", "lost") from exc
        except (LibRouterosError, OSError) as exc:
            self._record(command, arguments, f"error: {type(exc).__name__}", started, write=write)
            self.close()  # close the dead socket, not just forget it (it would leak until GC)
            if isinstance(exc, TimeoutError | socket.timeout):
                raise RouterError(
                    f"{self.target.label} stopped answering during {command} "
                    f"(no reply in {self.target.command_timeout:.0f} s).",
                    "timeout",
                ) from exc
            raise RouterError(
                f"The connection to {self.target.label} was lost during {command} ({_describe(exc)}).", "lost"
            ) from exc
        self._record(command, arguments, f"ok ({len(rows)} rows)" if not write else "ok", started, write=write)
        return rows

    def print(self, menu: str) -> list[dict[str, Any]]:
        return self.call(f"{menu}/print")

    def read_state(self, menus: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every row of each menu (one print per menu): what plan() and verify() compare against."""
        return {menu: self.print(menu) for menu in menus}

    def apply(self, plan: Plan, on_op: Callable[[int, Op], None] | None = None) -> list[str | None]:
        """Apply the ops in plan order; returns the ids of added rows (None for other ops)."""
        added: list[str | None] = []
        for index, op in enumerate(plan.ops):
            added.append(self.apply_op(op))
            if on_op is not None:
                on_op(index, op)
        return added

    def apply_op(self, op: Op) -> str | None:
        if op.action == "add":
            args = dict(op.props)
            if op.place_before:
                args["place-before"] = op.place_before
            rows = self.call(f"{op.menu}/add", **args)
            return next((str(r["ret"]) for r in rows if "ret" in r), None)
        if op.action == "set":
            self.call(f"{op.menu}/set", **{".id": _need_id(op), **op.props})
        elif op.action == "remove":
            self.call(f"{op.menu}/remove", **{".id": _need_id(op)})
        elif op.action == "move":
            self.call(f"{op.menu}/move", numbers=_need_id(op), destination=op.place_before or "")
        return None

    # ------------------------------------------------------------ commit-confirmed rollback

    def remove_rollback(self, name: str) -> int:
        """Remove everything of a rollback named `name`: its scheduler entry, its undo script and any
        backup file (older WireWAN versions armed a backup). Returns how many rows were removed."""
        removed = 0
        for menu, prefix in (("/system/scheduler", False), ("/system/script", False), ("/file", True)):
            for row in self.print(menu):
                row_name = str(row.get("name", ""))
                if row_name == name or (prefix and row_name.startswith(name)):
                    self.call(f"{menu}/remove", **{".id": str(row[".id"])})
                    removed += 1
        return removed

    def arm_undo(self, name: str, source: str, seconds: int) -> None:
        """Upload `source` as the script `name` and schedule it to run in `seconds` (it removes its
        scheduler entry and itself when it runs): the undo fires unless WireWAN disarms it first."""
        self.call("/system/script/add", name=name, source=source, comment="WireWAN rollback: undo of the last deploy")
        self.call(
            "/system/scheduler/add",
            name=name,
            interval=f"{seconds}s",
            **{"on-event": name, "comment": "WireWAN rollback"},
        )

    def arm_backup_load(self, name: str, seconds: int) -> None:
        """The fallback when a plan cannot be undone by a script: a backup now, loaded (a reboot) in
        `seconds` unless WireWAN disarms it first."""
        self.call("/system/backup/save", name=name, **{"dont-encrypt": "yes"})
        self.call(
            "/system/scheduler/add",
            name=name,
            interval=f"{seconds}s",
            **{"on-event": f'/system backup load name={name}.backup password=""', "comment": "WireWAN rollback"},
        )

    def system_resource(self) -> dict[str, Any]:
        rows = self.call("/system/resource/print")
        return rows[0] if rows else {}


def _need_id(op: Op) -> str:
    if not op.id:
        raise RouterError(f"Cannot {op.action} {op.key}: the plan has no row id for it.", "trap")
    return op.id


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        return "the router closed the connection"
    return str(exc) or type(exc).__name__


def connection_error(target: RouterTarget, exc: BaseException) -> RouterError:
    if isinstance(exc, ConnectionRefusedError):
        return RouterError(
            f"{target.host} refused the connection on port {target.port}. Check that the "
            f"{'api-ssl' if target.use_tls else 'api'} service is enabled (/ip service print) "
            "and the port is right.",
            "refused",
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return RouterError(
            f"Connecting to {target.host}:{target.port} timed out after {target.connect_timeout:.0f} s. "
            "Check the management host (use the router's LAN gateway or public IP, not its tunnel IP), "
            "routing and firewall.",
            "timeout",
        )
    if isinstance(exc, ssl.SSLError):
        return RouterError(
            f"TLS with {target.host}:{target.port} failed: {exc}. Untick 'verify certificate' "
            "for a self-signed router, or use plain API on 8728.",
            "unreachable",
        )
    if isinstance(exc, socket.gaierror):
        return RouterError(f"The management host '{target.host}' does not resolve ({exc}).", "unreachable")
    return RouterError(f"Cannot reach {target.host}:{target.port}: {_describe(exc)}.", "unreachable")


def managed_menus(menus: Sequence[str]) -> tuple[str, ...]:
    """The menus a deploy reads: those of the desired state (order kept, no duplicates)."""
    seen: dict[str, None] = {}
    for menu in menus:
        seen.setdefault(menu, None)
    return tuple(seen)
