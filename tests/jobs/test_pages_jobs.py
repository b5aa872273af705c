"""Job pages and a MikroTik peer's Router section, against the simulator through a real Redis: the list
and its filters, the job page polling only while the job runs, preflight → approved deploy → verify
from the pages, inline job widgets, viewers read-only, deployment diffs, and no secret in any page."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from app import crypto
from app.extensions import db
from app.models import Job, Peer, User, Wan
from app.models.base import utcnow
from app.models.jobs import JobKind
from app.services.tx import commit
from jobs.ops import queue_round
from jobs.runtime import reap_abandoned_jobs
from tests.jobs.conftest import ROUTER_PASSWORD

POLL = 'hx-trigger="every 1s"'


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def job_id_from(resp: Any) -> int:
    assert resp.status_code == 303, text(resp)
    match = re.fullmatch(r"/jobs/(\d+)", resp.headers["Location"])
    assert match, resp.headers["Location"]
    return int(match.group(1))


def job_row(app: Any, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def run_via_page(browser: Any, run_jobs: Any, url: str, data: dict[str, str] | None = None) -> int:
    """Press a Router button without htmx (→ 303 to the job page), then let a worker run the job."""
    job_id = job_id_from(browser.post(url, data))
    run_jobs()
    return job_id


def preflight_and_deploy(app: Any, browser: Any, run_jobs: Any, peer_id: int) -> tuple[int, int]:
    pre = run_via_page(browser, run_jobs, f"/peers/{peer_id}/router/preflight")
    page = text(browser.get(f"/jobs/{pre}"))
    plan_hash = re.search(r'name="plan_hash" value="([0-9a-f]+)"', page).group(1)
    dep = run_via_page(
        browser, run_jobs, f"/peers/{peer_id}/router/deploy", {"plan_hash": plan_hash, "preflight_job_id": str(pre)}
    )
    assert job_row(app, dep).status == "succeeded", job_row(app, dep).error
    return pre, dep


@pytest.fixture
def router_id(router_wan: dict[str, Any]) -> int:
    return router_wan["router"]["id"]


def test_jobs_list_filters_by_wan_peer_and_status(app, admin_browser, router_wan, router_id, run_jobs):
    with app.app_context():
        wan2 = Wan(name="second")
        db.session.add(wan2)
        db.session.flush()
        other = Peer(wan_id=wan2.id, name="elsewhere", kind="mikrotik", tunnel_ip="10.0.0.9", public_key="x" * 44)
        db.session.add(other)
        db.session.flush()
        wan1 = router_wan["wan"]["id"]
        jobs = [
            Job(kind="preflight", status="succeeded", wan_id=wan1, peer_id=router_id, peer_name="office"),
            Job(kind="verify", status="failed", wan_id=wan1, peer_id=router_id, peer_name="office", error="boom"),
            Job(kind="deploy", status="queued", wan_id=wan2.id, peer_id=other.id, peer_name="elsewhere"),
            # Its worker died long ago: the list must say abandoned, not running.
            Job(kind="clear", status="running", wan_id=wan2.id, peer_id=other.id, peer_name="elsewhere",
                started_at=utcnow() - timedelta(minutes=10), heartbeat_at=utcnow() - timedelta(minutes=10)),
        ]  # fmt: skip
        db.session.add_all(jobs)
        db.session.commit()
        ids = [j.id for j in jobs]
        other_id, wan2_id = other.id, wan2.id

    # A page view never writes: the dead worker's job says "running" until a worker reaps it.
    assert 'badge-job-running">running' in text(admin_browser.get("/jobs/?status=running"))
    assert reap_abandoned_jobs() == 1  # what every worker's maintenance runs

    def shown(query: str) -> set[int]:
        resp = admin_browser.get(f"/jobs/{query}")
        assert resp.status_code == 200
        return {int(m) for m in re.findall(r'id="job-row-(\d+)"', text(resp))}

    assert shown("") == set(ids)
    assert shown(f"?wan_id={wan1}") == set(ids[:2])
    assert shown(f"?peer_id={other_id}") == set(ids[2:])
    assert shown("?status=failed") == {ids[1]}
    assert shown(f"?wan_id={wan2_id}&status=queued") == {ids[2]}
    assert shown("?status=abandoned") == {ids[3]}
    assert shown("?status=bogus") == set(ids)  # an unknown status filters nothing out

    page = text(admin_browser.get("/jobs/"))
    assert 'badge-job-abandoned">abandoned' in page and "Preflight" in page and "Test connection" not in page
    # htmx filter changes get just the table; the page says it varies on HX-Request.
    frag = admin_browser.get("/jobs/?status=failed", headers={"HX-Request": "true"})
    assert text(frag).lstrip().startswith('<section class="card table-wrap" id="job-table">')
    assert "HX-Request" in frag.headers["Vary"]
    assert 'href="/jobs/"' in text(admin_browser.get("/"))  # the nav shows Jobs


def test_job_page_polls_while_running_and_stops_when_done(app, admin_browser, run_jobs, router_id):
    job_id = job_id_from(admin_browser.post(f"/peers/{router_id}/router/preflight"))
    page = text(admin_browser.get(f"/jobs/{job_id}"))
    assert page.count(POLL) == 2  # the status widget and the log
    assert 'hx-trigger="job-finished from:body"' in page
    status = admin_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"})
    assert POLL in text(status) and f'id="job-status-{job_id}"' in text(status)
    assert 'hx-target="this" hx-swap="outerHTML"' in text(status) and "HX-Trigger" not in status.headers
    assert POLL in text(admin_browser.get(f"/jobs/{job_id}/log", headers={"HX-Request": "true"}))

    run_jobs()

    status = admin_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"})
    assert "hx-trigger" not in text(status) and "succeeded" in text(status)
    assert status.headers["HX-Trigger"] == "job-finished"  # the page loads the result on this
    log = text(admin_browser.get(f"/jobs/{job_id}/log", headers={"HX-Request": "true"}))
    assert "hx-trigger" not in log and "/interface wireguard add" in log
    assert "every 1s" not in text(admin_browser.get(f"/jobs/{job_id}"))
    result = text(admin_browser.get(f"/jobs/{job_id}/result", headers={"HX-Request": "true"}))
    assert "Deploy this plan" in result


def test_preflight_page_shows_the_plan_and_deploys_it(app, admin_browser, run_jobs, sim, router_id):
    pre = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/preflight")
    page = text(admin_browser.get(f"/jobs/{pre}"))
    result = job_row(app, pre).result
    assert result["plan_lines"]
    for line in result["plan_lines"]:
        assert line.replace('"', "&#34;") in page or line in page
    assert "/interface wireguard add" in page and "private-key=***" in page
    assert result["plan_hash"] in page
    form = re.search(r'<form method="post" action="([^"]+)" class="inline deploy-form"', page)
    assert form and form.group(1) == f"/peers/{router_id}/router/deploy"
    assert "Deploy this plan" in page

    sim.auto_handshake = False  # no tunnel comes up: the deploy succeeds with the seed's warning
    dep = run_via_page(admin_browser, run_jobs, form.group(1), {"plan_hash": result["plan_hash"],
                                                                "preflight_job_id": str(pre)})  # fmt: skip
    job = job_row(app, dep)
    assert job.kind == "deploy" and job.status == "succeeded", job.error
    assert job.params["plan_hash"] == result["plan_hash"]
    page = text(admin_browser.get(f"/jobs/{dep}"))
    assert "Writes / reads" in page and "Handshakes after the change" in page
    assert "vps" in page and 'badge-warning">none (down)' in page
    assert 'class="card job-warnings"' in page
    assert "&#39;vps&#39; has not completed a handshake since the change" in page
    assert "endpoint 203.0.113.10:51820 is right" in page
    # The laptop has no endpoint: offline is information, not a warning.
    assert "laptop</td>" in page and "none (offline)" in page
    assert "&#39;laptop&#39; has not completed" not in page
    assert 'class="log-warn"' in page

    # That preflight is used up: its page no longer offers the deploy button.
    page = text(admin_browser.get(f"/jobs/{pre}"))
    assert "Deploy this plan" not in page and "run Preflight again" in page

    verify = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/verify")
    page = text(admin_browser.get(f"/jobs/{verify}"))
    assert "in sync" in page and "drift-table" not in page

    # Someone changes the router by hand: verify shows the drift as a table.
    sim.run_script('/interface wireguard peers set [find endpoint-address="203.0.113.10"] endpoint-port=1')
    verify = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/verify")
    page = text(admin_browser.get(f"/jobs/{verify}"))
    assert "drift-table" in page and "endpoint-port: 1 -&gt; 51820" in page


def test_deploy_of_an_outdated_plan_is_refused_with_a_message(app, admin_browser, run_jobs, router_id):
    pre = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/preflight")
    resp = admin_browser.post(
        f"/peers/{router_id}/router/deploy", {"plan_hash": "0" * 64, "preflight_job_id": str(pre)}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == f"/jobs/{pre}"
    page = text(admin_browser.get(f"/jobs/{pre}"))
    assert "flash-error" in page and "not the latest preflight" in page
    # htmx: the refusal shows where the job would have appeared.
    resp = admin_browser.post(f"/peers/{router_id}/router/deploy", {"plan_hash": ""}, htmx=True)
    assert resp.status_code == 422 and "job-refused" in text(resp) and "approved plan" in text(resp)
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id)).where(Job.kind == "deploy")) == 0


def router_sync(page: str) -> str:
    """The Router section's state badge: in sync, changes pending or not deployed."""
    found = re.findall(r'class="badge [a-z-]+ router-sync"[^>]*>([^<]+)<', page)
    assert len(found) == 1, found
    return found[0]


