"""Error types shared by every layer of the simulator.

RouterOS reports failures in two very different ways, and the simulator keeps
them apart so each layer can react correctly:

* :class:`RosError` is a *command* failure.  Over the API it becomes
  ``!trap =message=... [=category=N]`` followed by ``!done``; the connection
  stays usable.  The script executor turns it into a script error carrying the
  line/column of the failing command.
* :class:`ProtocolViolation` is a *framing* failure (bad length prefix, word too
  long...).  The connection cannot be resynchronised, so the server answers
  ``!fatal <reason>`` and closes that one connection -- never the server.
"""

from __future__ import annotations


class RosError(Exception):
    """A RouterOS command failure (``!trap``)."""

    def __init__(self, message: str, category: int | None = None, *, extra: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        # Further trap messages sent after the first one (RouterOS sends two traps for an
        # unknown path; librouteros then raises MultiTrapError).
        self.extra: list[str] = list(extra or [])


class ProtocolViolation(Exception):
    """Malformed API framing: the connection must end with ``!fatal``."""


class ConnectionDropped(Exception):
    """The peer went away mid-sentence (EOF); nothing can be answered."""


def no_such_item() -> RosError:
    return RosError("no such item")


def unknown_parameter(name: str) -> RosError:
    return RosError(f"unknown parameter {name}")


def invalid_value(name: str) -> RosError:
    # Category 1 = "argument value" per the API documentation.
    return RosError(f"invalid value for argument {name}", 1)


def bad_reference(name: str) -> RosError:
    return RosError(f"input does not match any value of {name}", 1)
