"""The JSON API (docs/api.md). Bearer tokens or a browser session with CSRF."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request
from flask_login import current_user

from app.blueprints.api.errors import api_error
from app.extensions import csrf
from app.models.base import MAX_ID
from app.request_auth import bearer_token, is_token_auth, mark_token_auth
from app.services.accounts import user_for_token
from app.services.tx import commit

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The OpenAPI document and its viewer (api/docs.py) need no login: they hold no data.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_json", "api.docs"})
# Authenticated by the view itself, with a peer's report token (never an API token or a session).
SELF_AUTH_ENDPOINTS = frozenset({"api.peer_report"})
# Changes any role may make: a viewer revokes their own token (the view checks whose it is).
ANY_ROLE_ENDPOINTS = frozenset({"api.revoke_token"})


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint in SELF_AUTH_ENDPOINTS:
        return None
    token = bearer_token()
    if token is not None:
        # A token wins over a session cookie that happens to ride along (a script run from a
        # logged-in browser profile, a test client): the request acts as the token's user.
        user = user_for_token(token)
        if user is None:
            return api_error(
                401, "This API token is unknown, expired or revoked; send a valid 'Authorization: Bearer <token>'."
            )
        g._login_user = user  # flask-login's per-request user slot
        commit()  # last_used_at
        mark_token_auth()
    if not current_user.is_authenticated:
        return api_error(401, "Log in or send 'Authorization: Bearer <token>'.")
    if request.method not in SAFE_METHODS:
        if not is_token_auth():
            # A session cookie rides along on cross-site requests; a bearer token does not.
            csrf.protect()
        if not current_user.can_edit and request.endpoint not in ANY_ROLE_ENDPOINTS:
            return api_error(403, "Your role is read-only (viewer).")
    return None


@bp.before_request
def _ids_in_range() -> Any:
    """After authentication: an id beyond any database id is a 404, not a driver overflow (a 500)."""
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            return api_error(404, "No such object.")
    return None


from app.blueprints.api import accounts, docs, ops, routes  # noqa: E402,F401
