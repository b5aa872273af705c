from __future__ import annotations

from typing import Any

from flask import jsonify
from flask_login import current_user

from app.blueprints.api import bp


@bp.get("/me")
def me() -> Any:
    """Who the token or session belongs to: handy for checking a token in scripts."""
    return jsonify({"id": current_user.id, "email": current_user.email, "role": current_user.role})
