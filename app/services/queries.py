"""Read-side queries: what the web pages and the JSON API show, as plain data. Nothing here writes.

A page and its API twin call the same function here, so they cannot drift apart (a WAN's peer count,
which jobs a filter selects).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import defer, selectinload

from app import crypto
from app.domain.routeros.desired import DesiredState
from app.domain.routeros.plan import state_lines
from app.extensions import db
from app.models import Deployment, Job, Peer, PeerStatus, Subnet, Wan
from app.models.base import MAX_ID
from app.models.jobs import JobKind
from app.services import configs, mikrotik

HISTORY_ON_PEER_PAGE = 10


# ---------------------------------------------------------------- WAN list


@dataclass(frozen=True)
class WanListRow:
    wan: Wan
    peer_count: int


def wans_with_peer_counts() -> list[WanListRow]:
    """Every WAN by name, with its number of peers (two queries, whatever the number of WANs)."""
    counts = dict(db.session.execute(select(Peer.wan_id, func.count(Peer.id)).group_by(Peer.wan_id)).all())
    return [WanListRow(wan, counts.get(wan.id, 0)) for wan in db.session.scalars(select(Wan).order_by(Wan.name))]


# ---------------------------------------------------------------- job list


@dataclass(frozen=True)
class JobFilters:
    wan_id: int | None = None
    peer_id: int | None = None
    status: str | None = None  # one of JOB_STATUSES; the caller decides what to do with others
    # The pages leave out status polls that succeeded (one per router per minute: the status shows
    # them, they are not news); the API lists every job.
    quiet_polls: bool = False


# Succeeded status polls (one per router per minute) are what the status shows, not news.
QUIET_POLLS = (Job.kind == JobKind.STATUS.value) & (Job.status == "succeeded")
# The same and the polls on their way (queued or running): what a list of the last few jobs leaves
# out, or every minute's round would fill it. A poll that failed or was abandoned stays: that is news.
ROUTINE_POLLS = (Job.kind == JobKind.STATUS.value) & Job.status.in_(("queued", "running", "succeeded"))


def list_jobs(filters: JobFilters, limit: int) -> list[Job]:
    """The newest `limit` jobs that match every filter given."""
    ids = (filters.wan_id, filters.peer_id)
    if any(value is not None and abs(value) > MAX_ID for value in ids):
        return []  # names no row, and the driver cannot bind it (a 500 on PostgreSQL)
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if not filters.quiet_polls:
        query = query.where(~QUIET_POLLS)
    if filters.wan_id is not None:
        query = query.where(Job.wan_id == filters.wan_id)
    if filters.peer_id is not None:
        query = query.where(Job.peer_id == filters.peer_id)
    if filters.status:
        query = query.where(Job.status == filters.status)
    return list(db.session.scalars(query))


# ---------------------------------------------------------------- the Router section of a MikroTik peer


# "Can this plan be deployed" is one rule, asked by the page and the API alike.
Approval = mikrotik.Approval
approval = mikrotik.deploy_approval


def desired_lines(deployment: Deployment) -> list[str]:
    """A deployment's desired state as readable RouterOS lines, secrets shown as `***`."""
    if not deployment.desired_enc:
        return []  # a clear: nothing of WireWAN's is wanted on the router
    try:
        desired = DesiredState.from_json(crypto.decrypt(deployment.desired_enc))
    except crypto.SecretUnreadable:
        return ["# (this deployment's stored state cannot be decrypted: ENCRYPTION_KEY changed)"]
    return state_lines(desired)


@dataclass(frozen=True)
class HistoryRow:
    deployment: Deployment
    diff: str
    changed: int  # lines added or removed against the deployment before


