"""The audit log a person can read: actions apart from raw router calls, paged, every job an action
credited to the user who asked for it, and the same log over the API (X-Total-Count)."""

from __future__ import annotations

from typing import Any

from app.extensions import db
from app.models import AuditEntry
from app.services import audit


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def test_every_router_job_is_an_action_credited_to_whoever_clicked(
    app: Any, operator_browser: Any, run_jobs: Any, router_wan: dict[str, Any]
) -> None:
    router_id, wan_id = router_wan["router"]["id"], router_wan["wan"]["id"]
    for action in ("test-connection", "preflight", "verify", "revert", "clear"):
        operator_browser.post(f"/peers/{router_id}/router/{action}")
        run_jobs()  # one job at a time per router
    page = text(operator_browser.get(f"/wans/{wan_id}/audit"))
    for action, label in (
        ("test-connection", "Test connection"),
        ("preflight", "Preflight"),
        ("verify", "Verify"),
        ("revert", "Revert"),
        ("clear", "Clear"),
    ):
        assert f"<td>{action}</td>" in page, action
        assert f"{label} of router &#39;office&#39; requested" in page
    # Who, what, when and which object on every action row; router calls are on the other tab.
    assert "op@example.com" in page and f'href="/peers/{router_id}">peer office</a>' in page
    assert "/system/resource" not in page and "router-call" not in page
    with app.app_context():
        calls = db.session.query(AuditEntry).filter_by(action=audit.ROUTER_CALL, wan_id=wan_id).all()
        assert calls and {c.actor for c in calls} == {"op@example.com"}  # not "system"
        # Whatever the jobs recorded themselves is credited to the operator too.
        assert db.session.query(AuditEntry).filter_by(wan_id=wan_id, actor="system").count() == 0
    routers = text(operator_browser.get(f"/wans/{wan_id}/audit?kind=router"))
    assert 'aria-current="page">Router calls' in routers and "/system/resource" in routers
    assert "Preflight of router" not in routers


def test_the_log_is_paged_on_the_page_and_in_the_api(app: Any, admin_browser: Any, api: Any) -> None:
    wan = api.post("/api/wan", json={"name": "paged"}).get_json()
    with app.app_context():
        for i in range(120):
            audit.record("router-call", "peer", 1, wan_id=wan["id"], summary=f"/call-{i:03d} → ok", actor=(None, "x"))
        db.session.commit()
    first = text(admin_browser.get(f"/wans/{wan['id']}/audit?kind=router"))
    assert "Page 1 of 3 · 120 entries" in first and "/call-119" in first and "/call-069" not in first
    assert 'rel="next"' in first and 'rel="prev"' not in first
    last = text(admin_browser.get(f"/wans/{wan['id']}/audit?kind=router&page=3"))
    assert "/call-000" in last and 'rel="prev"' in last and 'rel="next"' not in last
    # The actions tab does not drown in router calls.
    actions = text(admin_browser.get(f"/wans/{wan['id']}/audit"))
    assert "WAN &#39;paged&#39; created" in actions and "/call-" not in actions
    assert 'Router calls <span class="count">120</span>' in actions

    resp = api.get(f"/api/wan/{wan['id']}/audit?kind=router&page=2&per_page=50")
    assert resp.status_code == 200 and resp.headers["X-Total-Count"] == "120"
    rows = resp.get_json()
    assert len(rows) == 50 and rows[0]["summary"].startswith("/call-069") and rows[0]["kind"] == "router"
    actions_json = api.get(f"/api/wan/{wan['id']}/audit").get_json()
    assert [r["action"] for r in actions_json] == ["create"] and actions_json[0]["actor"] == "op@example.com"
    assert api.get(f"/api/wan/{wan['id']}/audit?kind=nope").status_code == 400
    assert api.get(f"/api/wan/{wan['id']}/audit?per_page=501").status_code == 400
    assert api.get("/api/wan/999999/audit").status_code == 404


def test_an_empty_tab_says_what_will_appear(admin_browser: Any, api: Any) -> None:
    wan = api.post("/api/wan", json={"name": "quiet"}).get_json()
    page = text(admin_browser.get(f"/wans/{wan['id']}/audit?kind=router"))
    assert "No router calls yet" in page


def test_a_deploy_marks_the_router_applied_in_the_name_of_whoever_deployed(
    app: Any, operator_browser: Any, run_jobs: Any, router_wan: dict[str, Any]
) -> None:
    import re

    router_id, wan_id = router_wan["router"]["id"], router_wan["wan"]["id"]
    pre = operator_browser.post(f"/peers/{router_id}/router/preflight")
    run_jobs()
    page = text(operator_browser.get(pre.headers["Location"]))
    plan_hash = re.search(r'name="plan_hash" value="([0-9a-f]+)"', page).group(1)
    operator_browser.post(f"/peers/{router_id}/router/deploy", {"plan_hash": plan_hash})
    run_jobs()
    with app.app_context():
        marked = db.session.query(AuditEntry).filter_by(wan_id=wan_id, action="deploy", object_id=router_id).all()
        assert {e.actor for e in marked} == {"op@example.com"}
        assert any("config deploy" in e.summary for e in marked)  # the job's own entry, not only the request
