"""Turning raw form or JSON values into typed values, with messages naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import NotFound

from app.domain.errors import DomainError, ValidationError
from app.models.base import MAX_ID

TRUE = {"1", "true", "yes", "on", "y"}
FALSE = {"0", "false", "no", "off", "n", ""}


def as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValidationError(f"{field.replace('_', ' ').capitalize()} must be true or false.", field)


def id_arg(args: Mapping[str, str], name: str) -> int | None:
    """An id from a query string or form: None when absent or blank, 422 when not a whole number,
    404 when no row can have it (never a driver overflow)."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number.", name) from None
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"No object has {name}={raw[:24]}.")
    return value


def optional_text(value: Any) -> Any:
    """None for absent or blank values (a blank form field means 'not set'); anything else as given,
    so the validator that follows refuses a wrong JSON type (a boolean host must not become 'True')."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def text_list(value: Any, field: str) -> list[str]:
    """A list from JSON, or comma/newline separated text from a form."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = value
    elif isinstance(value, str):
        items = value.replace("\n", ",").split(",")
    else:
        raise ValidationError(f"{field.replace('_', ' ').capitalize()} must be a list.", field)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(f"{field.replace('_', ' ').capitalize()} must be a list of text values.", field)
        if item.strip():
            out.append(item)
    if len(out) > 64:
        raise ValidationError(f"{field.replace('_', ' ').capitalize()} may hold at most 64 entries.", field)
    return out


class Collector:
    """Runs several validators and gathers every refusal, so a form can show them all at once."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def __call__(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            self.errors.append(exc)
            return None

    def check(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


class InvalidInput(DomainError):
    """Several refusals at once; behaves like the first for the JSON API (one field per error)."""

    def __init__(self, errors: list[DomainError]) -> None:
        first = errors[0]
        super().__init__(first.message, first.field, code=first.code)
        self.status = first.status
        self.errors = errors

    def by_field(self) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for err in self.errors:
            out.setdefault(err.field, []).append(err.message)
        return out
