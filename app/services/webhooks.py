"""Webhooks: who is told about which events, and the deliveries that tell them.

`emit()` stages one delivery row per subscribed webhook in the caller's transaction; after the
commit (app.services.tx) each goes to RQ as its own job, which POSTs it, signs it and retries with
backoff (jobs/ops.py). Callers emit on state changes only: the rules of when live with the state
(app.domain.status.transition, router reachability and drift in app.services.status).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from app import crypto
from app.domain.errors import DomainError
from app.extensions import db, job_queue
from app.models import Webhook, WebhookDelivery
from app.models.base import utcnow
from app.services import audit

EVENTS = ("peer.down", "peer.up", "router.unreachable", "router.drift", "job.failed")
STAGED = "wirewan_webhook_deliveries"
URL_MAX = 2048
SECRET_MAX = 200
DELIVER_FUNCTION = "jobs.ops.deliver_webhook"


class WebhookInvalid(DomainError):
    default_code = "invalid"
    default_status = 422


def validate(url: Any, events: Any, secret: Any) -> tuple[str, list[str], str | None]:
    """A webhook's fields, or WebhookInvalid naming the field. Any host is allowed (loopback too:
    only admins set webhooks, and a local relay is common); only http and https."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookInvalid("Give the URL to POST events to.", "url")
    url = url.strip()
    if len(url) > URL_MAX or any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        raise WebhookInvalid("The URL is too long or holds spaces or control characters.", "url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises on a bad port
    except ValueError as exc:
        raise WebhookInvalid(f"The URL is not valid: {exc}.", "url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookInvalid("Only http:// and https:// URLs with a host are accepted.", "url")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise WebhookInvalid(f"Give a list of events out of: {', '.join(EVENTS)}.", "events")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise WebhookInvalid(f"Unknown event '{unknown[0][:40]}'; known: {', '.join(EVENTS)}.", "events")
    if secret is not None and (not isinstance(secret, str) or len(secret) > SECRET_MAX):
        raise WebhookInvalid(f"The secret must be text of at most {SECRET_MAX} characters.", "secret")
    return url, sorted(set(events), key=EVENTS.index), secret or None


def create(url: Any, events: Any, secret: Any = None) -> Webhook:
    """Stage a webhook (the caller commits)."""
    url, events, secret = validate(url, events, secret)
    hook = Webhook(url=url, events=events, secret_enc=crypto.encrypt(secret) if secret else None)
    db.session.add(hook)
    db.session.flush()
    # The host only: incoming-webhook URLs (Slack, Mattermost) carry their secret in the path.
    audit.record("webhook-create", "webhook", hook.id, summary=f"webhook to {_host(url)} for {', '.join(events)}")
    return hook


def delete(hook: Webhook) -> None:
    """Stage the deletion of a webhook and its delivery log (the caller commits)."""
    audit.record("webhook-delete", "webhook", hook.id, summary=f"webhook to {_host(hook.url)} deleted")
    db.session.delete(hook)


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def sign(secret: str | None, body: bytes) -> str | None:
    if not secret:
        return None
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def emit(event: str, message: str, *, wan_id: int | None = None, peer_id: int | None = None) -> int:
    """Stage a delivery of `event` to every webhook subscribed to it; returns how many."""
    if event not in EVENTS:
        raise ValueError(event)
    at = utcnow().isoformat() + "Z"
    # `text` makes a Slack or Mattermost incoming webhook show the message as it is.
    body = {"event": event, "wan_id": wan_id, "peer_id": peer_id, "message": message, "at": at,
            "text": f"[WireWAN] {event}: {message}"}  # fmt: skip
    count = 0
    for hook in db.session.scalars(select(Webhook).order_by(Webhook.id)):
        if event not in (hook.events or []):
            continue
        delivery = WebhookDelivery(webhook_id=hook.id, event=event, body=body)
        db.session.add(delivery)
        db.session.flush()
        db.session.info.setdefault(STAGED, []).append(delivery.id)
        count += 1
    return count


def has_staged() -> bool:
    return bool(db.session.info.get(STAGED))


def retry_intervals() -> list[int]:
    raw = current_app.config.get("WEBHOOK_RETRY_INTERVALS") or "10,60,300"
    return [int(x) for x in str(raw).split(",") if x.strip()]


def enqueue_staged() -> list[int]:
    """Send the deliveries of the just-committed transaction to RQ (after the commit, so a worker
    never sees a rolled-back row). A delivery that cannot be queued says so in its row."""
    from rq import Retry

    ids: list[int] = db.session.info.pop(STAGED, [])
    intervals = retry_intervals()
    for delivery_id in ids:
        try:
            job_queue().enqueue_call(
                DELIVER_FUNCTION,
                args=(delivery_id,),
                timeout=60,
                result_ttl=600,
                failure_ttl=86400,
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            )
        except Exception as exc:  # noqa: BLE001 — Redis down: the delivery log must say so
            delivery = db.session.get(WebhookDelivery, delivery_id)
            if delivery is not None:
                delivery.status = "failed"
                delivery.error = f"The job queue (Redis) is unreachable: {type(exc).__name__}"
            current_app.logger.warning("could not enqueue webhook delivery %s: %s", delivery_id, exc)
    return ids


def discard_staged() -> None:
    db.session.info.pop(STAGED, None)