def test_router_buttons_show_their_job_inline(app, operator_browser, run_jobs, router_id):
    page = text(operator_browser.get(f"/peers/{router_id}"))
    section = page[page.index('id="router"') :]
    for action in ("test-connection", "preflight", "verify", "revert", "clear"):
        assert f'hx-post="/peers/{router_id}/router/{action}"' in section
    assert 'hx-target="#router-job"' in section
    assert "run Preflight first, then deploy the plan it shows" in section
    assert router_sync(section) == "not deployed" and "auto-deploy off" in section
    assert 'disabled title="Nothing to revert to' in section  # no deployment yet
    assert 'hx-trigger="job-finished from:body"' in section

    resp = operator_browser.post(f"/peers/{router_id}/router/test-connection", htmx=True)
    assert resp.status_code == 200
    body = text(resp)
    job_id = int(re.search(r'id="job-status-(\d+)"', body).group(1))
    assert POLL in body and f'href="/jobs/{job_id}"' in body and f"/jobs/{job_id}/status?inline=1" in body
    assert job_row(app, job_id).kind == "test_connection"
    run_jobs()
    status = text(operator_browser.get(f"/jobs/{job_id}/status?inline=1", headers={"HX-Request": "true"}))
    assert "hx-trigger" not in status and "Connected: RouterOS" in status

    # A finished preflight turns the hint into the Deploy button, in the section the page refreshes.
    resp = operator_browser.post(f"/peers/{router_id}/router/preflight", htmx=True)
    assert POLL in text(resp)
    run_jobs()
    section = operator_browser.get(f"/peers/{router_id}/router", headers={"HX-Request": "true"})
    assert "HX-Refresh" not in section.headers
    assert "Deploy approved plan" in text(section) and "run Preflight first" not in text(section)
    resp = operator_browser.post(
        f"/peers/{router_id}/router/deploy",
        {"plan_hash": re.search(r'name="plan_hash" value="([0-9a-f]+)"', text(section)).group(1)},
        htmx=True,
    )
    assert resp.status_code == 200 and POLL in text(resp)
    run_jobs()
    # After a deploy the whole page reloads: the stale banner and badges change with it.
    section = operator_browser.get(f"/peers/{router_id}/router", headers={"HX-Request": "true"})
    assert section.headers.get("HX-Refresh") == "true"
    page = text(operator_browser.get(f"/peers/{router_id}"))
    assert router_sync(page) == "in sync"

    # Without htmx every button answers 303 to the job page.
    assert job_id_from(operator_browser.post(f"/peers/{router_id}/router/verify")) > job_id


