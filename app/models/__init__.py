"""SQLAlchemy models; invariants only (rules live in app/domain and app/services)."""

from app.models.audit import AuditEntry
from app.models.jobs import Deployment, Job
from app.models.network import Peer, Service, Subnet, Wan, WanFindings
from app.models.status import (
    PeerObservation,
    PeerStatus,
    PeerStatusSample,
    ReportToken,
    RouterStatus,
    Webhook,
    WebhookDelivery,
)
from app.models.user import ROLES, ApiToken, Bootstrap, LoginThrottle, User

__all__ = [
    "ROLES",
    "ApiToken",
    "AuditEntry",
    "Bootstrap",
    "Deployment",
    "Job",
    "LoginThrottle",
    "Peer",
    "PeerObservation",
    "PeerStatus",
    "PeerStatusSample",
    "ReportToken",
    "RouterStatus",
    "Service",
    "Subnet",
    "User",
    "Wan",
    "WanFindings",
    "Webhook",
    "WebhookDelivery",
]
