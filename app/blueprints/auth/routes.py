from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from app.blueprints.auth.forms import ChangePasswordForm, LoginForm, RegisterForm, TokenForm
from app.extensions import db
from app.models import ApiToken
from app.services import accounts
from app.services.tx import commit

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.index")


def _client() -> str:
    return request.remote_addr or "unknown"


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
            login_user(user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        form.password.errors = ["Wrong email or password."]
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    logout_user()
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
            login_user(user)
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
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.created_at.desc())
    ).all()
    return (
        render_template(
            "auth/account.html",
            password_form=password_form or ChangePasswordForm(prefix="pw"),
            token_form=token_form or TokenForm(prefix="tok"),
            tokens=tokens,
            new_token=new_token,
        ),
        status,
    )


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
            flash("Password changed.", "success")
            return redirect(url_for("auth.account"), code=303)
    return _account_page(password_form=form, status=400)


@bp.post("/account/tokens")
@login_required
def create_token() -> Any:
    form = TokenForm(prefix="tok")
    if form.validate_on_submit():
        try:
            value = accounts.create_token(current_user, form.name.data or "")
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
        return redirect(url_for("auth.account"), code=303)
    commit()
    flash("Token revoked.", "success")
    return redirect(url_for("auth.account"), code=303)
