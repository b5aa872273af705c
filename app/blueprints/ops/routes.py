"""/metrics, the webhook settings page, report tokens and the live status fragments."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import select

from app.domain.errors import DomainError
from app.domain.sparkline import sparkline_svg
from app.extensions import db
from app.models import Peer, RouterStatus, Webhook, WebhookDelivery
from app.models.base import utcnow
from app.permissions import admin_required, editor_required
from app.request_auth import bearer_token
from app.services import metrics, reports, webhooks
from app.services import status as status_service
from app.services.accounts import user_for_token
from app.services.tx import commit

bp = Blueprint("ops", __name__)
DELIVERY_LOG = 50


def _metrics_allowed() -> bool:
    value = bearer_token()
    if value is None:
        return False
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if expected and hmac.compare_digest(value.encode(), expected.encode()):
        return True
    return user_for_token(value) is not None


@bp.get("/metrics")
def prometheus_metrics() -> Any:
    """Prometheus text; any API token, or METRICS_TOKEN, as a bearer token."""
    if not _metrics_allowed():
        resp = current_app.response_class(
            "Send an API token or METRICS_TOKEN: 'Authorization: Bearer <token>'.\n", status=401, mimetype="text/plain"
        )
        resp.headers["WWW-Authenticate"] = 'Bearer realm="wirewan-metrics"'
        return resp
    body = metrics.render()
    db.session.rollback()  # a token's last_used_at is not worth a write per scrape
    return current_app.response_class(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


# --- webhooks (admin) --------------------------------------------------------------------------------


def _webhook_page(status: int = 200, error: str | None = None, form: dict[str, Any] | None = None) -> Any:
    hooks = db.session.scalars(select(Webhook).order_by(Webhook.id)).all()
    deliveries = db.session.scalars(
        select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(DELIVERY_LOG)
    ).all()
    return (
        render_template(
            "ops/webhooks.html",
            hooks=hooks,
            deliveries=deliveries,
            urls={h.id: h.url for h in hooks},
            events=webhooks.EVENTS,
            error=error,
            form=form or {},
        ),
        status,
    )


@bp.get("/settings/webhooks")
@admin_required
def webhook_settings() -> Any:
    return _webhook_page()


@bp.post("/settings/webhooks")
@admin_required
def add_webhook() -> Any:
    form = {"url": request.form.get("url", ""), "events": request.form.getlist("events")}
    try:
        webhooks.create(form["url"], form["events"], request.form.get("secret") or None)
    except DomainError as exc:
        db.session.rollback()
        return _webhook_page(422, exc.message, form)
    commit()
    flash("Webhook added.", "success")
    return redirect(url_for("ops.webhook_settings"), code=303)


@bp.post("/settings/webhooks/<int:webhook_id>/delete")
@admin_required
def delete_webhook(webhook_id: int) -> Any:
    hook = db.session.get(Webhook, webhook_id) or abort(404)
    webhooks.delete(hook)
    commit()
    flash("Webhook deleted.", "success")
    return redirect(url_for("ops.webhook_settings"), code=303)


# --- report tokens ---------------------------------------------------------------------------------


@bp.post("/peers/<int:peer_id>/report-token")
@editor_required
def issue_report_token(peer_id: int) -> Any:
    """Make (or replace) the peer's report token and show it once, with the timer that uses it."""
    peer = db.session.get(Peer, peer_id) or abort(404)
    try:
        token = reports.issue(peer)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("peers.detail", peer_id=peer.id), code=303)
    commit()
    resp = current_app.make_response(
        render_template(
            "ops/report_token.html",
            peer=peer,
            token=token,
            report_url=url_for("api.peer_report", peer_id=peer.id, _external=True),
            interface=peer.wan.interface_name,
        )
    )
    resp.headers["Cache-Control"] = "no-store"  # the token is shown once
    return resp


@bp.post("/peers/<int:peer_id>/report-token/revoke")
@editor_required
def revoke_report_token(peer_id: int) -> Any:
    peer = db.session.get(Peer, peer_id) or abort(404)
    revoked = reports.revoke(peer)
    commit()
    flash("Report token revoked." if revoked else "This peer had no report token.", "success")
    return redirect(url_for("peers.detail", peer_id=peer.id), code=303)


# --- live status fragments ---------------------------------------------------------------------------


@bp.get("/peers/<int:peer_id>/status")
@login_required
def peer_status_fragment(peer_id: int) -> Any:
    """The peer page's status card (htmx refreshes it every poll interval)."""
    peer = db.session.get(Peer, peer_id) or abort(404)
    return render_template("ops/_peer_status.html", **peer_status_context(peer))


def peer_status_context(peer: Peer) -> dict[str, Any]:
    st = status_service.statuses_for([peer.id]).get(peer.id)
    return {
        "peer": peer,
        "st": st,
        "names": source_names(peer.wan_id),
        "samples": status_service.history(peer.id),
        "refresh": int(status_service.status_interval()),
        "has_report_token": reports.has_token(peer.id),
        "router_status": db.session.get(RouterStatus, peer.id) if peer.kind == "mikrotik" else None,
    }


def source_names(wan_id: int, only: Collection[str] | None = None) -> dict[str, str]:
    """ "router:<id>" → "seen by <router name>", "report" → "reported"; with `only`, just the
    routers among those sources (a page of peers names a few of a WAN's routers)."""
    query = select(Peer.id, Peer.name).where(Peer.wan_id == wan_id, Peer.kind == "mikrotik")
    wanted = None if only is None else sorted(status_service.router_ids(only))
    if wanted is not None:
        query = query.where(Peer.id.in_(wanted))
    routers: list[tuple[int, str]] = [] if wanted == [] else [(i, n) for i, n in db.session.execute(query)]
    names = {status_service.router_source(i): f"seen by {n}" for i, n in routers}
    names[status_service.REPORT_SOURCE] = "reported"
    return names


# --- template helpers ------------------------------------------------------------------------------


@bp.app_template_filter("ago")
def ago(value: Any) -> str:
    """`42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `never` for None."""
    if value is None:
        return "never"
    seconds = max(0, int((utcnow() - value).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size * 2 or (unit == "min" and seconds >= 120):
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


@bp.app_template_filter("bytes")
def human_bytes(value: Any) -> str:
    n = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@bp.app_template_global("sparkline")
def sparkline(samples: Any, label: str) -> Markup:
    return Markup(sparkline_svg([s.rx_bytes + s.tx_bytes for s in samples], label))  # noqa: S704 — built and escaped by sparkline_svg


@bp.app_template_global("status_interval")
def status_interval_seconds() -> int:
    return int(status_service.status_interval())
