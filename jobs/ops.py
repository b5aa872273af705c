"""Operations jobs (DESIGN.md §7): the status poll of one router, the scheduled rounds that queue
polls and verifies of every configured router, and webhook deliveries.

Scheduling is RQ's own: `rq cron jobs/cron.py` (run.sh starts it) enqueues `schedule_round` every
STATUS_INTERVAL and VERIFY_INTERVAL seconds. A round queues one job per router unless that router
still has one queued or running (a poll never overlaps itself), and a Redis marker lets only one
round per interval through when several cron processes run.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

from sqlalchemy import delete, select

from app import crypto
from app.domain.routeros.desired import WG_PEERS
from app.extensions import db, redis_connection
from app.models import Job, Peer, Webhook, WebhookDelivery
from app.models.base import utcnow
from app.models.jobs import TERMINAL, JobKind, JobStatus
from app.routeros_api import RouterError, RouterSession, RouterTarget
from app.services import jobs as job_service
from app.services import status as status_service
from app.services import webhooks
from app.services.mikrotik import router_key
from app.services.tx import commit
from jobs.mikrotik import router_target, setting
from jobs.runtime import RouterBusy, _fresh_pool_after_fork, get_app, router_lock, tracked

SCHEDULED_KINDS = {"status": JobKind.STATUS, "verify": JobKind.VERIFY}
# Finished scheduled polls are history nobody reads after a day; the round deletes them.
KEEP_SCHEDULED_JOBS = timedelta(days=1)
DELIVERY_TIMEOUT = 10.0
LOST_AFTER = timedelta(minutes=30)


def _status_target(peer: Peer) -> RouterTarget:
    """A poll reads one menu: short timeouts, so a dead router costs seconds, not a round."""
    target = router_target(peer)
    return RouterTarget(
        host=target.host,
        port=target.port,
        use_tls=target.use_tls,
        verify_cert=target.verify_cert,
        username=target.username,
        password=target.password,
        connect_timeout=setting("STATUS_CONNECT_TIMEOUT", 5),
        command_timeout=setting("STATUS_COMMAND_TIMEOUT", 10),
    )


def run_status(job_id: int) -> None:
    """Read /interface/wireguard/peers on one router (reads only) and record what it says."""
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = _status_target(peer)
        try:
            with router_lock(router_key(peer), ctx, wait_seconds=setting("STATUS_LOCK_WAIT", 5)):
                try:
                    # Not audited call by call: a poll every minute would bury the audit log in reads.
                    with RouterSession(target) as s:
                        rows = s.print(WG_PEERS)
                        reads, writes = s.reads, s.writes
                except RouterError as exc:
                    status_service.record_router_poll(peer, None, exc.message)
                    ctx.warn(f"Router unreachable: {exc.message}")
                    ctx.result = {"reachable": False, "error": exc.message}
                    return
                observed = status_service.record_router_poll(peer, rows)
                ctx.log(f"{len(rows)} peer entries read, {len(observed)} peer(s) of this WAN")
                ctx.result = {"reachable": True, "peers": len(observed), "reads": reads, "writes": writes}
        except RouterBusy:
            ctx.log("another job is working on this router; this round skips it")
            ctx.result = {"skipped": True}


def configured_routers() -> list[Peer]:
    rows = db.session.scalars(
        select(Peer)
        .where(Peer.kind == "mikrotik", Peer.mt_host.is_not(None), Peer.mt_password_enc.is_not(None))
        .order_by(Peer.id)
    ).all()
    return [p for p in rows if p.mt_host and p.mt_password_enc]


def queue_round(kind: JobKind) -> list[int]:
    """Stage one scheduled job of `kind` per configured router that has none queued or running
    (the caller commits)."""
    # A queued job that never started within LOST_AFTER was lost with its RQ entry (Redis restarted):
    # it must not keep its router out of every later round.
    lost_before = utcnow() - LOST_AFTER
    busy = set(
        db.session.scalars(
            select(Job.peer_id).where(
                Job.kind == kind.value,
                Job.status.not_in([s.value for s in TERMINAL]),
                (Job.status == JobStatus.RUNNING.value) | (Job.created_at >= lost_before),
            )
        )
    )
    created = []
    for router in configured_routers():
        if router.id in busy:
            continue
        created.append(job_service.create(kind, router, trigger="schedule").id)
    return created


def schedule_round(kind: str) -> list[int]:
    """The cron entry point: queue a round of `kind` ("status" or "verify") over every router."""
    job_kind = SCHEDULED_KINDS[kind]
    with get_app().app_context():
        _fresh_pool_after_fork()
        interval = status_service.status_interval() if kind == "status" else status_service.verify_interval()
        queue = get_app().config.get("RQ_QUEUE") or "wirewan"
        # Several cron processes (one per host) must not double a round.
        marker = f"wirewan:{queue}:round:{kind}"
        if not redis_connection().set(marker, "1", nx=True, px=max(1, int(interval * 800))):
            return []
        db.session.execute(
            delete(Job).where(
                Job.trigger == "schedule",
                Job.kind == JobKind.STATUS.value,
                Job.status == JobStatus.SUCCEEDED.value,
                Job.finished_at < utcnow() - KEEP_SCHEDULED_JOBS,
            )
        )
        created = queue_round(job_kind)
        commit()
        return created


def deliver_webhook(delivery_id: int) -> None:
    """POST one delivery, signed; raise on failure so RQ retries it with backoff."""
    with get_app().app_context():
        _fresh_pool_after_fork()
        delivery = db.session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status == "delivered":
            return
        hook = db.session.get(Webhook, delivery.webhook_id)
        if hook is None:
            return
        body = webhooks.body_bytes(delivery.body)
        headers = {"Content-Type": "application/json", "User-Agent": "WireWAN", "X-WireWAN-Event": delivery.event}
        signature = webhooks.sign(crypto.decrypt(hook.secret_enc) if hook.secret_enc else None, body)
        if signature:
            headers["X-WireWAN-Signature"] = signature
        delivery.attempts += 1
        request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")  # noqa: S310 — http(s) only, checked on save
        error: str | None = None
        code: int | None = None
        try:
            with _OPENER.open(request, timeout=DELIVERY_TIMEOUT) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = str(getattr(exc, "reason", exc))[:300] or type(exc).__name__
        delivery.status_code, delivery.error = code, error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
            commit()
            return
        delivery.status = "failed"
        commit()
        raise DeliveryFailed(f"webhook delivery {delivery_id} failed: {error}")


class DeliveryFailed(Exception):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new address to POST to (it could name another scheme or host)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
