"""Operations API (API.md "Operations", "PeerStatus"): live status, webhooks (admin) and the
report endpoint Linux peers post their `wg show dump` to with their own report token."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.blueprints.api import bp
from app.blueprints.api import openapi as oa
from app.blueprints.api.openapi import NO_CONTENT, documented, json_response
from app.blueprints.api.routes import MalformedRequest, _body, _created, _wan_or_404
from app.blueprints.lookups import peer_or_404
from app.extensions import db
from app.models import Peer, RouterStatus, Webhook, WebhookDelivery
from app.request_auth import bearer_token
from app.services import reports, webhooks
from app.services import status as status_service
from app.services.tx import commit


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def router_status_json(router: Peer, rs: RouterStatus | None) -> dict[str, Any]:
    return {
        "peer_id": router.id,
        "name": router.name,
        "reachable": rs.reachable if rs else None,
        "error": rs.error if rs else None,
        "checked_at": _iso(rs.checked_at) if rs else None,
        "in_sync": rs.in_sync if rs else None,
        "drift_count": rs.drift_count if rs else 0,
        "verified_at": _iso(rs.verified_at) if rs else None,
    }


@bp.get("/wan/<int:wan_id>/status")
@documented(
    "Live status of a WAN",
    tags=["Operations"],
    description="Every peer's PeerStatus, and every MikroTik's reachability (status poll) and sync (verify).",
    responses={200: json_response(oa.WanStatusSchema, "The WAN's status.")},
    errors=(404,),
)
def wan_status(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    peers = db.session.scalars(select(Peer).where(Peer.wan_id == wan.id).order_by(Peer.id)).all()
    statuses = status_service.statuses_for([p.id for p in peers])
    routers = [p for p in peers if p.kind == "mikrotik"]
    rstat = {r.peer_id: r for r in db.session.scalars(select(RouterStatus).where(
        RouterStatus.peer_id.in_([p.id for p in routers])))}  # fmt: skip
    return jsonify(
        {
            "wan_id": wan.id,
            "peers": [status_service.status_json(p.id, statuses.get(p.id)) for p in peers],
            "routers": [router_status_json(r, rstat.get(r.id)) for r in routers],
        }
    )


@bp.get("/peers/<int:peer_id>/status")
@documented(
    "Live status of a peer",
    tags=["Operations"],
    responses={200: json_response(oa.PeerStatusSchema, "The peer's status.")},
    errors=(404,),
)
def peer_status(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    return jsonify(status_service.status_json(peer.id, status_service.statuses_for([peer.id]).get(peer.id)))


@bp.post("/peers/<int:peer_id>/report")
@documented(
    "A Linux peer reports its own status",
    tags=["Operations"],
    description="The body is the text of `wg show <interface> dump`. Authenticated only by that peer's report "
    "token (`Authorization: Bearer wwr_…`, made on the peer page); API tokens and sessions are refused. The "
    "report may only describe the peer's own interface and peers of its WAN; anything malformed is refused "
    "whole (422) and nothing is stored.",
    responses={204: {"description": "Recorded."}},
    errors=(403, 404, 413, 422),
    security=[{"reportToken": []}],
)
def peer_report(peer_id: int) -> Any:
    from app.blueprints.api.errors import api_error

    token = bearer_token() or ""
    owner = reports.peer_for_token(token) if token.startswith("wwr_") else None
    if owner is None:
        return api_error(401, "Send this peer's report token: 'Authorization: Bearer wwr_…'.")
    if owner.peer_id != peer_id:
        return api_error(403, "This report token belongs to another peer.")
    peer = peer_or_404(peer_id)
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError:
        return api_error(422, "The report is not UTF-8 text.", code="invalid")
    try:
        reports.record_report(peer, owner, text)
    except reports.ReportInvalid as exc:
        db.session.rollback()
        return api_error(422, exc.message, code="invalid")
    commit()
    return "", 204


# --- webhooks (admin) ------------------------------------------------------------------------------


def _admin() -> None:
    if not current_user.is_admin:
        abort(403, "Only an admin may manage webhooks.")


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events or []),
        "has_secret": hook.secret_enc is not None,
        "created_at": _iso(hook.created_at),
    }


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {"event": d.event, "status_code": d.status_code, "error": d.error, "attempts": d.attempts, "at": _iso(d.at)}


@bp.get("/webhooks")
@documented(
    "List webhooks",
    tags=["Operations"],
    responses={200: json_response(oa.WebhookSchema, "Every webhook (admin).", many=True)},
    errors=(403,),
)
def list_webhooks() -> Any:
    _admin()
    return jsonify([webhook_json(h) for h in db.session.scalars(select(Webhook).order_by(Webhook.id))])


@bp.post("/webhooks")
@documented(
    "Add a webhook",
    tags=["Operations"],
    description="Events: peer.down, peer.up, router.unreachable, router.drift, job.failed. Each delivery POSTs "
    "`{event, wan_id, peer_id, message, at, text}` with `X-WireWAN-Event` and, with a secret, "
    "`X-WireWAN-Signature: sha256=<HMAC-SHA256 of the body>`; retried with backoff.",
    body=oa.WebhookCreateSchema,
    responses={201: json_response(oa.WebhookSchema, "Created.", location=True)},
    errors=(400, 403, 413, 422),
)
def create_webhook() -> Any:
    _admin()
    data = _body(("url", "events", "secret"))
    if "url" not in data or "events" not in data:
        raise MalformedRequest("Send url and events.", "url" if "url" not in data else "events")
    hook = webhooks.create(data["url"], data["events"], data.get("secret"))
    commit()
    return _created(webhook_json(hook), url_for("api.webhook_deliveries", webhook_id=hook.id))


@bp.delete("/webhooks/<int:webhook_id>")
@documented("Delete a webhook", tags=["Operations"], responses={204: NO_CONTENT}, errors=(403, 404))
def delete_webhook(webhook_id: int) -> Any:
    _admin()
    hook = db.session.get(Webhook, webhook_id) or abort(404, "No such webhook.")
    webhooks.delete(hook)
    commit()
    return "", 204


@bp.get("/webhooks/<int:webhook_id>/deliveries")
@documented(
    "A webhook's delivery log",
    tags=["Operations"],
    responses={200: json_response(oa.WebhookDeliverySchema, "Newest first (at most 200).", many=True)},
    errors=(403, 404),
)
def webhook_deliveries(webhook_id: int) -> Any:
    _admin()
    hook = db.session.get(Webhook, webhook_id) or abort(404, "No such webhook.")
    rows = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(200)
    )
    return jsonify([delivery_json(d) for d in rows])