def test_status_polls_do_not_push_the_operators_job_out_of_the_router_section(
    app, operator_browser, run_jobs, sim, router_id
):
    """The cron polls every router each minute: a poll must neither replace the deploy's result in the
    Router section nor stop the page reload that follows the deploy. The Status card tells what the
    polls found, an unreachable router too."""
    pre, dep = preflight_and_deploy(app, operator_browser, run_jobs, router_id)

    def poll_round() -> list[int]:
        with app.app_context():
            created = queue_round(JobKind.STATUS)
            commit()
        return created

    queued = poll_round()  # a round queued while the deploy's widget is still on the page
    assert len(queued) == 1 and job_row(app, queued[0]).peer_id == router_id
    section = operator_browser.get(f"/peers/{router_id}/router", headers={"HX-Request": "true"})
    assert f'id="job-status-{dep}"' in text(section) and section.headers.get("HX-Refresh") == "true"
    run_jobs()
    assert job_row(app, queued[0]).status == "succeeded"
    page = text(operator_browser.get(f"/peers/{router_id}"))
    assert f'id="job-status-{dep}"' in page and router_sync(page) == "in sync"

    sim.stop()  # the router goes away: the poll records it, and the section still shows the deploy
    poll_round()
    run_jobs()
    page = text(operator_browser.get(f"/peers/{router_id}"))
    router_status = page[page.index('id="router-status"') :]
    assert f'id="job-status-{dep}"' in page and router_status[: router_status.index("</p>")].count("unreachable") == 1


