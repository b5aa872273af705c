from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.blueprints.auth.forms import ChangePasswordForm, LoginForm, RegisterForm, TokenForm
from app.extensions import db
from app.models import User
from app.security import no_store
from app.services import accounts
from app.services.tx import commit

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.index")


def _client() -> str:
    # The proxy's address unless TRUSTED_PROXIES says how many proxies to look through (ProxyFix).
    return request.remote_addr or "unknown"


def _new_csrf_token() -> None:
    """A fresh CSRF token at every change of who is logged in, so that a token seen before login
    (or by the previous user of the browser) is worth nothing after it."""
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)


def _start_session(user: User) -> None:
    _new_csrf_token()
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    if accounts.registration_open():
        return redirect(url_for("auth.register"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data or "", form.password.data or "", _client())
        except accounts.Throttled as exc:
            commit()
            form.password.errors = [str(exc)]
            return render_template("auth/login.html", form=form), 429
        commit()
        if user is not None:
            _start_session(user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        form.password.errors = ["Wrong email or password."]
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    """Ends every session of this user (other browsers too): logging out is how a user who left a
    session open elsewhere closes it."""
    user = db.session.get(User, current_user.id)
    if user is not None:
        user.end_sessions()
        commit()
    logout_user()
    session.clear()
    _new_csrf_token()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/register", methods=["GET", "POST"])
def register() -> Any:
    if not accounts.registration_open():
        flash("Registration is closed. Ask an admin for an account.", "info")
        return redirect(url_for("auth.login"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = accounts.register_first_user(form.email.data or "", form.password.data or "")
        except accounts.AccountError as exc:
            db.session.rollback()
            getattr(form, exc.field or "email").errors = [exc.message]
        else:
            commit()
            _start_session(user)
            flash("Welcome! You are the admin of this WireWAN.", "success")
            return redirect(url_for("main.index"), code=303)
    return render_template("auth/register.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/account", methods=["GET"])
@login_required
def account() -> Any:
    return _account_page()


def _account_page(
    password_form: ChangePasswordForm | None = None,
    token_form: TokenForm | None = None,
    new_token: str | None = None,
    status: int = 200,
) -> Any:
    page = render_template(
        "auth/account.html",
        password_form=password_form or ChangePasswordForm(prefix="pw"),
        token_form=token_form or TokenForm(prefix="tok"),
        tokens=accounts.visible_tokens(current_user),
        new_token=new_token,
    )
    response = make_response(page, status)
    return no_store(response) if new_token else response


@bp.post("/account/password")
@login_required
def change_password() -> Any:
    form = ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current_password.data or "", form.new_password.data or "")
        except accounts.AccountError as exc:
            db.session.rollback()
            getattr(form, exc.field or "new_password").errors = [exc.message]
        else:
            commit()
            # Other sessions ended with the change; this one continues under the new generation.
            _start_session(current_user._get_current_object())
            flash("Password changed. Your other sessions are logged out.", "success")
            return redirect(url_for("auth.account"), code=303)
    return _account_page(password_form=form, status=400)


@bp.post("/account/tokens")
@login_required
def create_token() -> Any:
    form = TokenForm(prefix="tok")
    if form.validate_on_submit():
        try:
            value = accounts.create_token(current_user, form.name.data or "", form.expires_in_days.data)
        except accounts.AccountError as exc:
            db.session.rollback()
            form.name.errors = [exc.message]
        else:
            commit()
            # Shown once, in this response only: the database keeps just its hash.
            return _account_page(new_token=value)
    return _account_page(token_form=form, status=400)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    try:
        accounts.revoke_token(current_user, token_id)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_back(), code=303)
    commit()
    flash("Token revoked.", "success")
    return redirect(_back(), code=303)


def _back() -> str:
    # The users page revokes other users' tokens through this view too.
    return url_for("admin.users") if request.form.get("back") == "users" else url_for("auth.account")
