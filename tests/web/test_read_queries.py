"""Read-side queries (app/services/queries.py): a page and its API twin show the same data, and the
dashboard reads the conflicts cached per WAN revision instead of recomputing them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Job, Peer, Subnet
from app.models.base import MAX_ID
from app.services import queries
from tests.conftest import logged_in


def api_wan(api, name: str, peers: int) -> int:
    wan_id = api.post("/api/wan", json={"name": name}).get_json()["id"]
    for i in range(peers):
        resp = api.post(f"/api/peers/wan/{wan_id}", json={"name": f"{name}-{i}", "kind": "client"})
        assert resp.status_code == 201
    return wan_id


def test_wan_list_counts_are_the_same_on_the_page_and_in_the_api(app, api, browser):
    ids = {api_wan(api, "acme", 3): 3, api_wan(api, "bravo", 0): 0, api_wan(api, "corp", 1): 1}
    viewer = logged_in(app, browser, "viewer@example.com", "viewer")
    page = viewer.get("/wans/").get_data(as_text=True)
    shown = {
        int(wan_id): int(count)
        for wan_id, count in re.findall(r'href="/wans/(\d+)">.*?<td class="num">(\d+)</td>', page, re.S)
    }
    listed = {w["id"]: w["peer_count"] for w in api.get("/api/wan").get_json()}
    assert shown == listed == ids
    with app.app_context():
        assert [(r.wan.name, r.peer_count) for r in queries.wans_with_peer_counts()] == [
            ("acme", 3),
            ("bravo", 0),
            ("corp", 1),
        ]


def test_job_filters_select_the_same_jobs_on_the_page_and_in_the_api(app, api, browser):
    wan_id = api_wan(api, "acme", 2)
    with app.app_context():
        a, b = db.session.scalars(select(Peer.id).where(Peer.wan_id == wan_id).order_by(Peer.id)).all()
        jobs = [
            Job(kind="verify", status="succeeded", wan_id=wan_id, peer_id=a, peer_name="a", log=[]),
            Job(kind="deploy", status="failed", wan_id=wan_id, peer_id=a, peer_name="a", log=[]),
            Job(kind="deploy", status="failed", wan_id=wan_id, peer_id=b, peer_name="b", log=[]),
        ]
        db.session.add_all(jobs)
        db.session.commit()
        ids = [j.id for j in jobs]
    viewer = logged_in(app, browser, "viewer@example.com", "viewer")
    for query, expected in [
        ("", ids),
        (f"?peer_id={a}", ids[:2]),
        (f"?wan_id={wan_id}&status=failed", ids[1:]),
        (f"?peer_id={b}&status=succeeded", []),
    ]:
        page = viewer.get(f"/jobs/{query}").get_data(as_text=True)
        on_page = {int(m) for m in re.findall(r'id="job-row-(\d+)"', page)}
        in_api = {j["id"] for j in api.get(f"/api/jobs{query}").get_json()}
        assert on_page == in_api == set(expected), query
    # An id no row can have (binding it would fail on PostgreSQL) is a 404 on both (issue 11).
    assert viewer.get(f"/jobs/?peer_id={MAX_ID + 1}").status_code == 404
    assert api.get(f"/api/jobs?peer_id={MAX_ID + 1}").status_code == 404


def test_router_panel_is_plain_data(app, api):
    wan_id = api.post("/api/wan", json={"name": "acme"}).get_json()["id"]
    router = api.post(
        f"/api/peers/wan/{wan_id}", json={"name": "office", "kind": "mikrotik", "endpoint": "198.51.100.1"}
    ).get_json()["id"]
    with app.app_context():
        panel = queries.router_panel(db.session.get(Peer, router))
    assert panel == queries.RouterPanel(
        stale=True,
        latest_job=None,
        preflight=None,
        configured=False,
        history=[],
        history_total=0,
        revertable=False,
    )


@pytest.mark.parametrize("huge", [False, True], ids=["rendered", "above-the-stale-limit"])
def test_dashboard_reads_the_cached_conflicts(app, api, browser, monkeypatch, huge):
    import app.blueprints.main.routes as dashboard
    import app.domain.conflicts as conflict_rules
    import app.services.configs as configs

    wan_id = api_wan(api, "acme", 2)
    with app.app_context():
        # A routed LAN on each of two peers, overlapping: a conflict saved behind the rules' back.
        for peer_id in db.session.scalars(select(Peer.id).where(Peer.wan_id == wan_id)):
            db.session.add(Subnet(wan_id=wan_id, peer_id=peer_id, cidr="192.168.1.0/24", routed=True))
        db.session.commit()
    if huge:
        monkeypatch.setattr(dashboard, "STALE_COUNT_MAX_PEERS", 1)
    viewer = logged_in(app, browser, "viewer@example.com", "viewer")

    from tests.web.test_dashboard import CONFLICTS, row

    def conflicts_cell() -> str:
        return row(viewer.get("/").get_data(as_text=True), wan_id)[CONFLICTS]

    with app.app_context():
        configs.wan_configs(db.session.get(dashboard.Wan, wan_id))  # fills the cache, as the WAN page does
    first = conflicts_cell()
    assert int(first) >= 1

    def refuse(_spec):
        raise AssertionError("the dashboard recomputed conflicts that are cached")

    monkeypatch.setattr(conflict_rules, "_wan_ranges", refuse)  # every wan_conflicts call starts here
    assert conflicts_cell() == first
