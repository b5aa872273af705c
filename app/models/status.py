"""What WireWAN observes of a running overlay: peer status, its history, router reachability and
drift, webhooks and their deliveries, and the report tokens of Linux peers (DESIGN.md §7)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow

REPORT_TOKEN_PREFIX = "wwr_"


class PeerObservation(db.Model):  # type: ignore[name-defined,misc]
    """The latest reading of one peer by one source ("router:<id>" or "report"), with the raw
    counters, so the next reading's traffic is a difference and a restarted counter is noticed."""

    __tablename__ = "peer_observation"
    __table_args__ = (UniqueConstraint("peer_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    last_handshake_at: Mapped[datetime | None] = mapped_column(default=None)
    raw_rx: Mapped[int] = mapped_column(BigInteger, default=0)
    raw_tx: Mapped[int] = mapped_column(BigInteger, default=0)
    endpoint: Mapped[str | None] = mapped_column(String(64), default=None)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PeerStatus(db.Model):  # type: ignore[name-defined,misc]
    """The latest status of a peer: the freshest observation of every source (app.domain.status)."""

    __tablename__ = "peer_status"

    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), primary_key=True)
    online: Mapped[bool | None] = mapped_column(default=None)
    last_handshake_at: Mapped[datetime | None] = mapped_column(default=None)
    rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    endpoint: Mapped[str | None] = mapped_column(String(64), default=None)
    source: Mapped[str | None] = mapped_column(String(32), default=None)
    observed_at: Mapped[datetime | None] = mapped_column(default=None)


class PeerStatusSample(db.Model):  # type: ignore[name-defined,misc]
    """One point of a peer's history (for sparklines); the poll trims it to STATUS_HISTORY."""

    __tablename__ = "peer_status_sample"
    __table_args__ = (Index("ix_peer_status_sample_peer_id_at", "peer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    online: Mapped[bool | None] = mapped_column(default=None)
    rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class RouterStatus(db.Model):  # type: ignore[name-defined,misc]
    """Whether WireWAN reached a MikroTik peer at its last poll, and whether its last verify found it
    in sync. NULL is "not known yet"."""

    __tablename__ = "router_status"

    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), primary_key=True)
    reachable: Mapped[bool | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)
    in_sync: Mapped[bool | None] = mapped_column(default=None)
    drift_count: Mapped[int] = mapped_column(default=0)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)


class ReportToken(db.Model):  # type: ignore[name-defined,misc]
    """The token a Linux peer posts its `wg show dump` with: only its SHA-256 is stored."""

    __tablename__ = "report_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    @staticmethod
    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    @classmethod
    def issue(cls, peer_id: int) -> tuple[ReportToken, str]:
        value = REPORT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        return cls(peer_id=peer_id, token_hash=cls.digest(value)), value


class Webhook(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Encrypted (app.crypto), not hashed: signing needs the secret itself.
    secret_enc: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