def deployment_history(peer: Peer, limit: int | None = None) -> list[HistoryRow]:
    """Newest first, each with the diff of its desired state against the deployment before it."""
    query = db.session.query(Deployment).filter(Deployment.peer_id == peer.id).order_by(Deployment.id.desc())
    # One more than shown: the oldest shown row is diffed against it.
    rows = query.limit(limit + 1).all() if limit is not None else query.all()
    lines = [desired_lines(d) for d in rows]
    out = []
    for i, dep in enumerate(rows[:limit] if limit is not None else rows):
        before = lines[i + 1] if i + 1 < len(rows) else []
        label = f"deployment #{rows[i + 1].id}" if i + 1 < len(rows) else "(nothing deployed)"
        diff = list(difflib.unified_diff(before, lines[i], label, f"deployment #{dep.id}", lineterm="", n=0))
        changed = sum(1 for d in diff[2:] if d[:1] in "+-")
        out.append(HistoryRow(dep, "\n".join(diff), changed))
    return out


@dataclass(frozen=True)
class RouterPanel:
    """Everything the Router section of a MikroTik peer's page shows."""

    stale: bool
    latest_job: Job | None
    preflight: Job | None  # the latest preflight, only while its plan can still be deployed
    configured: bool
    history: list[HistoryRow]
    history_total: int
    revertable: bool
    revert_to: Deployment | None = None  # the last deployment that differs from the latest one
    in_sync: bool = False  # the latest preflight found nothing to deploy
    busy: Job | None = None  # a queued or running job of this router (any WAN): actions wait for it
    busy_reason: str = ""


def router_panel(peer: Peer, stale: bool | None = None) -> RouterPanel:
    """The Router section's data; `stale` when the caller already knows it (saves rendering)."""
    latest = db.session.scalar(
        # Not a status poll: the Status card shows those (an unreachable router too), and one each
        # minute would push the operator's own last job (a deploy's result, a test) out of sight.
        select(Job).where(Job.peer_id == peer.id, Job.kind != JobKind.STATUS.value).order_by(Job.id.desc()).limit(1)
    )
    preflight = db.session.scalar(
        select(Job).where(Job.peer_id == peer.id, Job.kind == JobKind.PREFLIGHT).order_by(Job.id.desc()).limit(1)
    )
    plan = approval(preflight)
    revert_to = mikrotik.revert_target(peer)
    busy = mikrotik.busy_job(peer)
    return RouterPanel(
        stale=configs.peer_stale(peer) if stale is None else stale,
        latest_job=latest,
        preflight=preflight if plan.ok and not plan.in_sync else None,
        configured=peer.router_configured,
        history=deployment_history(peer, HISTORY_ON_PEER_PAGE),
        history_total=db.session.scalar(select(func.count(Deployment.id)).where(Deployment.peer_id == peer.id)) or 0,
        revertable=revert_to is not None,
        revert_to=revert_to,
        in_sync=plan.in_sync,
        busy=busy,
        busy_reason=mikrotik.busy_reason(busy) if busy is not None else "",
    )


# ---------------------------------------------------------------- peer lists of long WANs

PER_PAGE = 50
PER_PAGE_MAX = 500
PEER_SORTS = {
    "name": Peer.name,
    "kind": Peer.kind,
    "tunnel_ip": Peer.tunnel_ip_num,
    "created": Peer.id,
}


@dataclass(frozen=True)
class PeerQuery:
    """A peer list's search, filters, order and page (the WAN page's and GET /api/peers/wan/{id}'s).

    `online`: the peer's last status (issue 12) says online (True) or not (False, also unknown).
    """

    q: str = ""
    kind: str | None = None
    stale: bool | None = None
    online: bool | None = None
    sort: str = "tunnel_ip"
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE
    # Only these peers (the dashboard's live filters), or None for all.
    only_ids: frozenset[int] | None = None

    @property
    def unfiltered(self) -> bool:
        """Every peer of the WAN matches (whatever the order and page)."""
        return not self.q and self.kind is None and self.stale is None and self.online is None and self.only_ids is None


