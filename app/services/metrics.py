"""Prometheus metrics, collected from the database at each scrape (API.md "Operations").

One collector reads the current rows; nothing is kept in process memory, so every web process
answers the same numbers. Unknown states (a peer nobody has seen, a router not polled or verified
yet) are left out rather than reported as 0, so `== 0` alerts mean "down", never "not known".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.extensions import db
from app.models import Job, Peer, PeerStatus, RouterStatus, Wan
from app.services.configs import wan_configs
from app.services.specs import load_wan


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "wirewan_peer_up", "1 if the peer had a handshake in the last 180 s.", labels=["wan", "peer"]
        )
        handshake = GaugeMetricFamily(
            "wirewan_peer_last_handshake_seconds", "Unix time of the peer's latest handshake.", labels=["wan", "peer"]
        )
        rx = CounterMetricFamily(
            "wirewan_peer_receive_bytes", "Bytes the overlay received from the peer.", labels=["wan", "peer"]
        )
        tx = CounterMetricFamily(
            "wirewan_peer_transmit_bytes", "Bytes the overlay sent to the peer.", labels=["wan", "peer"]
        )
        stale = GaugeMetricFamily(
            "wirewan_peer_config_stale", "1 if the peer's current config is not applied yet.", labels=["wan", "peer"]
        )
        reachable = GaugeMetricFamily(
            "wirewan_router_reachable", "1 if the last status poll reached the router.", labels=["wan", "router"]
        )
        in_sync = GaugeMetricFamily(
            "wirewan_router_in_sync", "1 if the last verify found the router in sync.", labels=["wan", "router"]
        )
        jobs = CounterMetricFamily(
            "wirewan_jobs", "Jobs by kind and final or current status.", labels=["kind", "status"]
        )

        rows = db.session.execute(
            select(Wan.name, Peer.name, PeerStatus).join(Peer, Peer.wan_id == Wan.id).join(PeerStatus)
        ).all()
        for wan_name, peer_name, st in rows:
            labels = [wan_name, peer_name]
            if st.online is not None:
                up.add_metric(labels, 1.0 if st.online else 0.0)
            if st.last_handshake_at is not None:
                handshake.add_metric(labels, st.last_handshake_at.replace(tzinfo=UTC).timestamp())
            rx.add_metric(labels, float(st.rx_bytes or 0))
            tx.add_metric(labels, float(st.tx_bytes or 0))
        for wan_name, router_name, rs in db.session.execute(
            select(Wan.name, Peer.name, RouterStatus).join(Peer, Peer.wan_id == Wan.id).join(RouterStatus)
        ).all():
            if rs.reachable is not None:
                reachable.add_metric([wan_name, router_name], 1.0 if rs.reachable else 0.0)
            if rs.in_sync is not None:
                in_sync.add_metric([wan_name, router_name], 1.0 if rs.in_sync else 0.0)
        for wan_id in db.session.scalars(select(Wan.id).order_by(Wan.name)).all():
            wan = load_wan(wan_id)
            if wan is None:
                continue
            stale_ids = wan_configs(wan).stale_ids(wan.peers)
            for peer in wan.peers:
                stale.add_metric([wan.name, peer.name], 1.0 if peer.id in stale_ids else 0.0)
        for kind, status, count in db.session.execute(
            select(Job.kind, Job.status, func.count(Job.id))
            .group_by(Job.kind, Job.status)
            .order_by(Job.kind, Job.status)
        ).all():
            jobs.add_metric([kind, status], float(count))
        yield from (up, handshake, rx, tx, stale, reachable, in_sync, jobs)


def render() -> bytes:
    """The Prometheus text exposition of the current database."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
