"""Users and API tokens (../shared/API.md, "Accounts"). The rules live in app/services/accounts.py."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from flask_login import current_user

from app.blueprints.api import bp
from app.blueprints.api import openapi as oa
from app.blueprints.api.errors import api_error
from app.blueprints.api.openapi import NO_CONTENT, documented, json_response, query_param
from app.blueprints.api.schemas import token_json, user_json
from app.extensions import db
from app.models import User
from app.services import accounts
from app.services.inputs import as_bool
from app.services.tx import commit


def _admin_only() -> None:
    if not current_user.is_admin:
        abort(403, "Only admins manage users.")


def _account_error(exc: accounts.AccountError) -> Any:
    db.session.rollback()
    return api_error(exc.status, exc.message, exc.field)


@bp.get("/users")
@documented(
    "List users",
    tags=["Accounts"],
    description="Admins only.",
    responses={200: json_response(oa.UserSchema, "Every user, by email.", many=True)},
    errors=(403,),
)
def list_users() -> Any:
    _admin_only()
    users = db.session.scalars(db.select(User).order_by(User.email))
    return jsonify([user_json(u) for u in users])


@bp.patch("/users/<int:user_id>")
@documented(
    "Change a user's role or deactivate/reactivate them",
    tags=["Accounts"],
    description="Admins only. A role change or deactivation ends that user's sessions at once; deactivation "
    "also revokes every token of theirs.",
    body=oa.UserUpdateSchema,
    responses={200: json_response(oa.UserSchema, "The user.")},
    errors=(400, 403, 404, 409, 422),
)
def update_user(user_id: int) -> Any:
    _admin_only()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "Send a JSON object.")
    try:
        user = accounts.update_user(current_user, user_id, body)
    except accounts.AccountError as exc:
        return _account_error(exc)
    commit()
    return jsonify(user_json(user))


@bp.delete("/users/<int:user_id>")
@documented(
    "Delete a user",
    tags=["Accounts"],
    description="Admins only; not oneself, nor the last active admin. Their audit entries and jobs remain.",
    responses={204: NO_CONTENT},
    errors=(403, 404, 409),
)
def delete_user(user_id: int) -> Any:
    _admin_only()
    try:
        accounts.delete_user(current_user, user_id)
    except accounts.AccountError as exc:
        return _account_error(exc)
    commit()
    return "", 204


@bp.get("/tokens")
@documented(
    "List API tokens",
    tags=["Accounts"],
    description="The caller's own tokens; an admin gets every user's with `all=true`. Never the token value.",
    query=[query_param("all", {"type": "boolean", "default": False}, "Every user's tokens (admins only).")],
    responses={200: json_response(oa.TokenSchema, "The tokens, newest first.", many=True)},
    errors=(403, 422),
)
def list_tokens() -> Any:
    want_all = as_bool(request.args.get("all"), "all")
    if want_all and not current_user.is_admin:
        abort(403, "Only admins list every user's tokens.")
    return jsonify([token_json(t) for t in accounts.visible_tokens(current_user, all_users=want_all)])


@bp.delete("/tokens/<int:token_id>")
@documented(
    "Revoke an API token",
    tags=["Accounts"],
    description="One's own token, or any token for an admin. It stops working at once.",
    responses={204: NO_CONTENT},
    errors=(403, 404),
)
def revoke_token(token_id: int) -> Any:
    try:
        accounts.revoke_token(current_user, token_id)
    except accounts.AccountError as exc:
        return _account_error(exc)
    commit()
    return "", 204