@dataclass(frozen=True)
class PeerPage:
    peers: list[Peer]
    total: int
    stale_ids: set[int]
    query: PeerQuery
    # Stale peers of the whole WAN, whatever the filters: what "Mark all applied" marks (counted
    # only when asked for).
    stale_total: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def peer_page(wan: Wan, query: PeerQuery, *, count_stale: bool = False) -> PeerPage:
    """One page of the WAN's peers matching the search and filters, in a bounded number of
    statements whatever the page size: the hashes check, a count, the page, its subnets, its services.
    `count_stale` also counts the WAN's stale peers (`stale_total`, one more statement)."""

    hashes: dict[int, str] | None = None
    if not configs.hashes_current(wan):
        # A change since the hashes were cached: compute them all once (stored for the next request).
        hashes = configs.wan_configs(wan).hashes
    stale_expr = Peer.applied_config_hash.is_(None) | (Peer.applied_config_hash != Peer.current_hash)
    where = [Peer.wan_id == wan.id]
    if query.q:
        pattern = _like(query.q)
        # One uncorrelated scan of the WAN's LANs (PostgreSQL hashes it), not a lookup per peer;
        # lower() LIKE rather than ILIKE, which PostgreSQL runs several times slower on UTF-8.
        lan = select(Subnet.peer_id).where(
            Subnet.wan_id == wan.id,
            Subnet.cidr.like(pattern, escape="\\") | Subnet.nat_cidr.like(pattern, escape="\\"),
        )
        where.append(
            func.lower(Peer.name).like(pattern.lower(), escape="\\")
            | Peer.tunnel_ip.like(pattern, escape="\\")
            | Peer.id.in_(lan)
        )
    if query.kind:
        where.append(Peer.kind == query.kind)
    if query.only_ids is not None:
        where.append(Peer.id.in_(sorted(query.only_ids)))
    if query.online is not None:
        up = select(PeerStatus.peer_id).where(PeerStatus.peer_id == Peer.id, PeerStatus.online.is_(True)).exists()
        where.append(up if query.online else ~up)
    stale_total = 0
    ids: list[int] = []
    if hashes is not None and (count_stale or query.stale is not None):
        # Just computed: the stored hashes may not be these (nothing is stored inside a transaction
        # that changed the WAN), so compare in Python (this path is O(WAN) anyway).
        stale_now = select(Peer.id, Peer.applied_config_hash).where(Peer.wan_id == wan.id)
        ids = [pid for pid, applied in db.session.execute(stale_now) if applied is None or applied != hashes.get(pid)]
        stale_total = len(ids)
    elif count_stale:
        stale_total = (
            db.session.scalar(select(func.count()).select_from(Peer).where(Peer.wan_id == wan.id, stale_expr)) or 0
        )
    if query.stale is not None:
        if hashes is None:
            where.append(stale_expr if query.stale else ~stale_expr)
        else:
            where.append(Peer.id.in_(ids) if query.stale else Peer.id.not_in(ids))
    total = db.session.scalar(select(func.count()).select_from(Peer).where(*where)) or 0
    column = PEER_SORTS.get(query.sort, Peer.tunnel_ip_num)
    order = [column.desc() if query.descending else column]
    rows = db.session.scalars(
        select(Peer)
        .where(*where)
        .order_by(*order, Peer.id)
        .offset((query.page - 1) * query.per_page)
        .limit(query.per_page)
        .options(selectinload(Peer.subnets), selectinload(Peer.services), defer(Peer.applied_config_masked))
    ).all()
    if hashes is None:
        stale_ids = {p.id for p in rows if p.applied_config_hash is None or p.applied_config_hash != p.current_hash}
    else:
        stale_ids = {p.id for p in rows if p.applied_config_hash is None or p.applied_config_hash != hashes.get(p.id)}
    return PeerPage(list(rows), total, stale_ids, query, stale_total)


def peers_by_ids(ids: list[int]) -> list[Peer]:
    """The peers with these ids, in that order, with subnets and services (three queries)."""

    if not ids:
        return []
    rows = db.session.scalars(
        select(Peer).where(Peer.id.in_(ids)).options(selectinload(Peer.subnets), selectinload(Peer.services))
    ).all()
    by_id = {p.id: p for p in rows}
    return [by_id[i] for i in ids if i in by_id]


def peer_count(wan: Wan) -> int:
    return db.session.scalar(select(func.count()).select_from(Peer).where(Peer.wan_id == wan.id)) or 0
