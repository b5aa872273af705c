"""The TCP side: a threaded server and :class:`SimRouter`, the public facade.

One thread per connection (``socketserver.ThreadingTCPServer``).  Threads are
daemonic so a forgotten router never blocks interpreter exit, but
:meth:`SimRouter.stop` still shuts every connection down and joins every thread:
pytest runs with ``filterwarnings=error`` and a leaked socket or thread would
surface as a warning in some unrelated test.

A malformed sentence ends *that* connection with ``!fatal``; nothing a client
sends can stop the server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import codec
from .api import Session, classify
from .defconf import PRESETS, apply_defconf
from .errors import ConnectionDropped, ProtocolViolation
from .faults import Faults
from .scheduler import advance as _advance
from .script import run_script as _run_script
from .state import RouterState
from .values import address_in_list


@dataclass
class Counters:
    """Sentences received, by kind.  ``read`` = print/getall; ``write`` = every other
    menu command (add/set/remove/move/enable/disable/unset/run/import...) whether
    or not it succeeded; ``session`` = /login, /quit, /cancel."""

    sentences: int = 0
    reads: int = 0
    writes: int = 0
    session: int = 0
    connections: int = 0
    refused: int = 0
    fatals: int = 0

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)


@dataclass
class CommandRecord:
    """One received command sentence (for asserting exactly what a deployer sent)."""

    connection: int
    command: str
    words: list[str]
    kind: str


@dataclass
class _Conn:
    number: int
    sock: socket.socket
    thread: threading.Thread
    peer_ip: str
    faults: Faults = field(default_factory=Faults)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], router: SimRouter) -> None:
        self.router = router
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.router._serve_connection(self.request, self.client_address)


class SimRouter:
    """A simulated MikroTik router speaking the RouterOS API over TCP.

    ``SimRouter(version="7.16.2", user="admin", password="secret")`` starts from
    the default configuration (plus the ``preset``, e.g. ``"existing"``) unless
    ``state`` (a :meth:`dump`, or ``{"script": "..."}`` to run on top of defconf)
    is given.  ``start()`` binds (``port=0`` picks a free port) and returns the
    port; ``stop()`` closes everything.  Also a context manager.
    """

    def __init__(
        self,
        state: dict[str, Any] | None = None,
        *,
        version: str = "7.16.2",
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "admin",
        password: str = "",
        group: str = "full",
        preset: str = "defconf",
        auto_handshake: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        # With a TLS context this is the api-ssl service (8729 on a router): every connection is
        # wrapped before the API starts, and /ip service "api-ssl" decides who may connect.
        self.tls = tls
        self.host = host
        self.requested_port = port
        self.port = 0
        self.user = user
        self.password = password
        self.state = RouterState(version)
        apply_defconf(self.state, [(user, password, group)])
        PRESETS[preset](self.state)
        if state is not None:
            self.load(state)
        self.state.auto_handshake = auto_handshake
        self.state.reboot_hook = self.drop_connections
        self.faults = Faults()
        self.counters = Counters()
        self.commands: list[CommandRecord] = []
        self._queued_faults: list[Faults] = []
        #: Python exceptions raised while handling a command (simulator bugs); should stay empty.
        self.internal_errors: list[str] = []
        self._conns: dict[int, _Conn] = {}
        self._conn_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> int:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = _Server((self.host, self.requested_port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"routeros-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.port

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.drop_connections(join=True)

    def __enter__(self) -> SimRouter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def drop_connections(self, join: bool = False) -> None:
        """Cut every API connection (what a reboot does); optionally wait for the threads."""
        with self._conn_lock:
            conns = list(self._conns.values())
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if join:
            current = threading.current_thread()
            for conn in conns:
                if conn.thread is not current:
                    conn.thread.join(timeout=5)

    @property
    def active_connections(self) -> int:
        with self._conn_lock:
            return len(self._conns)

    def connect(self, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        """A logged-in ``librouteros.Api`` (test convenience; caller closes it)."""
        import librouteros

        return librouteros.connect(
            self.host,
            self.user if username is None else username,
            self.password if password is None else password,
            port=self.port,
            **kwargs,
        )

    # ------------------------------------------------------------------ faults and counters

    def queue_connection_faults(self, faults: Faults) -> None:
        """Faults for the next accepted connection only (FIFO)."""
        with self._conn_lock:
            self._queued_faults.append(faults)

    def reset_counters(self) -> None:
        with self._conn_lock:
            self.counters.reset()
            self.commands.clear()

    def writes(self) -> list[CommandRecord]:
        """Write commands received since the last reset."""
        with self._conn_lock:
            return [c for c in self.commands if c.kind == "write"]

    # ------------------------------------------------------------------ state helpers

    def dump(self) -> dict[str, Any]:
        return self.state.dump()

    def load(self, data: dict[str, Any]) -> None:
        """Load a :meth:`dump`; a ``"script"`` key is then run by the executor."""
        if "tables" in data:
            self.state.load(data)
        if data.get("script"):
            _run_script(self.state, data["script"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.dump(), indent=1, sort_keys=True))

    def normalized_dump(self) -> dict[str, list[dict[str, str]]]:
        return self.state.normalized_dump()

    def run_script(self, text: str) -> list[str]:
        return _run_script(self.state, text)

    def advance(self, seconds: float) -> list[str]:
        """Move the virtual clock; due scheduler entries run (see :mod:`scheduler`)."""
        return _advance(self.state, seconds)

    def rows(self, path: str, **equal: str) -> list[dict[str, str]]:
        """Rows as ``print`` shows them, filtered by equality: ``rows("/ip/route", dst_address="x")``."""
        query = [f"?{k.replace('_', '-')}={v}" for k, v in equal.items()]
        return self.state.print(path, query=query)

    def set_handshake(
        self,
        public_key: str,
        seconds_ago: float = 0.0,
        *,
        rx: int = 148,
        tx: int = 92,
        endpoint_address: str | None = None,
        endpoint_port: int | None = None,
    ) -> None:
        self.state.set_handshake(
            public_key,
            seconds_ago,
            rx=rx,
            tx=tx,
            endpoint_address=endpoint_address,
            endpoint_port=endpoint_port,
        )

    def clear_handshake(self, public_key: str) -> None:
        self.state.clear_handshake(public_key)

    @property
    def auto_handshake(self) -> bool:
        return self.state.auto_handshake

    @auto_handshake.setter
    def auto_handshake(self, value: bool) -> None:
        self.state.auto_handshake = value

    @property
    def logs(self) -> list[tuple[str, str]]:
        return self.state.logs

    # ------------------------------------------------------------------ connection handling

    def _serve_connection(self, sock: socket.socket, client: tuple[str, int]) -> None:
        peer_ip = client[0]
        with self._conn_lock:
            self.counters.connections += 1
            number = self.counters.connections
            faults = self._queued_faults.pop(0) if self._queued_faults else Faults()
            conn = _Conn(number, sock, threading.current_thread(), peer_ip, faults)
            self._conns[number] = conn
        wrapped: ssl.SSLSocket | None = None
        try:
            if self.tls is not None:
                try:
                    # wrap_socket detaches `sock`: from here the TLS socket is the one to close.
                    wrapped = self.tls.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client gave up on the handshake (an unverifiable certificate)
                conn.sock = wrapped
            if self._refuse(peer_ip, faults):
                with self._conn_lock:
                    self.counters.refused += 1
                return
            self._loop(conn)
        except (OSError, ConnectionDropped):
            pass  # the client went away (or stop()/a reboot cut the socket)
        finally:
            with self._conn_lock:
                self._conns.pop(number, None)
            if wrapped is not None:
                wrapped.close()

    def _refuse(self, peer_ip: str, faults: Faults) -> bool:
        """Injected refusal, or the ``/ip service api`` row being disabled / not admitting the client."""
        if faults.refuse_connections or self.faults.refuse_connections:
            return True
        with self.state.lock:
            name = "api-ssl" if self.tls is not None else "api"
            api = next((s for s in self.state.table("/ip/service") if s.get("name") == name), None)
            if api is None or api.get("disabled") == "true":
                return True
            return not address_in_list(peer_ip, api.get("address", ""))

    def _loop(self, conn: _Conn) -> None:
        sock = conn.sock
        reader = codec.SentenceReader(sock.recv)
        session = Session(self.state, conn.peer_ip)
        handled = 0
        while True:
            try:
                words = reader.read_sentence()
            except ProtocolViolation as exc:
                with self._conn_lock:
                    self.counters.fatals += 1
                sock.sendall(codec.encode_sentence(["!fatal", f"malformed input: {exc}"]))
                return
            if words is None:
                return
            limit = _min_limit(conn.faults.close_after_sentences, self.faults.close_after_sentences)
            if limit is not None and handled >= limit:
                return  # drop the sentence unanswered and close
            handled += 1
            command = words[0]
            kind = classify(command) if command.startswith("/") else "write"
            with self._conn_lock:
                self.counters.sentences += 1
                if kind == "read":
                    self.counters.reads += 1
                elif kind == "write":
                    self.counters.writes += 1
                else:
                    self.counters.session += 1
                self.commands.append(CommandRecord(conn.number, command, list(words[1:]), kind))
            delay = self.faults.reply_delay + conn.faults.reply_delay
            fired = conn.faults.take(command) + self.faults.take(command) if session.user is not None else []
            injected = None
            for fault in fired:
                if fault.action == "delay":
                    delay += fault.delay
                elif injected is None:
                    injected = fault
            if delay:
                time.sleep(delay)
            if injected is not None and injected.action == "close":
                return
            if injected is not None and injected.action == "fatal":
                with self._conn_lock:
                    self.counters.fatals += 1
                sock.sendall(codec.encode_sentence(["!fatal", injected.message]))
                return
            if injected is not None:
                trap = ["!trap"]
                if injected.category is not None:
                    trap.append(f"=category={injected.category}")
                trap.append(f"=message={injected.message}")
                tag = next((w[5:] for w in words if w.startswith(".tag=")), None)
                replies = [trap, ["!done"]]
                if tag is not None:
                    for sentence in replies:
                        sentence.append(f".tag={tag}")
                sock.sendall(b"".join(codec.encode_sentence(s) for s in replies))
                continue
            try:
                reply = session.handle(words)
            except Exception as exc:  # a simulator bug: surface it, keep the server alive
                self.internal_errors.append(f"{command}: {exc!r}")
                sock.sendall(codec.encode_sentence(["!fatal", f"internal simulator error: {exc!r}"]))
                return
            sock.sendall(b"".join(codec.encode_sentence(s) for s in reply.sentences))
            if reply.close:
                return


def _min_limit(a: int | None, b: int | None) -> int | None:
    limits = [x for x in (a, b) if x is not None]
    return min(limits) if limits else None


@contextlib.contextmanager
def running_router(**kwargs: Any) -> Iterator[SimRouter]:
    """``with running_router(password="x") as sim:`` -- started, and always stopped."""
    sim = SimRouter(**kwargs)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
