"""Fault injection: make the simulated router misbehave on purpose.

A deployer must survive a router that drops the connection mid-plan, answers
slowly, refuses a command or dies with ``!fatal``.  Faults are data, set either
for the whole server (``sim.faults``) or for one upcoming connection
(``sim.queue_connection_faults(Faults(...))``, consumed by the next accepted
connection, in FIFO order).  Server-wide and per-connection faults both apply.

Semantics
---------
``refuse_connections``
    Accept and immediately close every new connection (the client sees EOF /
    ``ConnectionClosed`` on its first read, like a router whose API service
    rejects it).
``close_after_sentences = N``
    The connection answers its first ``N`` sentences normally (``/login``
    counts); when sentence ``N+1`` arrives it is dropped unanswered and the
    socket is closed.  ``N=1`` therefore means "login works, the first command
    dies".
``reply_delay``
    Seconds to sleep before sending the reply to each sentence.
``CommandFault``
    Matches a full command word (``/ip/route/add``; ``*`` = any command after
    login) and either traps (``!trap`` + ``!done``, nothing changes), sends
    ``!fatal`` and closes, closes silently, or delays.  ``times`` limits how
    often it fires (``None`` = forever).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

FaultAction = Literal["trap", "fatal", "close", "delay"]


@dataclass
class CommandFault:
    command: str
    action: FaultAction = "trap"
    message: str = "failure: injected fault"
    category: int | None = None
    times: int | None = None
    delay: float = 0.0

    def matches(self, command: str) -> bool:
        return (self.command == "*" and command != "/login") or self.command == command


@dataclass
class Faults:
    refuse_connections: bool = False
    close_after_sentences: int | None = None
    reply_delay: float = 0.0
    commands: list[CommandFault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- convenience builders (return self so calls chain)

    def trap_on(
        self,
        command: str,
        message: str = "failure: injected fault",
        *,
        category: int | None = None,
        times: int | None = None,
    ) -> Faults:
        self.commands.append(CommandFault(command, "trap", message, category, times))
        return self

    def fatal_on(self, command: str, reason: str = "injected fatal error", *, times: int | None = None) -> Faults:
        self.commands.append(CommandFault(command, "fatal", reason, None, times))
        return self

    def close_on(self, command: str, *, times: int | None = None) -> Faults:
        self.commands.append(CommandFault(command, "close", "", None, times))
        return self

    def delay_on(self, command: str, seconds: float, *, times: int | None = None) -> Faults:
        self.commands.append(CommandFault(command, "delay", "", None, times, seconds))
        return self

    def clear(self) -> None:
        with self._lock:
            self.refuse_connections = False
            self.close_after_sentences = None
            self.reply_delay = 0.0
            self.commands.clear()

    def take(self, command: str) -> list[CommandFault]:
        """Faults firing for ``command`` now (consuming one use of limited ones)."""
        fired: list[CommandFault] = []
        with self._lock:
            for fault in list(self.commands):
                if not fault.matches(command):
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                fired.append(fault)
        return fired
