"""WireWAN: WireGuard WAN overlays with hands-off MikroTik deployment."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.config import load_settings
from app.domain.errors import DomainError
from app.extensions import csrf, db, login_manager, migrate
from app.htmx import add_vary_header
from app.models.base import MAX_ID

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


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_settings(config))
    app.instance_path = app.config["INSTANCE_PATH"]
    # Guards against absurd bodies; the longest legitimate form is a few kilobytes.
    if not (config or {}).get("MAX_CONTENT_LENGTH"):
        app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024

    db.init_app(app)
    # Batch mode: SQLite cannot ALTER most things, so one migration must fit SQLite and PostgreSQL.
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    from app import models  # noqa: F401  (registers tables on the metadata)
    from app.blueprints.admin.routes import bp as admin_bp
    from app.blueprints.api import bp as api_bp
    from app.blueprints.auth.routes import bp as auth_bp
    from app.blueprints.jobs.routes import bp as jobs_bp
    from app.blueprints.main.routes import bp as main_bp
    from app.blueprints.ops.routes import bp as ops_bp
    from app.blueprints.peers.routes import bp as peers_bp
    from app.blueprints.wans.routes import bp as wans_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(wans_bp)
    app.register_blueprint(peers_bp)
    app.register_blueprint(jobs_bp)

    _register_login_loaders()
    _register_errors(app)
    app.before_request(ids_in_range)
    app.after_request(add_vary_header)
    app.jinja_env.filters["kind_label"] = kind_label

    from app.cli import register_cli

    register_cli(app)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        from app.services.accounts import registration_open

        def _reg_open() -> bool:
            try:
                return registration_open()
            except Exception:  # noqa: BLE001 — a page header must render even before migrations
                return False

        return {"registration_open": _reg_open, "has_endpoint": lambda name: name in app.view_functions}

    return app


def ids_in_range() -> None:
    """An id in a URL beyond what an INTEGER column holds (PostgreSQL's is 32-bit) names nothing:
    404, before any query tries to bind it (a driver error, so a 500). The API checks its own ids after
    authentication, so that an anonymous caller learns nothing (app/blueprints/api)."""
    if request.path.startswith("/api/"):
        return
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            abort(404)


def kind_label(kind: str) -> str:
    return {"mikrotik": "MikroTik"}.get(kind, str(kind).capitalize())


def _migrations_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _register_login_loaders() -> None:
    from app.models import User
    from app.services.accounts import user_for_token

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        return user if user is not None and user.active else None

    @login_manager.request_loader
    def load_user_from_token(req: Any) -> User | None:
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not req.path.startswith("/api/"):
            return None
        user = user_for_token(header[7:].strip())
        if user is not None:
            req.environ["wirewan.token_auth"] = True
            from app.services.tx import commit

            commit()
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        from flask import flash, redirect, url_for

        if request.path.startswith("/api/"):
            return api_error(401, "Log in or send 'Authorization: Bearer <token>'.")
        if request.headers.get("HX-Request") == "true":
            resp = jsonify({})
            resp.status_code = 401
            resp.headers["HX-Redirect"] = url_for("auth.login", next=request.full_path)
            return resp
        flash(login_manager.login_message, "info")
        return redirect(url_for("auth.login", next=request.full_path))


def api_error(status: int, message: str, field: str | None = None, code: str | None = None) -> Any:
    resp = jsonify({"error": code or API_ERROR_CODES.get(status, "error"), "message": message, "field": field})
    resp.status_code = status
    return resp


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        message = "The form expired or was sent from elsewhere (CSRF check failed). Reload the page and try again."
        if request.path.startswith("/api/"):
            return api_error(400, message, code="csrf")
        return render_template("errors/error.html", code=400, title="Bad request", message=message), 400

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Any:
        # Pages catch these in their views to show them under the field; this is the API's path.
        db.session.rollback()
        resp = jsonify(exc.to_dict())  # the API's error body (some errors add members: a busy router's job_id)
        resp.status_code = exc.status
        return resp

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> Any:
        db.session.rollback()
        message = "This conflicts with a change saved at the same moment; reload and try again."
        if request.path.startswith("/api/"):
            return api_error(409, message)
        return render_template("errors/error.html", code=409, title="Conflict", message=message), 409

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            return api_error(status, exc.description or exc.name)
        titles = {403: "Not allowed", 404: "Not found", 429: "Slow down"}
        messages = {
            403: "Your role does not allow this. Ask an admin if you need it.",
            404: "There is nothing here. It may have been deleted.",
        }
        return (
            render_template(
                "errors/error.html",
                code=status,
                title=titles.get(status, exc.name),
                message=messages.get(status, exc.description),
            ),
            status,
        )

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if request.path.startswith("/api/"):
            return api_error(500, "Internal error; nothing was saved. The server log has details.")
        return (
            render_template(
                "errors/error.html",
                code=500,
                title="Something broke",
                message="An internal error occurred and nothing was saved. The server log has the details.",
            ),
            500,
        )
