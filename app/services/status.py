"""Recording what routers and peers report, and reading it back (DESIGN.md §7).

A router poll (jobs/ops.py) hands its rows here; a Linux peer's report comes through the API. Each
becomes one observation per peer and source (raw counters kept, so traffic is a difference and a
restarted counter is noticed), the peer's status is re-derived from all of its sources
(app.domain.status.freshest), a history sample is added at most once per poll interval, history
older than STATUS_HISTORY_SECONDS is trimmed, and a change between up and down emits a webhook
event. Callers commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select

from app.domain import status as rules
from app.extensions import db
from app.models import Peer, PeerObservation, PeerStatus, PeerStatusSample, RouterStatus
from app.models.base import utcnow
from app.services import webhooks

REPORT_SOURCE = "report"


def router_source(router_id: int) -> str:
    return f"router:{router_id}"


def status_interval() -> float:
    return float(current_app.config.get("STATUS_INTERVAL") or 60)


def verify_interval() -> float:
    return float(current_app.config.get("VERIFY_INTERVAL") or 900)


def history_seconds() -> float:
    return float(current_app.config.get("STATUS_HISTORY_SECONDS") or 86400)


def _cap(value: int) -> int:
    return min(value, rules.MAX_COUNTER)


def record_observations(
    wan_id: int, source: str, observations: Iterable[rules.Observation], now: datetime | None = None
) -> list[int]:
    """Store one source's observations of peers of `wan_id` (matched by public key; others are
    ignored) and re-derive those peers' status. Returns the ids of the peers observed."""
    now = now or utcnow()
    by_key = {o.public_key: o for o in observations}
    if not by_key:
        return []
    peers = db.session.scalars(select(Peer).where(Peer.wan_id == wan_id, Peer.public_key.in_(list(by_key)))).all()
    if not peers:
        return []
    ids = [p.id for p in peers]
    existing = {
        o.peer_id: o
        for o in db.session.scalars(
            select(PeerObservation).where(PeerObservation.peer_id.in_(ids), PeerObservation.source == source)
        )
    }
    statuses = _statuses(ids)
    for peer in peers:
        seen = by_key[peer.public_key]
        row = existing.get(peer.id)
        if row is None:
            row = PeerObservation(peer_id=peer.id, source=source, raw_rx=0, raw_tx=0)
            db.session.add(row)
            previous_rx: int | None = None
            previous_tx: int | None = None
        else:
            previous_rx, previous_tx = row.raw_rx, row.raw_tx
        st = statuses[peer.id]
        st.rx_bytes = _cap((st.rx_bytes or 0) + rules.counter_delta(previous_rx, seen.rx_bytes))
        st.tx_bytes = _cap((st.tx_bytes or 0) + rules.counter_delta(previous_tx, seen.tx_bytes))
        row.raw_rx, row.raw_tx = seen.rx_bytes, seen.tx_bytes
        row.last_handshake_at, row.endpoint, row.observed_at = seen.last_handshake_at, seen.endpoint, now
    db.session.flush()
    _derive(peers, statuses, now)
    _sample(ids, statuses, now)
    return ids


def _statuses(peer_ids: Sequence[int]) -> dict[int, PeerStatus]:
    found = {s.peer_id: s for s in db.session.scalars(select(PeerStatus).where(PeerStatus.peer_id.in_(peer_ids)))}
    for peer_id in peer_ids:
        if peer_id not in found:
            found[peer_id] = PeerStatus(peer_id=peer_id, rx_bytes=0, tx_bytes=0)
            db.session.add(found[peer_id])
    return found


def _unreachable_sources(wan_id: int) -> set[str]:
    rows = db.session.scalars(
        select(RouterStatus.peer_id)
        .join(Peer, Peer.id == RouterStatus.peer_id)
        .where(Peer.wan_id == wan_id, RouterStatus.reachable.is_(False))
    )
    return {router_source(r) for r in rows}


