"""The JSON API (../shared/API.md). Bearer tokens or a browser session with CSRF."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask_login import current_user

from app.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def _authenticate() -> Any:
    from app import api_error

    if not current_user.is_authenticated:
        return api_error(401, "Log in or send 'Authorization: Bearer <token>'.")
    token_auth = request.environ.get("wirewan.token_auth", False)
    if request.method not in SAFE_METHODS:
        if not token_auth:
            # A session cookie rides along on cross-site requests; a bearer token does not.
            csrf.protect()
        if not current_user.can_edit:
            return api_error(403, "Your role is read-only (viewer).")
    return None


from app.blueprints.api import routes  # noqa: E402,F401
