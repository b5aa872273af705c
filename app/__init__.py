"""WireWAN: WireGuard WAN overlays with hands-off MikroTik deployment."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.blueprints.api import errors as api_errors
from app.config import load_settings
from app.domain.errors import DomainError
from app.extensions import csrf, db, login_manager, migrate
from app.htmx import add_vary_header
from app.models.base import MAX_ID
from app.request_auth import bearer_token, is_api_request, mark_token_auth
from app.security import add_security_headers, secure_instance_files, trust_proxies


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(load_settings(config))
    app.instance_path = app.config["INSTANCE_PATH"]
    # Guards against absurd bodies; the longest legitimate form is a few kilobytes.
    if not (config or {}).get("MAX_CONTENT_LENGTH"):
        app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024

    trust_proxies(app)
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
    app.after_request(add_security_headers)
    secure_instance_files(app)
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
    if is_api_request():
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
    def load_user(session_id: str) -> User | None:
        # "<id>:<generation>" (User.get_id): a cookie from before the user's last logout, password
        # or role change or deactivation names an old generation and loads nobody.
        user_id, _, generation = session_id.partition(":")
        if not (user_id.isdigit() and generation.isdigit()) or int(user_id) > MAX_ID:
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or user.session_generation != int(generation):
            return None
        return user

    @login_manager.request_loader
    def load_user_from_token(req: Any) -> User | None:
        # Pages never accept a token: their forms rely on the session's CSRF protection.
        token = bearer_token(req)
        if token is None or not is_api_request(req):
            return None
        user = user_for_token(token)
        if user is not None:
            mark_token_auth(req)
            from app.services.tx import commit

            commit()
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        from flask import flash, redirect, url_for

        if is_api_request():
            return api_errors.api_error(401, "Log in or send 'Authorization: Bearer <token>'.")
        if request.headers.get("HX-Request") == "true":
            resp = jsonify({})
            resp.status_code = 401
            resp.headers["HX-Redirect"] = url_for("auth.login", next=request.full_path)
            return resp
        flash(login_manager.login_message, "info")
        return redirect(url_for("auth.login", next=request.full_path))


def _error_page(status: int, title: str, message: str) -> Any:
    return render_template("errors/error.html", code=status, title=title, message=message), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        if is_api_request():
            return api_errors.handle(exc)
        return _error_page(400, "Bad request", api_errors.CSRF_MESSAGE)

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Any:
        # Pages catch these in their views to show them under the field; what reaches here is the
        # API's, or a bad query value on a page.
        if is_api_request():
            return api_errors.handle(exc)
        db.session.rollback()
        return _error_page(exc.status, "Cannot do that", exc.message)

    @app.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> Any:
        if is_api_request():
            return api_errors.handle(exc)
        db.session.rollback()
        return _error_page(409, "Conflict", api_errors.CONFLICT_MESSAGE)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if is_api_request():
            return api_errors.handle(exc)
        status = exc.code or 500
        titles = {403: "Not allowed", 404: "Not found", 429: "Slow down", 503: "Unavailable"}
        messages = {
            403: "Your role does not allow this. Ask an admin if you need it.",
            404: "There is nothing here. It may have been deleted.",
        }
        return _error_page(status, titles.get(status, exc.name), messages.get(status, exc.description or ""))

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        if is_api_request():
            return api_errors.handle(exc)
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return _error_page(
            500,
            "Something broke",
            "An internal error occurred and nothing was saved. The server log has the details.",
        )
