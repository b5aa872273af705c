"""Form helpers shared by the blueprints: choices, and domain refusals shown under their fields."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from app.domain.errors import DomainError
from app.services.inputs import InvalidInput


def choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def show_errors(form: FlaskForm, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """Put each refusal under its field; refusals without a matching field go to the form's top."""
    errors = exc.errors if isinstance(exc, InvalidInput) else [exc]
    form.form_errors = list(getattr(form, "form_errors", []))
    for err in errors:
        name = (aliases or {}).get(err.field or "", err.field or "")
        field = getattr(form, name, None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors), err.message]
        else:
            form.form_errors.append(err.message)


def form_data(form: FlaskForm, names: tuple[str, ...]) -> dict[str, Any]:
    """Raw submitted values for the services (which do all validation)."""
    return {n: getattr(form, n).data for n in names if hasattr(form, n)}
