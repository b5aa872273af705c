"""Helpers for tests that use the simulator: pytest fixtures and a raw API client.

Import the fixtures into a test module (``from tests.routeros_sim.testing import sim, api``);
a conftest is deliberately not used so this package stays self-contained.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from . import codec
from .server import SimRouter

PASSWORD = "secret"


class RawClient:
    """A bare-socket API client for what librouteros cannot express (raw framing, tags)."""

    def __init__(self, sim: SimRouter, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(sim.address, timeout=timeout)
        self.reader = codec.SentenceReader(self.sock.recv)

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *words: str) -> None:
        self.sock.sendall(codec.encode_sentence(words))

    def read(self) -> list[str] | None:
        return self.reader.read_sentence()

    def call(self, *words: str) -> list[list[str]]:
        """Send one sentence and read replies up to and including ``!done`` (or ``!fatal``)."""
        self.send(*words)
        out: list[list[str]] = []
        while True:
            sentence = self.read()
            if sentence is None:
                return out
            out.append(sentence)
            if sentence[0] in ("!done", "!fatal"):
                return out

    def login(self, user: str = "admin", password: str = PASSWORD) -> list[list[str]]:
        return self.call("/login", f"=name={user}", f"=password={password}")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def sim() -> Iterator[SimRouter]:
    with SimRouter(password=PASSWORD) as router:
        yield router
    assert router.internal_errors == []  # a Python exception inside the simulator is a bug


@pytest.fixture
def api(sim: SimRouter) -> Iterator[Any]:
    connection = sim.connect()
    try:
        yield connection
    finally:
        connection.close()
