"""Background jobs and the deployments they leave behind. The database row is the truth; RQ only
schedules, so history survives Redis restarts and a dead worker's job can be told apart."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class JobKind(StrEnum):
    """Every kind of job: its stored name, the label people read, and the function a worker runs.

    Job functions are named by dotted path, so the web app enqueues them without importing `jobs/`.
    """

    label: str
    function: str
    changes_router: bool

    def __new__(cls, value: str, label: str, changes_router: bool = False, module: str = "jobs.mikrotik") -> JobKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.function = f"{module}.run_{value}"
        # After one of these, a preflight's plan is used up: the router is no longer what it saw.
        member.changes_router = changes_router
        return member

    if TYPE_CHECKING:
        # JobKind("deploy") looks a member up by value; without this, mypy reads it as a call of __new__.
        def __init__(self, value: object) -> None: ...

    TEST_CONNECTION = ("test_connection", "Test connection")
    PREFLIGHT = ("preflight", "Preflight")
    DEPLOY = ("deploy", "Deploy", True)
    VERIFY = ("verify", "Verify")
    REVERT = ("revert", "Revert", True)
    CLEAR = ("clear", "Clear", True)
    PROBE = ("probe", "Handshake probe")
    STATUS = ("status", "Status poll", False, "jobs.ops")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"


JOB_KINDS = tuple(JobKind)
JOB_STATUSES = tuple(JobStatus)
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.ABANDONED})
CHANGING_KINDS = tuple(kind for kind in JobKind if kind.changes_router)


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
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | auto | schedule
    progress: Mapped[int] = mapped_column(default=0)
    step: Mapped[str] = mapped_column(String(200), default="queued")
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

    # The lifecycle (NetBox's Job.start()/terminate()): every status change goes through these, so a
    # row never says "running" without a start time or "failed" without a reason.

    def start(self) -> None:
        now = utcnow()
        self.status, self.started_at, self.heartbeat_at = JobStatus.RUNNING, now, now
        self.step = "started"

    def terminate(self, status: JobStatus, error: str | None = None) -> None:
        """End the job as succeeded or failed; the last log line says how it ended."""
        if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            raise ValueError(f"terminate() ends a job as succeeded or failed, not {status}")
        self.status, self.finished_at = status, utcnow()
        if status == JobStatus.SUCCEEDED:
            self.progress, self.step = 100, "done"
            self.append_log("done")
        else:
            self.error, self.step = error, "failed"
            self.append_log(f"FAILED: {error or ''}")

    def abandon(self, reason: str, summary: str = "worker stopped") -> None:
        """Nothing more will happen to it: its worker died, or the queue lost it."""
        self.status, self.finished_at, self.error = JobStatus.ABANDONED, utcnow(), reason
        self.append_log(f"ABANDONED: {summary}")

    def append_log(self, line: str) -> None:
        # A new list: SQLAlchemy only notices a change to a JSON column by assignment.
        self.log = [*(self.log or []), f"{utcnow():%H:%M:%S} {line}"]


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
