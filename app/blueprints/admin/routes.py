from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.blueprints.admin.forms import RoleForm, UserForm
from app.extensions import db
from app.models import User
from app.permissions import admin_required
from app.services import accounts
from app.services.tx import commit

bp = Blueprint("admin", __name__, url_prefix="/users")


@bp.route("/", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    form = UserForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            try:
                user = accounts.create_user(form.email.data or "", form.password.data or "", form.role.data)
            except accounts.AccountError as exc:
                db.session.rollback()
                getattr(form, exc.field or "email").errors = [exc.message]
                status = exc.status if exc.status != 403 else 400
            else:
                commit()
                flash(f"User {user.email} created as {user.role}.", "success")
                return redirect(url_for("admin.users"), code=303)
    all_users = db.session.scalars(select(User).order_by(User.email)).all()
    return (
        render_template(
            "admin/users.html",
            form=form,
            users=all_users,
            role_form=RoleForm(),
            tokens=accounts.visible_tokens(current_user, all_users=True),
        ),
        status,
    )


@bp.post("/<int:user_id>/role")
@admin_required
def set_role(user_id: int) -> Any:
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Choose a valid role.", "error")
        return redirect(url_for("admin.users"), code=303)
    try:
        user = accounts.set_role(current_user, user_id, form.role.data)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        commit()
        flash(f"{user.email} is now {user.role}.", "success")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/<int:user_id>/<any(activate, deactivate):action>")
@admin_required
def set_active(user_id: int, action: str) -> Any:
    """Deactivating logs the user out everywhere and revokes their tokens at once."""
    try:
        user = accounts.set_active(current_user, user_id, action == "activate")
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        commit()
        if user.active:
            flash(f"{user.email} can log in again (their old tokens stay revoked).", "success")
        else:
            flash(f"{user.email} is deactivated: logged out everywhere, tokens revoked.", "success")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/<int:user_id>/delete")
@admin_required
def delete_user(user_id: int) -> Any:
    try:
        accounts.delete_user(current_user, user_id)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        commit()
        flash("User deleted. Their audit entries and jobs remain.", "success")
    return redirect(url_for("admin.users"), code=303)