def test_clear_asks_for_confirmation(admin_browser, router_id):
    page = text(admin_browser.get(f"/peers/{router_id}"))
    form = re.search(rf'<form[^>]*hx-post="/peers/{router_id}/router/clear"[^>]*>', page, re.S).group(0)
    assert "hx-confirm=" in form
    assert "removes EVERY WireWAN resource from the router" in form and "restores the routes WireWAN demoted" in form


def test_viewers_see_the_section_without_buttons_and_cannot_post(app, viewer_browser, run_jobs, router_id, api):
    api.get(f"/api/peers/{router_id}/mikrotik/preflight")
    run_jobs()
    page = text(viewer_browser.get(f"/peers/{router_id}"))
    assert 'id="router"' in page and "Deployment history" in page and "Preflight" in page  # the latest job
    assert "/router/preflight" not in page and "/router/clear" not in page and "Deploy approved plan" not in page
    for action in ("test-connection", "preflight", "verify", "revert", "clear", "deploy"):
        assert viewer_browser.post(f"/peers/{router_id}/router/{action}").status_code == 403
        assert viewer_browser.post(f"/peers/{router_id}/router/{action}", htmx=True).status_code == 403
    with app.app_context():
        job = db.session.scalar(select(Job).where(Job.kind == "preflight"))
        assert db.session.scalar(select(func.count(Job.id))) == 1
    assert "Deploy this plan" not in text(viewer_browser.get(f"/jobs/{job.id}"))


def test_non_router_peers_have_no_router_section(admin_browser, router_wan):
    server = router_wan["server"]["id"]
    assert 'id="router"' not in text(admin_browser.get(f"/peers/{server}"))
    assert admin_browser.post(f"/peers/{server}/router/preflight").status_code == 404
    assert admin_browser.get(f"/peers/{server}/router").status_code == 404