def _derive(peers: Sequence[Peer], statuses: dict[int, PeerStatus], now: datetime) -> None:
    """Each peer's status from every source's latest reading, leaving out routers now unreachable
    (what they saw last is no longer known); emit peer.down / peer.up on a change."""
    if not peers:
        return
    ids = [p.id for p in peers]
    skip = _unreachable_sources(peers[0].wan_id)
    readings: dict[int, list[rules.SourceReading]] = {i: [] for i in ids}
    for o in db.session.scalars(select(PeerObservation).where(PeerObservation.peer_id.in_(ids))):
        if o.source not in skip:
            readings[o.peer_id].append(rules.SourceReading(o.source, o.last_handshake_at, o.endpoint, o.observed_at))
    for peer in peers:
        st = statuses[peer.id]
        new = rules.freshest(readings[peer.id], now)
        event = rules.transition(st.online, new.online)
        st.online, st.last_handshake_at, st.endpoint = new.online, new.last_handshake_at, new.endpoint
        st.source, st.observed_at = new.source, new.observed_at
        if event is not None:
            seen = f"last handshake {_ago(new.last_handshake_at, now)}"
            webhooks.emit(
                event,
                f"Peer '{peer.name}' is {'down' if event == 'peer.down' else 'up'} ({seen}).",
                wan_id=peer.wan_id,
                peer_id=peer.id,
            )


def _ago(at: datetime | None, now: datetime) -> str:
    return "never" if at is None else f"{int((now - at).total_seconds())} s ago"


def _sample(peer_ids: Sequence[int], statuses: dict[int, PeerStatus], now: datetime) -> None:
    """At most one history point per peer per half poll interval (several routers see one peer)."""
    latest = dict(
        db.session.execute(
            select(PeerStatusSample.peer_id, func.max(PeerStatusSample.at))
            .where(PeerStatusSample.peer_id.in_(peer_ids))
            .group_by(PeerStatusSample.peer_id)
        ).all()
    )
    gap = timedelta(seconds=status_interval() / 2)
    for peer_id in peer_ids:
        last = latest.get(peer_id)
        if last is not None and now - last < gap:
            continue
        st = statuses[peer_id]
        db.session.add(PeerStatusSample(peer_id=peer_id, at=now, online=st.online, rx_bytes=st.rx_bytes,
                                        tx_bytes=st.tx_bytes))  # fmt: skip


