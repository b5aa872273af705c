"""The JSON API's error bodies: `{"error": code, "message": ..., "field": ...}` (../shared/API.md).

The app's error handlers (app/__init__.py) hand every error of an API request to `handle`, so that
routing errors (an unknown /api/ path, a wrong method) answer JSON too, not only errors raised in
this blueprint's views.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.domain.errors import DomainError
from app.extensions import db

API_ERROR_CODES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}
CSRF_MESSAGE = "The form expired or was sent from elsewhere (CSRF check failed). Reload the page and try again."
CONFLICT_MESSAGE = "This conflicts with a change saved at the same moment; reload and try again."


def api_error(status: int, message: str, field: str | None = None, code: str | None = None) -> Any:
    resp = jsonify({"error": code or API_ERROR_CODES.get(status, "error"), "message": message, "field": field})
    resp.status_code = status
    return resp


def handle(exc: Exception) -> Any:
    """The JSON answer to any exception raised while serving an API request."""
    if isinstance(exc, CSRFError):
        return api_error(400, CSRF_MESSAGE, code="csrf")
    if isinstance(exc, DomainError):
        db.session.rollback()
        resp = jsonify(exc.to_dict())  # some errors add members: a busy router's job_id
        resp.status_code = exc.status
        return resp
    if isinstance(exc, IntegrityError):
        db.session.rollback()
        return api_error(409, CONFLICT_MESSAGE)
    if isinstance(exc, HTTPException):
        resp = api_error(exc.code or 500, exc.description or exc.name)
        # 405 must still say which methods work; 429/503 may say when to come back.
        headers = dict(exc.get_headers())
        for name in ("Allow", "Retry-After"):
            if name in headers:
                resp.headers[name] = headers[name]
        return resp
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return api_error(500, "Internal error; nothing was saved. The server log has details.")
