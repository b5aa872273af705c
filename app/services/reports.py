"""Report tokens of Linux peers and the reports they post (`wg show <iface> dump`).

A token is shown once when made (only its SHA-256 is stored), authorises nothing but
`POST /api/peers/{id}/report` of its own peer, and is revoked by deleting it. A report is parsed
strictly (app.domain.status.parse_dump) and becomes the peer's observation of itself, source "report".
"""

from __future__ import annotations

from sqlalchemy import delete, select

from app.domain import status as rules
from app.domain.errors import DomainError
from app.extensions import db
from app.models import Peer, ReportToken
from app.models.base import utcnow
from app.services import audit
from app.services import status as status_service

REPORTING_KINDS = ("server", "client")


class ReportInvalid(DomainError):
    default_code = "invalid"
    default_status = 422


def peer_for_token(value: str) -> ReportToken | None:
    if not value or len(value) > 200:
        return None
    return db.session.scalar(select(ReportToken).where(ReportToken.token_hash == ReportToken.digest(value)))


def issue(peer: Peer) -> str:
    """Make (or replace) the peer's report token; returns its value, to be shown once. Caller commits."""
    if peer.kind not in REPORTING_KINDS:
        raise ReportInvalid("Only server and client peers report themselves; routers are polled.", "kind")
    db.session.execute(delete(ReportToken).where(ReportToken.peer_id == peer.id))
    token, value = ReportToken.issue(peer.id)
    db.session.add(token)
    audit.record("report-token-issue", "peer", peer.id, summary=f"report token made for '{peer.name}'",
                 wan_id=peer.wan_id)  # fmt: skip
    return value


def revoke(peer: Peer) -> bool:
    gone = db.session.execute(delete(ReportToken).where(ReportToken.peer_id == peer.id))
    if getattr(gone, "rowcount", 0):
        audit.record("report-token-revoke", "peer", peer.id, summary=f"report token of '{peer.name}' revoked",
                     wan_id=peer.wan_id)  # fmt: skip
        return True
    return False


def has_token(peer_id: int) -> bool:
    return db.session.scalar(select(ReportToken.id).where(ReportToken.peer_id == peer_id)) is not None


def record_report(peer: Peer, token: ReportToken, text: str) -> None:
    """Parse and record a report (the caller commits); ReportInvalid leaves nothing behind."""
    try:
        dump = rules.parse_dump(text)
        others = db.session.scalars(select(Peer.public_key).where(Peer.wan_id == peer.wan_id, Peer.id != peer.id))
        observation = rules.dump_observation(dump, peer.public_key, others)
    except rules.DumpError as exc:
        raise ReportInvalid(str(exc), "body") from exc
    token.last_used_at = utcnow()
    status_service.record_observations(peer.wan_id, status_service.REPORT_SOURCE, [observation])
