"""Operations on the web side (issue 12): report tokens and the report endpoint, /metrics, the
webhook API and settings page (admin only), and the live status on the pages."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask import Flask

from app.domain.keys import generate_keypair
from tests.conftest import make_token, make_user

TOKEN_RE = re.compile(r"wwr_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "METRICS_TOKEN": "scrape-me-please", "STATUS_INTERVAL": 30}


@pytest.fixture
def lab(api: Any) -> dict[str, Any]:
    wan = api.post("/api/wan", json={"name": "lab"}).get_json()
    vps = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "vps", "kind": "server", "endpoint": "203.0.113.10"})
    laptop = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "laptop", "kind": "client"})
    return {"wan": wan, "vps": vps.get_json(), "laptop": laptop.get_json()}


def issue_token(browser: Any, peer_id: int) -> str:
    resp = browser.post(f"/peers/{peer_id}/report-token")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    match = TOKEN_RE.search(resp.get_data(as_text=True))
    assert match
    return match.group(0)


def dump(own_public: str, *peers: tuple[str, int, int, int]) -> str:
    private, _ = generate_keypair()
    lines = [f"{private}\t{own_public}\t51820\toff"]
    for key, handshake, rx, tx in peers:
        lines.append(f"{key}\t(none)\t198.51.100.9:51820\t10.0.0.2/32\t{handshake}\t{rx}\t{tx}\t25")
    return "\n".join(lines) + "\n"


def report(client: Any, peer_id: int, token: str, text: str) -> Any:
    return client.post(f"/api/peers/{peer_id}/report", data=text, headers={"Authorization": f"Bearer {token}"})


def test_a_peer_reports_itself_with_its_own_token_and_nothing_else(
    client: Any, api: Any, operator_browser: Any, lab: dict[str, Any], operator_token: str
) -> None:
    vps, laptop = lab["vps"], lab["laptop"]
    page = operator_browser.post(f"/peers/{vps['id']}/report-token").get_data(as_text=True)
    token = TOKEN_RE.search(page).group(0)  # type: ignore[union-attr]
    assert "wirewan-report.timer" in page and "OnUnitActiveSec=60" in page and "* * * * * root wg show" in page
    assert f"/api/peers/{vps['id']}/report" in page and f"wg show {lab['wan']['interface_name']} dump" in page
    other = issue_token(operator_browser, laptop["id"])
    good = dump(vps["public_key"], (laptop["public_key"], int(time.time()) - 20, 1000, 4000))

    assert report(client, vps["id"], "wwr_not-a-token", good).status_code == 401
    assert report(client, vps["id"], operator_token, good).status_code == 401  # an API token is not a report token
    assert client.post(f"/api/peers/{vps['id']}/report", data=good).status_code == 401
    assert report(client, vps["id"], other, good).status_code == 403
    hostile = [
        good.replace("\t25\n", "\t25;rm -rf /\n"),
        good + "x" * 300_000,
        dump(laptop["public_key"], (vps["public_key"], 0, 1, 1)),  # another peer's interface
        dump(vps["public_key"], (generate_keypair()[1], 0, 1, 1)),  # a peer not in the WAN
        "\x00\x01binary",
    ]
    for text in hostile:
        resp = report(client, vps["id"], token, text)
        assert resp.status_code in (413, 422), resp.get_json()
        assert resp.get_json()["error"] in ("invalid", "too_large")
    assert api.get(f"/api/peers/{vps['id']}/status").get_json()["observed_at"] is None  # nothing stored

    assert report(client, vps["id"], token, good).status_code == 204
    status = api.get(f"/api/peers/{vps['id']}/status").get_json()
    assert (status["online"], status["source"], status["rx_bytes"], status["tx_bytes"]) == (True, "report", 4000, 1000)
    # Shown once: the peer page never shows it again; revoking ends it.
    assert token not in operator_browser.get(f"/peers/{vps['id']}").get_data(as_text=True)
    assert operator_browser.post(f"/peers/{vps['id']}/report-token/revoke").status_code == 303
    assert report(client, vps["id"], token, good).status_code == 401


def test_viewers_cannot_make_a_report_token(app: Flask, api: Any, lab: dict[str, Any], viewer_browser: Any) -> None:
    assert viewer_browser.post(f"/peers/{lab['vps']['id']}/report-token").status_code == 403


def test_metrics_need_a_token_and_name_exactly_the_contracts_series(
    app: Flask, client: Any, api: Any, operator_browser: Any, lab: dict[str, Any], operator_token: str
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    vps, laptop = lab["vps"], lab["laptop"]
    token = issue_token(operator_browser, vps["id"])
    good = dump(vps["public_key"], (laptop["public_key"], int(time.time()) - 20, 1000, 4000))
    assert report(client, vps["id"], token, good).status_code == 204

    for bearer in ("scrape-me-please", operator_token):
        resp = client.get("/metrics", headers={"Authorization": f"Bearer {bearer}"})
        assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert 'wirewan_peer_up{peer="vps",wan="lab"} 1.0' in text
    assert 'wirewan_peer_receive_bytes_total{peer="vps",wan="lab"} 4000.0' in text
    assert 'wirewan_peer_transmit_bytes_total{peer="vps",wan="lab"} 1000.0' in text
    assert re.search(r'wirewan_peer_last_handshake_seconds\{peer="vps",wan="lab"\} 1\.\d+e\+09', text)
    assert 'wirewan_peer_config_stale{peer="laptop",wan="lab"} 1.0' in text
    assert 'wirewan_peer_up{peer="laptop"' not in text  # nobody has seen it: unknown, not down
    names = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    assert names == {
        "wirewan_peer_up", "wirewan_peer_last_handshake_seconds", "wirewan_peer_receive_bytes_total",
        "wirewan_peer_transmit_bytes_total", "wirewan_peer_config_stale", "wirewan_router_reachable",
        "wirewan_router_in_sync", "wirewan_jobs_total",
    }  # fmt: skip
    assert "scrape-me-please" not in text


def test_webhooks_are_admin_only_validated_and_never_show_the_secret(app: Flask, client: Any, api: Any) -> None:
    admin = {"Authorization": f"Bearer {make_token(app, 'admin@example.com', 'a')}"}
    make_user(app, "viewer@example.com", "viewer")
    viewer = {"Authorization": f"Bearer {make_token(app, 'viewer@example.com', 'v')}"}
    body = {"url": "http://127.0.0.1:9/hook", "events": ["peer.down"], "secret": "s3cret-value"}
    assert api.get("/api/webhooks").status_code == 403
    assert api.post("/api/webhooks", json=body).status_code == 403
    assert client.get("/api/webhooks", headers=viewer).status_code == 403
    bad = [
        ({**body, "url": "ftp://127.0.0.1/x"}, "url"),
        ({**body, "url": "javascript:alert(1)"}, "url"),
        ({**body, "url": "http://exa mple.com/"}, "url"),
        ({**body, "events": ["peer.sideways"]}, "events"),
        ({**body, "events": []}, "events"),
        ({**body, "secret": 5}, "secret"),
    ]
    for payload, field in bad:
        resp = client.post("/api/webhooks", json=payload, headers=admin)
        assert resp.status_code == 422 and resp.get_json()["field"] == field, payload
    assert client.post("/api/webhooks", json={**body, "extra": 1}, headers=admin).status_code == 400
    assert client.get("/api/webhooks", headers=admin).get_json() == []  # nothing half-written
    made = client.post("/api/webhooks", json=body, headers=admin)
    assert made.status_code == 201 and "s3cret-value" not in made.get_data(as_text=True)
    hook = made.get_json()
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=admin).get_json() == []
    assert "s3cret-value" not in client.get("/api/webhooks", headers=admin).get_data(as_text=True)
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=viewer).status_code == 403
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=admin).status_code == 404
    from app.extensions import db
    from app.models import AuditEntry

    with app.app_context():
        entries = db.session.query(AuditEntry).filter(AuditEntry.object_type == "webhook").all()
        assert [e.action for e in entries] == ["webhook-create", "webhook-delete"]
        assert all("127.0.0.1" in e.summary and "s3cret" not in str(e.details) for e in entries)


def test_webhook_settings_page(admin_browser: Any) -> None:
    page = admin_browser.get("/settings/webhooks")
    assert page.status_code == 200 and "Delivery log" in page.get_data(as_text=True)
    refused = admin_browser.post("/settings/webhooks", {"url": "gopher://x", "events": ["peer.up"]})
    assert refused.status_code == 422 and "Only http:// and https://" in refused.get_data(as_text=True)
    made = admin_browser.post(
        "/settings/webhooks", {"url": "https://hooks.example/x", "events": ["peer.up"], "secret": "zz-secret"}
    )
    assert made.status_code == 303
    body = admin_browser.get("/settings/webhooks").get_data(as_text=True)
    assert "https://hooks.example/x" in body and "zz-secret" not in body


def test_webhook_settings_are_not_for_operators(operator_browser: Any) -> None:
    assert operator_browser.get("/settings/webhooks").status_code == 403
    assert operator_browser.post("/settings/webhooks", {"url": "https://x.example/"}).status_code == 403


def test_pages_show_the_dot_the_age_and_the_source_and_refresh_themselves(
    client: Any, operator_browser: Any, lab: dict[str, Any]
) -> None:
    vps, laptop = lab["vps"], lab["laptop"]
    token = issue_token(operator_browser, vps["id"])
    good = dump(vps["public_key"], (laptop["public_key"], int(time.time()) - 42, 1000, 4000))
    assert report(client, vps["id"], token, good).status_code == 204

    wan_page = operator_browser.get(f"/wans/{lab['wan']['id']}").get_data(as_text=True)
    row = re.search(rf'<tr id="peer-{vps["id"]}">(.*?)</tr>', wan_page, re.S).group(1)  # type: ignore[union-attr]
    assert "status-online" in row and re.search(r"handshake 4\d s ago", row) and "reported" in row
    assert "3.9 KiB" in row  # rx
    laptop_row = re.search(rf'<tr id="peer-{laptop["id"]}">(.*?)</tr>', wan_page, re.S).group(1)  # type: ignore[union-attr]
    assert "status-unknown" in laptop_row and "not seen yet" in laptop_row
    assert 'hx-trigger="every 30s"' in wan_page
    fragment = operator_browser.get(f"/wans/{lab['wan']['id']}", headers={"HX-Request": "true"})
    # The peer list (table and pager, with the URL's search and page) refreshes alone.
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="peers-list"')

    peer_page = operator_browser.get(f"/peers/{vps['id']}").get_data(as_text=True)
    assert 'id="peer-status"' in peer_page and "<svg" in peer_page and "reported" in peer_page
    card = operator_browser.get(f"/peers/{vps['id']}/status").get_data(as_text=True)
    assert card.lstrip().startswith('<section class="card" id="peer-status"') and 'hx-trigger="every 30s"' in card
    assert "Revoke report token" in card


def test_viewers_see_status_but_no_token_buttons(api: Any, lab: dict[str, Any], viewer_browser: Any) -> None:
    card = viewer_browser.get(f"/peers/{lab['vps']['id']}/status")
    assert card.status_code == 200 and "status-unknown" in card.get_data(as_text=True)
    assert "report token" not in card.get_data(as_text=True).lower()
    assert viewer_browser.get(f"/peers/{lab['vps']['id']}").status_code == 200


def test_the_dashboard_counts_live_state_and_links_to_the_filtered_lists(
    client: Any, operator_browser: Any, lab: dict[str, Any]
) -> None:
    vps, laptop, wan_id = lab["vps"], lab["laptop"], lab["wan"]["id"]
    now = int(time.time())
    assert report(client, vps["id"], issue_token(operator_browser, vps["id"]),
                  dump(vps["public_key"], (laptop["public_key"], now - 10, 1, 1))).status_code == 204  # fmt: skip
    assert report(client, laptop["id"], issue_token(operator_browser, laptop["id"]),
                  dump(laptop["public_key"], (vps["public_key"], now - 900, 1, 1))).status_code == 204  # fmt: skip
    body = operator_browser.get("/").get_data(as_text=True)
    row = re.search(rf'<tr id="live-row-{wan_id}">(.*?)</tr>', body, re.S).group(1)  # type: ignore[union-attr]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells == ["lab", "1", "1", "0", "0", "0"]
    assert f'href="/wans/{wan_id}?live=down"' in row and f"/jobs/?wan_id={wan_id}&amp;status=failed" in row
    down = operator_browser.get(f"/wans/{wan_id}?live=down").get_data(as_text=True)
    assert f'id="peer-{laptop["id"]}"' in down and f'id="peer-{vps["id"]}"' not in down
    assert "only peers down" in down and f'hx-get="/wans/{wan_id}?live=down"' in down


def test_a_router_page_shows_whether_the_last_poll_reached_it(app: Flask, api: Any, operator_browser: Any) -> None:
    from app.extensions import db
    from app.models import Peer
    from app.services import status as status_service
    from app.services.tx import commit

    wan = api.post("/api/wan", json={"name": "r"}).get_json()
    router = api.post(f"/api/peers/wan/{wan['id']}", json={"name": "hq", "kind": "mikrotik"}).get_json()
    assert "not polled yet" in operator_browser.get(f"/peers/{router['id']}/status").get_data(as_text=True)
    with app.app_context():
        status_service.record_router_poll(db.session.get(Peer, router["id"]), None, "Cannot reach 192.0.2.1:8728.")
        commit()
    card = operator_browser.get(f"/peers/{router['id']}/status").get_data(as_text=True)
    assert "Router: unreachable — Cannot reach 192.0.2.1:8728." in card and re.search(r"polled \d s ago", card)
