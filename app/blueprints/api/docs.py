"""The OpenAPI document and its viewer (Swagger UI, vendored under app/static/vendor/).

Both are public: the document describes the API's shape (already in the repository) and holds no
data or secrets, and tools (code generators, schemathesis, the viewer itself) can fetch it without a
token. Every operation it describes still needs a token or a session.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, render_template

from app.blueprints.api import bp
from app.blueprints.api.openapi import build_spec, documented

SWAGGER_UI = "vendor/swagger-ui-5.35.0"


@bp.get("/openapi.json")
@documented(
    "This OpenAPI document",
    tags=["Documentation"],
    public=True,
    responses={
        200: {
            "description": "The OpenAPI 3.1 document of this API.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def openapi_json() -> Any:
    return jsonify(build_spec(current_app))


@bp.get("/docs")
@documented(
    "The API documentation page (Swagger UI)",
    tags=["Documentation"],
    public=True,
    responses={200: {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def docs() -> Any:
    return render_template("api/docs.html", swagger_ui=SWAGGER_UI)
