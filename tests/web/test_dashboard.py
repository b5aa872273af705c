"""The dashboard: per WAN peers not applied and stale, routers with changes pending, jobs queued and
running, failed deploys, conflicts; the last jobs. Each count counts what its words say."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Job, Peer
from tests.web.test_pages_network import WAN_FORM, add_peer


def row(body: str, wan_id: int) -> list[str]:
    """The cells of a WAN's row, tags stripped."""
    match = re.search(rf'<tr id="wan-row-{wan_id}">(.*?)</tr>', body, re.S)
    assert match, body
    cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


@pytest.fixture
def wan_id(admin_browser) -> int:
    resp = admin_browser.post("/wans/new", WAN_FORM)
    wan_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert (
        add_peer(admin_browser, wan_id, name="hq", endpoint="hq.example.net", subnet="192.168.1.0/24").status_code
        == 303
    )
    assert add_peer(admin_browser, wan_id, name="branch", endpoint="198.51.100.2").status_code == 303
    assert add_peer(admin_browser, wan_id, name="laptop", kind="client").status_code == 303
    return wan_id


def peer_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Peer.id).where(Peer.name == name))


def add_job(app, peer: int, kind: str, status: str) -> int:
    with app.app_context():
        p = db.session.get(Peer, peer)
        job = Job(kind=kind, status=status, wan_id=p.wan_id, peer_id=p.id, peer_name=p.name, actor="t", log=[])
        db.session.add(job)
        db.session.commit()
        return job.id


def test_empty_install(admin_browser):
    body = admin_browser.get("/").get_data(as_text=True)
    assert "No WANs yet" in body and "No jobs yet" in body


# The columns of a WAN's row.
WAN, TOPOLOGY, PEERS, NOT_APPLIED, STALE, ROUTERS_PENDING, QUEUED, RUNNING, FAILED, CONFLICTS = range(10)


def tile(body: str, name: str) -> str:
    match = re.search(rf'id="total-{name}"><span class="stat-n">([^<]*)</span><span class="stat-label">([^<]*)<', body)
    assert match, name
    return f"{match.group(1)} {match.group(2)}"


def test_never_applied_peers_are_not_applied_not_stale(app, admin_browser, wan_id):
    body = admin_browser.get("/").get_data(as_text=True)
    assert row(body, wan_id)[: RUNNING + 1] == ["acme", "mesh", "3", "3", "0", "—", "0", "0"]
    assert tile(body, "not-applied") == "3 peers not applied" and tile(body, "stale") == "0 peers stale"
    assert admin_browser.post(f"/peers/{peer_id(app, 'laptop')}/config").status_code == 200
    body = admin_browser.get("/").get_data(as_text=True)
    assert row(body, wan_id)[NOT_APPLIED] == "2" and row(body, wan_id)[STALE] == "0"
    assert f'href="/wans/{wan_id}/topology"' in body


def test_seeded_wan_counts_each_state_by_its_word(app, admin_browser, wan_id):
    """hq never applied; branch applied then made stale; router r1 deployed (marked) before a change,
    r2 after it; one job queued and one running."""
    for name in ("r1", "r2"):
        assert (
            add_peer(admin_browser, wan_id, name=name, kind="mikrotik", endpoint=f"{name}.example.net").status_code
            == 303
        )
    for name in ("branch", "r1"):
        assert admin_browser.post(f"/peers/{peer_id(app, name)}/mark-applied").status_code == 303
    assert add_peer(admin_browser, wan_id, name="phone", kind="client").status_code == 303  # the change
    assert admin_browser.post(f"/peers/{peer_id(app, 'r2')}/mark-applied").status_code == 303
    add_job(app, peer_id(app, "r1"), "deploy", "queued")
    add_job(app, peer_id(app, "r2"), "verify", "running")

    body = admin_browser.get("/").get_data(as_text=True)
    cells = row(body, wan_id)
    assert cells[PEERS] == "6"
    assert cells[NOT_APPLIED] == "3"  # hq, laptop, phone: never applied, so not "stale"
    assert cells[STALE] == "2"  # branch and r1 applied a config that is no longer current
    assert cells[ROUTERS_PENDING] == "1"  # r1; r2 is in sync
    assert (cells[QUEUED], cells[RUNNING], cells[FAILED]) == ("1", "1", "0")
    assert tile(body, "not-applied") == "3 peers not applied"
    assert tile(body, "stale") == "2 peers stale"
    assert tile(body, "routers-pending") == "1 router with changes pending"
    assert tile(body, "jobs") == "1 · 1 jobs queued · running"
    assert "deploys pending" not in body.lower() and "stale configs" not in body.lower()

    # The same words on each router's page.
    r1 = admin_browser.get(f"/peers/{peer_id(app, 'r1')}").get_data(as_text=True)
    r2 = admin_browser.get(f"/peers/{peer_id(app, 'r2')}").get_data(as_text=True)
    assert re.search(r'router-sync"[^>]*>changes pending<', r1) and re.search(r'router-sync"[^>]*>in sync<', r2)