def test_deployment_history_diffs_the_changed_endpoint(app, admin_browser, api, run_jobs, router_wan, router_id):
    preflight_and_deploy(app, admin_browser, run_jobs, router_id)
    server = router_wan["server"]["id"]
    assert api.patch(f"/api/peers/{server}", json={"endpoint": "203.0.113.99"}).status_code == 200
    page = text(admin_browser.get(f"/peers/{router_id}"))
    assert router_sync(page) == "changes pending"
    _, second = preflight_and_deploy(app, admin_browser, run_jobs, router_id)

    assert "Nothing to revert to" not in text(admin_browser.get(f"/peers/{router_id}"))
    for url in (f"/peers/{router_id}", f"/peers/{router_id}/deployments"):
        page = text(admin_browser.get(url))
        diff = re.search(r'<pre class="config diff history-lines">(.*?)</pre>', page, re.S).group(1)  # newest first
        removed = [unescape(line) for line in re.findall(r'class="d-del">([^<]*)<', diff)]
        added = [unescape(line) for line in re.findall(r'class="d-add">([^<]*)<', diff)]
        assert len(removed) == len(added) == 1, diff
        assert 'endpoint-address="203.0.113.10"' in removed[0] and 'endpoint-address="203.0.113.99"' in added[0]
        assert removed[0].startswith("-/interface wireguard peers add")
        assert "2 desired-state lines differ from the deployment before" in page
        assert f'href="/jobs/{second}"' in page


def test_no_secret_in_any_page(app, admin_browser, api, run_jobs, router_wan, router_id):
    pre, dep = preflight_and_deploy(app, admin_browser, run_jobs, router_id)
    api.patch(f"/api/peers/{router_wan['server']['id']}", json={"endpoint": "203.0.113.99"})
    preflight_and_deploy(app, admin_browser, run_jobs, router_id)
    verify = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/verify")
    revert = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/revert")
    clear = run_via_page(admin_browser, run_jobs, f"/peers/{router_id}/router/clear")
    assert job_row(app, clear).status == "succeeded", job_row(app, clear).error
    with app.app_context():
        secrets = {ROUTER_PASSWORD}
        for peer in db.session.scalars(select(Peer)):
            if peer.private_key_enc:
                secrets.add(crypto.decrypt(peer.private_key_enc))
            if peer.mt_password_enc:
                secrets.add(crypto.decrypt(peer.mt_password_enc))
    assert len(secrets) >= 3
    urls = ["/jobs/", f"/peers/{router_id}", f"/peers/{router_id}/deployments", f"/peers/{router_id}/router"]
    for job_id in (pre, dep, verify, revert, clear):
        urls += [f"/jobs/{job_id}", f"/jobs/{job_id}/status", f"/jobs/{job_id}/log", f"/jobs/{job_id}/result"]
    for url in urls:
        resp = admin_browser.get(url)
        assert resp.status_code == 200, url
        for secret in secrets:
            assert secret not in text(resp), f"a secret leaks on {url}"
    history = text(admin_browser.get(f"/peers/{router_id}/deployments"))
    assert "private-key=***" in history and "clear" in history


def test_demo_seed_is_idempotent(app, runner):
    from app.demo import DEMO_EMAIL, DEMO_PASSWORD

    first = runner.invoke(args=["demo", "seed", "--router1-port", "18001", "--router2-port", "18002"])
    assert first.exit_code == 0, first.output
    assert "log in as demo@wirewan.example / wirewan-demo" in first.output
    assert "click Preflight" in first.output
    second = runner.invoke(
        args=["demo", "seed", "--router1-port", "18011", "--router2-port", "18012", "--url", "http://127.0.0.1:9999"]
    )
    assert second.exit_code == 0, second.output
    assert "Open http://127.0.0.1:9999, log in as" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Wan.id))) == 1
        assert db.session.scalar(select(func.count(User.id)).where(User.email == DEMO_EMAIL)) == 1
        peers = {p.name: p for p in db.session.scalars(select(Peer))}
        assert sorted(peers) == ["branch", "laptop", "office", "vps"]
        assert (peers["office"].mt_port, peers["branch"].mt_port) == (18011, 18012)
        assert peers["office"].mt_host == "127.0.0.1" and peers["branch"].mt_auto_deploy
        assert crypto.decrypt(peers["office"].mt_password_enc) == "demo-router"
        assert peers["laptop"].endpoint_host is None and peers["vps"].kind == "server"
        assert len(peers["office"].subnets) == 1 and len(peers["vps"].subnets) == 1
        branch_lan = peers["branch"].subnets[0]
        assert branch_lan.cidr == "192.168.88.0/24" and branch_lan.nat_cidr  # Auto-NAT'd
        user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
        assert user.role == "admin" and user.check_password(DEMO_PASSWORD)
