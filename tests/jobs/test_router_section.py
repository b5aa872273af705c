"""The Router section a person uses (issue 16 §4): actions disabled while a job for the router is
queued or running (the API answers 409 with that job's id), "In sync — nothing to deploy", no history
for a deploy that changed nothing, Revert to the last deployment that differs, one vocabulary for the
counts, and the refused-login help with the WAN's real ranges."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.models import Deployment
from tests.jobs.test_deploy_lifecycle import finished, preflight_and_deploy
from tests.jobs.test_pages_jobs import text
from tests.routeros_sim.server import SimRouter


def buttons(page: str) -> dict[str, bool]:
    """Router action buttons of the section → enabled?"""
    section = page[page.index('id="router"') :]
    section = section[: section.index("</section>")]
    out = {}
    for m in re.finditer(r"<button class=\"[^\"]*\" type=\"submit\"([^>]*)>([^<(]+)", section):
        out[m.group(2).strip()] = "disabled" not in m.group(1)
    return out


def test_a_queued_job_disables_every_router_action_and_the_api_says_409(
    api: Any, admin_browser: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    queued = api.get(f"/api/peers/{router}/mikrotik/preflight")
    assert queued.status_code == 202
    job_id = queued.get_json()["job_id"]

    page = text(admin_browser.get(f"/peers/{router}"))
    assert buttons(page) and not any(buttons(page).values()), buttons(page)
    assert f"Job #{job_id} (preflight) is queued on this router" in page

    for path in ("preflight", "verify", "clear", "revert", "test-connection"):
        method = api.get if path in ("preflight", "verify") else api.post
        resp = method(f"/api/peers/{router}/mikrotik/{path}")
        assert resp.status_code == 409, (path, resp.get_json())
        assert resp.get_json()["job_id"] == job_id and resp.get_json()["error"] == "router_busy"
    resp = admin_browser.post(f"/peers/{router}/router/verify")
    assert "is queued on this router" in text(admin_browser.get(resp.headers.get("Location", f"/peers/{router}")))

    run_jobs()
    page = text(admin_browser.get(f"/peers/{router}"))
    assert buttons(page)["Preflight"] and buttons(page)["Verify"]


def test_a_scheduled_status_poll_leaves_the_router_actions_enabled(
    app: Any, api: Any, admin_browser: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    """The status poll queues a read-only job for every router each minute: it must not grey out
    the buttons (a job asked for meanwhile waits for the router lock)."""
    from app.models import Peer
    from app.models.jobs import JobKind
    from app.services import jobs as job_service

    router = router_wan["router"]["id"]
    with app.app_context():
        job_service.create(JobKind.STATUS, db.session.get(Peer, router), trigger="schedule")
        job_service.discard_staged()
        db.session.commit()
    page = text(admin_browser.get(f"/peers/{router}"))
    enabled = buttons(page)
    assert enabled["Preflight"] and enabled["Verify"] and enabled["Clear"], enabled
    assert "on this router; its actions come back" not in page
    assert api.get(f"/api/peers/{router}/mikrotik/preflight").status_code == 202


def test_in_sync_no_history_and_revert_to_the_last_that_differs(
    app: Any, api: Any, admin_browser: Any, run_jobs: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    _, first = preflight_and_deploy(api, run_jobs, router)

    def history() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count(Deployment.id)).where(Deployment.peer_id == router))

    count = history()

    # In sync: the preflight says so, and offers no deploy button.
    pre = finished(api, run_jobs, api.get(f"/api/peers/{router}/mikrotik/preflight"))
    assert pre["result"]["plan"] == []
    page = text(admin_browser.get(f"/peers/{router}"))
    assert "In sync — nothing to deploy" in page and "Deploy approved plan" not in page
    assert "In sync — nothing to deploy" in text(admin_browser.get(f"/jobs/{pre['id']}"))
    # Nothing to revert to yet: one deployment.
    assert buttons(page)["Revert"] is False

    # A no-op deploy (through the API) leaves no history entry.
    dep = finished(
        api,
        run_jobs,
        api.post(
            f"/api/peers/{router}/mikrotik/deploy", json={"approve": True, "plan_hash": pre["result"]["plan_hash"]}
        ),
    )
    assert dep["status"] == "succeeded" and dep["result"]["deployment_id"] is None
    assert history() == count

    # A real change, then the same state re-applied: Revert goes back to the first deployment.
    server = router_wan["server"]["id"]
    assert api.patch(f"/api/peers/{server}", json={"endpoint": "203.0.113.99"}).status_code == 200
    _, second = preflight_and_deploy(api, run_jobs, router)
    page = text(admin_browser.get(f"/peers/{router}"))
    assert buttons(page)["Revert"] is True
    assert f"to deployment #{first['result']['deployment_id']}" in page
    rev = finished(api, run_jobs, api.post(f"/api/peers/{router}/mikrotik/revert"))
    assert rev["status"] == "succeeded" and rev["result"]["reverted_to"] == first["result"]["deployment_id"]
    assert (
        sim.rows("/interface/wireguard/peers", **{"public-key": router_wan["server"]["public_key"]})[0][
            "endpoint-address"
        ]
        == "203.0.113.10"
    )
    # The counts speak one language, explained once.
    page = text(admin_browser.get(f"/peers/{router}"))
    assert "1 change · " in page and "Changes</strong>: the plan's operations" in page
    assert "desired-state line" in page


def test_refused_login_help_prints_the_wans_real_ranges(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    assert api.patch(f"/api/peers/{router}", json={"mikrotik": {"password": "not-it"}}).status_code == 200
    done = run_direct("preflight", router)
    assert done["status"] == "failed"
    assert "address=10.0.0.0/24,192.168.0.0/16" in done["error"]
    assert "<tunnel range>" not in done["error"]
