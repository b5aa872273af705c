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
from sqlalchemy import delete, func, insert, select, update

from app.domain import status as rules
from app.extensions import db
from app.models import Peer, PeerObservation, PeerStatus, PeerStatusSample, RouterStatus
from app.models.base import utcnow
from app.services import webhooks

REPORT_SOURCE = "report"


def router_source(router_id: int) -> str:
    return f"router:{router_id}"


def router_ids(sources: Iterable[str]) -> set[int]:
    """The routers named by status sources ("router:<id>"; other sources name none)."""
    prefix = router_source(0)[:-1]
    return {int(s[len(prefix) :]) for s in sources if s.startswith(prefix) and s[len(prefix) :].isdigit()}


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
    ignored) and re-derive those peers' status. Returns the ids of the peers observed.

    Written with bulk statements (a router lists hundreds of peers every minute): one read of the
    peers, their observations and statuses, then one executemany per table.
    """
    now = now or utcnow()
    by_key = {o.public_key: o for o in observations}
    if not by_key:
        return []
    peers = db.session.execute(
        select(Peer.id, Peer.name, Peer.public_key).where(Peer.wan_id == wan_id, Peer.public_key.in_(list(by_key)))
    ).all()
    if not peers:
        return []
    ids = [p.id for p in peers]
    mine = {
        r.peer_id: r
        for r in db.session.execute(
            select(PeerObservation.id, PeerObservation.peer_id, PeerObservation.raw_rx, PeerObservation.raw_tx).where(
                PeerObservation.peer_id.in_(ids), PeerObservation.source == source
            )
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    traffic: dict[int, tuple[int, int]] = {}
    for peer in peers:
        seen = by_key[peer.public_key]
        row = mine.get(peer.id)
        values = {"last_handshake_at": seen.last_handshake_at, "raw_rx": seen.rx_bytes, "raw_tx": seen.tx_bytes,
                  "endpoint": seen.endpoint, "observed_at": now}  # fmt: skip
        if row is None:
            inserts.append({"peer_id": peer.id, "source": source, **values})
            traffic[peer.id] = (seen.rx_bytes, seen.tx_bytes)
        else:
            updates.append({"id": row.id, **values})
            traffic[peer.id] = (rules.counter_delta(row.raw_rx, seen.rx_bytes),
                                rules.counter_delta(row.raw_tx, seen.tx_bytes))  # fmt: skip
    if inserts:
        db.session.execute(insert(PeerObservation), inserts)
    if updates:
        db.session.execute(update(PeerObservation), updates)
    _derive(wan_id, [(p.id, p.name) for p in peers], now, traffic)
    return ids


def _unreachable_sources(wan_id: int) -> set[str]:
    rows = db.session.scalars(
        select(RouterStatus.peer_id)
        .join(Peer, Peer.id == RouterStatus.peer_id)
        .where(Peer.wan_id == wan_id, RouterStatus.reachable.is_(False))
    )
    return {router_source(r) for r in rows}


def _derive(
    wan_id: int, peers: Sequence[tuple[int, str]], now: datetime, traffic: dict[int, tuple[int, int]] | None = None
) -> None:
    """Each peer's status from every source's latest reading, leaving out routers now unreachable
    (what they saw last is no longer known); add `traffic` (new bytes) to the totals; a history
    point at most once per half poll interval; peer.down / peer.up on a change."""
    if not peers:
        return
    traffic = traffic or {}
    ids = [i for i, _ in peers]
    skip = _unreachable_sources(wan_id)
    readings: dict[int, list[rules.SourceReading]] = {i: [] for i in ids}
    for o in db.session.execute(
        select(PeerObservation.peer_id, PeerObservation.source, PeerObservation.last_handshake_at,
               PeerObservation.endpoint, PeerObservation.observed_at).where(PeerObservation.peer_id.in_(ids))
    ):  # fmt: skip
        if o.source not in skip:
            readings[o.peer_id].append(rules.SourceReading(o.source, o.last_handshake_at, o.endpoint, o.observed_at))
    current = {
        r.peer_id: r for r in db.session.execute(select(PeerStatus.__table__).where(PeerStatus.peer_id.in_(ids)))
    }
    last_sample = dict(
        db.session.execute(
            select(PeerStatusSample.peer_id, func.max(PeerStatusSample.at))
            .where(PeerStatusSample.peer_id.in_(ids))
            .group_by(PeerStatusSample.peer_id)
        ).all()
    )
    gap = timedelta(seconds=status_interval() / 2)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for peer_id, name in peers:
        old = current.get(peer_id)
        new = rules.freshest(readings[peer_id], now)
        rx_new, tx_new = traffic.get(peer_id, (0, 0))
        values = {
            "peer_id": peer_id,
            "online": new.online,
            "last_handshake_at": new.last_handshake_at,
            "endpoint": new.endpoint,
            "source": new.source,
            "observed_at": new.observed_at,
            "rx_bytes": _cap((old.rx_bytes if old else 0) + rx_new),
            "tx_bytes": _cap((old.tx_bytes if old else 0) + tx_new),
        }
        (updates if old is not None else inserts).append(values)
        last = last_sample.get(peer_id)
        if last is None or now - last >= gap:
            samples.append({"peer_id": peer_id, "at": now, "online": new.online, "rx_bytes": values["rx_bytes"],
                            "tx_bytes": values["tx_bytes"]})  # fmt: skip
        event = rules.transition(old.online if old is not None else None, new.online)
        if event is not None:
            webhooks.emit(
                event,
                f"Peer '{name}' is {'down' if event == 'peer.down' else 'up'} "
                f"(last handshake {_ago(new.last_handshake_at, now)}).",
                wan_id=wan_id,
                peer_id=peer_id,
            )
    if inserts:
        db.session.execute(insert(PeerStatus), inserts)
    if updates:
        db.session.execute(update(PeerStatus), updates)
    if samples:
        db.session.execute(insert(PeerStatusSample), samples)


def _ago(at: datetime | None, now: datetime) -> str:
    return "never" if at is None else f"{int((now - at).total_seconds())} s ago"


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
        observed = db.session.execute(
            select(Peer.id, Peer.name)
            .join(PeerObservation, PeerObservation.peer_id == Peer.id)
            .where(PeerObservation.source == router_source(router.id))
        ).all()
        _derive(router.wan_id, [(i, n) for i, n in observed], now)
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
    for job_wan_id, failed in db.session.execute(
        select(Job.wan_id, func.count(Job.id))
        .where(Job.status == "failed", Job.finished_at >= since)
        .group_by(Job.wan_id)
    ).all():
        add(job_wan_id, "failed_jobs", failed)
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