def test_routers_never_deployed_are_said_apart(app, admin_browser, wan_id):
    assert add_peer(admin_browser, wan_id, name="r1", kind="mikrotik", endpoint="r1.example.net").status_code == 303
    cells = row(admin_browser.get("/").get_data(as_text=True), wan_id)
    assert cells[ROUTERS_PENDING] == "0 (1 not deployed)"
    page = admin_browser.get(f"/peers/{peer_id(app, 'r1')}").get_data(as_text=True)
    assert re.search(r'router-sync"[^>]*>not deployed<', page)


def test_pending_and_failed_deploys_and_the_last_jobs(app, admin_browser, wan_id):
    hq, branch = peer_id(app, "hq"), peer_id(app, "branch")
    add_job(app, hq, "deploy", "failed")
    add_job(app, branch, "deploy", "failed")
    add_job(app, branch, "deploy", "succeeded")  # the latest deploy of branch worked: not counted
    add_job(app, hq, "deploy", "queued")
    add_job(app, hq, "preflight", "running")  # not a deploy
    newest = add_job(app, branch, "verify", "succeeded")
    body = admin_browser.get("/").get_data(as_text=True)
    cells = row(body, wan_id)
    assert (cells[QUEUED], cells[RUNNING]) == ("1", "1")  # the queued deploy, the running preflight
    # hq's latest deploy is queued (its failed one is older): only routers whose latest deploy failed count.
    assert cells[FAILED] == "0"
    add_job(app, hq, "deploy", "abandoned")
    cells = row(admin_browser.get("/").get_data(as_text=True), wan_id)
    assert cells[FAILED] == "1"
    jobs = re.findall(r'<tr id="last-job-(\d+)">', body)
    assert jobs[0] == str(newest) and len(jobs) == 6
    assert 'href="/jobs/?wan_id=' in body


def test_the_last_jobs_leave_out_routine_status_polls(app, admin_browser, wan_id):
    """The cron polls every router each minute: a round queued, running or done is not news, and would
    push the operator's own jobs off the list. A poll that failed or was abandoned is."""
    hq = peer_id(app, "hq")
    deploy = add_job(app, hq, "deploy", "succeeded")
    for status in ("succeeded", "running", "queued"):
        add_job(app, hq, "status", status)
    body = admin_browser.get("/").get_data(as_text=True)
    assert re.findall(r'<tr id="last-job-(\d+)">', body) == [str(deploy)]
    failed, abandoned = add_job(app, hq, "status", "failed"), add_job(app, hq, "status", "abandoned")
    body = admin_browser.get("/").get_data(as_text=True)
    assert re.findall(r'<tr id="last-job-(\d+)">', body) == [str(abandoned), str(failed), str(deploy)]


def test_last_jobs_are_capped(app, admin_browser, wan_id):
    hq = peer_id(app, "hq")
    for _ in range(15):
        add_job(app, hq, "verify", "succeeded")
    body = admin_browser.get("/").get_data(as_text=True)
    assert len(re.findall(r'<tr id="last-job-', body)) == 10


def test_conflicts_are_counted(app, admin_browser, wan_id):
    # A LAN overlapping hq's, saved while not routed, then routed by hand: a saved conflict.
    from app.models import Subnet

    with app.app_context():
        branch = db.session.get(Peer, peer_id(app, "branch"))
        db.session.add(Subnet(wan_id=branch.wan_id, peer_id=branch.id, cidr="192.168.1.0/24", routed=True))
        db.session.commit()
    cells = row(admin_browser.get("/").get_data(as_text=True), wan_id)
    assert int(cells[CONFLICTS]) >= 1


def test_huge_wans_skip_the_stale_count(app, admin_browser, wan_id, monkeypatch):
    import app.blueprints.main.routes as dashboard

    monkeypatch.setattr(dashboard, "STALE_COUNT_MAX_PEERS", 2)

    def refuse(_wan):
        raise AssertionError("the dashboard must not render every config of a huge WAN")

    monkeypatch.setattr(dashboard, "wan_configs", refuse)
    body = admin_browser.get("/").get_data(as_text=True)
    cells = row(body, wan_id)
    assert cells[STALE] == "—" and cells[NOT_APPLIED] == "3"  # never applied needs no rendering
    assert "Stale peers and routers with changes pending are counted here for WANs of up to 2 peers" in body


def test_viewers_see_the_dashboard(app, wan_id):
    from tests.conftest import Browser, make_user

    make_user(app, "viewer@example.com", "viewer")
    viewer = Browser(app.test_client())
    assert viewer.login("viewer@example.com", "correct-horse").status_code == 303
    body = viewer.get("/").get_data(as_text=True)
    assert "acme" in body and "New WAN" not in body