def trim_history(wan_id: int, now: datetime | None = None) -> int:
    """Delete the WAN's history points older than STATUS_HISTORY_SECONDS (the poll calls this)."""
    cutoff = (now or utcnow()) - timedelta(seconds=history_seconds())
    peer_ids = select(Peer.id).where(Peer.wan_id == wan_id).scalar_subquery()
    result = db.session.execute(
        delete(PeerStatusSample).where(PeerStatusSample.peer_id.in_(peer_ids), PeerStatusSample.at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def router_status(router_id: int) -> RouterStatus:
    row = db.session.get(RouterStatus, router_id)
    if row is None:
        row = RouterStatus(peer_id=router_id, drift_count=0)
        db.session.add(row)
    return row


def record_router_poll(router: Peer, rows: Sequence[dict[str, Any]] | None, error: str | None = None) -> list[int]:
    """A status poll's outcome: the router's peer rows, or None and why it could not be read."""
    now = utcnow()
    rs = router_status(router.id)
    was = rs.reachable
    rs.checked_at = now
    if rows is None:
        rs.reachable, rs.error = False, error
        db.session.flush()
        if was is not False:
            webhooks.emit(
                "router.unreachable",
                f"Router '{router.name}' is unreachable: {error or 'no answer'}",
                wan_id=router.wan_id,
                peer_id=router.id,
            )
        # What it saw last is unknown now: re-derive the peers it observed without it.
        observed = db.session.scalars(
            select(PeerObservation.peer_id).where(PeerObservation.source == router_source(router.id))
        ).all()
        peers = db.session.scalars(select(Peer).where(Peer.id.in_(observed))).all() if observed else []
        _derive(peers, _statuses([p.id for p in peers]), now)
        trim_history(router.wan_id, now)
        return []
    rs.reachable, rs.error = True, None
    db.session.flush()
    ids = record_observations(router.wan_id, router_source(router.id), rules.router_observations(rows, now), now)
    trim_history(router.wan_id, now)
    return ids


def record_verify(router: Peer, in_sync: bool, drift_count: int, summary: str) -> None:
    """A verify's outcome; router.drift when a router in sync (or not yet verified) has drifted."""
    rs = router_status(router.id)
    was = rs.in_sync
    rs.in_sync, rs.drift_count, rs.verified_at = in_sync, drift_count, utcnow()
    if not in_sync and was is not False:
        webhooks.emit(
            "router.drift",
            f"Router '{router.name}' differs from its desired state: {summary}",
            wan_id=router.wan_id,
            peer_id=router.id,
        )


# ---------------------------------------------------------------- reading


def status_json(peer_id: int, st: PeerStatus | None) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() + "Z" if v is not None else None

    if st is None:
        return {"peer_id": peer_id, "online": None, "last_handshake_at": None, "rx_bytes": 0, "tx_bytes": 0,
                "endpoint": None, "source": None, "observed_at": None}  # fmt: skip
    return {
        "peer_id": peer_id,
        "online": st.online,
        "last_handshake_at": iso(st.last_handshake_at),
        "rx_bytes": st.rx_bytes or 0,
        "tx_bytes": st.tx_bytes or 0,
        "endpoint": st.endpoint,
        "source": st.source,
        "observed_at": iso(st.observed_at),
    }


def statuses_for(peer_ids: Sequence[int]) -> dict[int, PeerStatus]:
    if not peer_ids:
        return {}
    return {s.peer_id: s for s in db.session.scalars(select(PeerStatus).where(PeerStatus.peer_id.in_(peer_ids)))}


def history(peer_id: int, limit: int = 1440) -> list[PeerStatusSample]:
    rows = db.session.scalars(
        select(PeerStatusSample)
        .where(PeerStatusSample.peer_id == peer_id)
        .order_by(PeerStatusSample.at.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


# ---------------------------------------------------------------- the dashboard

LIVE_FILTERS = ("up", "down", "unreachable", "drifted")


def wan_counts(since: datetime) -> dict[int, dict[str, int]]:
    """Per WAN: peers up and down, routers unreachable and drifted, jobs failed since `since`."""
    from app.models import Job

    out: dict[int, dict[str, int]] = {}

    def add(wan_id: int | None, key: str, n: int) -> None:
        if wan_id is not None:
            out.setdefault(wan_id, dict.fromkeys((*LIVE_FILTERS, "failed_jobs"), 0))[key] += n

    for wan_id, online, n in db.session.execute(
        select(Peer.wan_id, PeerStatus.online, func.count())
        .join(PeerStatus, PeerStatus.peer_id == Peer.id)
        .where(PeerStatus.online.is_not(None))
        .group_by(Peer.wan_id, PeerStatus.online)
    ).all():
        add(wan_id, "up" if online else "down", n)
    for wan_id, reachable, in_sync in db.session.execute(
        select(Peer.wan_id, RouterStatus.reachable, RouterStatus.in_sync).join(
            RouterStatus, RouterStatus.peer_id == Peer.id
        )
    ).all():
        add(wan_id, "unreachable", int(reachable is False))
        add(wan_id, "drifted", int(in_sync is False))
    for wan_id, n in db.session.execute(
        select(Job.wan_id, func.count(Job.id))
        .where(Job.status == "failed", Job.finished_at >= since)
        .group_by(Job.wan_id)
    ).all():
        add(wan_id, "failed_jobs", n)
    return out


def live_filter_ids(wan_id: int, which: str) -> set[int]:
    """The peers of a WAN a dashboard number stands for (`up`, `down`, `unreachable`, `drifted`)."""
    if which in ("up", "down"):
        query = (
            select(Peer.id)
            .join(PeerStatus, PeerStatus.peer_id == Peer.id)
            .where(Peer.wan_id == wan_id, PeerStatus.online.is_(which == "up"))
        )
    else:
        column = RouterStatus.reachable if which == "unreachable" else RouterStatus.in_sync
        query = (
            select(Peer.id)
            .join(RouterStatus, RouterStatus.peer_id == Peer.id)
            .where(Peer.wan_id == wan_id, column.is_(False))
        )
    return set(db.session.scalars(query))
