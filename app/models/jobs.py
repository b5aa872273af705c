"""Background jobs and the deployments they leave behind. The database row is the truth; RQ only
schedules, so history survives Redis restarts and a dead worker's job can be told apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow

JOB_KINDS = ("test_connection", "preflight", "deploy", "verify", "revert", "clear", "probe")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "abandoned")
TERMINAL = frozenset({"succeeded", "failed", "abandoned"})


class Job(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    wan_id: Mapped[int | None] = mapped_column(ForeignKey("wan.id", ondelete="SET NULL"), index=True)
    peer_id: Mapped[int | None] = mapped_column(ForeignKey("peer.id", ondelete="SET NULL"), index=True)
    # Kept when the peer is deleted, so the history still says whose job it was.
    peer_name: Mapped[str] = mapped_column(String(48), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(254), default="system")
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | auto
    progress: Mapped[int] = mapped_column(default=0)
    step: Mapped[str] = mapped_column(String(200), default="waiting for a worker")
    log: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rq_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class Deployment(db.Model):  # type: ignore[name-defined,misc]  # db.Model is made at run time: no class to mypy
    """What one successful deploy put on a router: enough to show, diff, revert and clear it."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peer.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="deploy")  # deploy | revert | clear
    # The desired state as JSON, encrypted: it holds the interface's private key and the API password.
    desired_enc: Mapped[str | None] = mapped_column(Text, default=None)
    # The applied operations as readable CLI lines (secrets masked) and their hash.
    plan_lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    plan_hash: Mapped[str] = mapped_column(String(64), default="")
    config_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Unmanaged routes WireWAN demoted: [{"menu", "id", "dst", "gateway", "distance"}], restored on clear.
    demoted_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    writes: Mapped[int] = mapped_column(default=0)
    reads: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
