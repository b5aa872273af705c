"""Named exceptions of the pure domain.

Every refusal carries a human message, the form/API field it belongs to (or None for the whole
request) and a machine code. The web layer turns one into a message under the field, the JSON API
into ``{"error": code, "message": ..., "field": ...}`` with :attr:`DomainError.status`.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: a request the domain refuses, with a message fit to show a user."""

    default_code: ClassVar[str] = "invalid"
    default_status: ClassVar[int] = 422

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code
        self.status = self.default_status

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str | None]:
        """The JSON API error body."""
        return {"error": self.code, "message": self.message, "field": self.field}


class ValidationError(DomainError):
    """A value that is malformed or out of range on its own (HTTP 422)."""

    default_code = "invalid"
    default_status = 422


class GuardrailError(DomainError):
    """A well-formed value known to break tunnels or lock WireWAN out of a router (HTTP 422)."""

    default_code = "guardrail"
    default_status = 422


class ConflictError(DomainError):
    """A value that clashes with data already saved (HTTP 409).

    ``fixes`` are machine codes of the ways out the UI can offer as buttons or hints:
    ``auto_nat``, ``not_routed``, ``renumber``, ``change_range``, ``edit_existing``,
    ``other_address``, ``other_port``, ``other_name``, ``move_first``.
    """

    default_code = "conflict"
    default_status = 409

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        fixes: tuple[str, ...] = (),
        other_peer_id: int | None = None,
        other_subnet_id: int | None = None,
        other_service_id: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, field, code=code)
        self.fixes = fixes
        self.other_peer_id = other_peer_id
        self.other_subnet_id = other_subnet_id
        self.other_service_id = other_service_id


class RangeFullError(DomainError):
    """A range (tunnel, services, NAT pool) has no room left (HTTP 409).

    409 rather than 422: the request itself is valid and would succeed against other data; it is
    refused because of what is already allocated, and the way out is to change that data (widen
    the range, free addresses) — the meaning of 409 in API.md ("conflict with existing data").
    """

    default_code = "range_full"
    default_status = 409
