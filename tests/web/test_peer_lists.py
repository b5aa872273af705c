"""Long WANs: CSV bulk import (all or nothing) and the paged, searchable peer list with bounded SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import AuditEntry, Peer, Subnet
from tests.web.test_api_network import make_peer, make_wan

CSV = "text/csv"


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_csv_import_creates_every_row_or_none(app: Flask, api: Any) -> None:
    wan = make_wan(api)
    make_peer(api, wan["id"], "hub", endpoint="203.0.113.1")
    table = "name,kind,endpoint,lans\nbranch-1,mikrotik,198.51.100.1,192.168.10.0/24;192.168.11.0/24\nlaptop,client,,\n"
    resp = api.post(f"/api/peers/wan/{wan['id']}/import", data=table, content_type=CSV)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert [(p["name"], p["tunnel_ip"], p["stale"]) for p in body] == [
        ("branch-1", "10.0.0.2", True),
        ("laptop", "10.0.0.3", True),
    ]
    assert [s["cidr"] for s in body[0]["subnets"]] == ["192.168.10.0/24", "192.168.11.0/24"]
    assert "private" not in resp.get_data(as_text=True)

    peers, subnets = count(app, Peer), count(app, Subnet)
    bad = table.replace("branch-1", "branch-2").replace("laptop", "phone") + "evil,server,,192.168.10.128/25\n"
    resp = api.post(f"/api/peers/wan/{wan['id']}/import", data=bad, content_type=CSV)
    assert resp.status_code == 422
    err = resp.get_json()
    assert err["line"] == 2 and err["field"] == "lans" and "branch-1" in err["message"]
    assert (count(app, Peer), count(app, Subnet)) == (peers, subnets)  # nothing half-written
    with app.app_context():
        assert (
            db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "import-csv"))
            == 1
        )


def test_csv_import_of_a_large_table_and_paging(app: Flask, api: Any) -> None:
    wan = make_wan(api, tunnel_cidr="10.0.0.0/20", services_cidr="10.1.5.0/24", topology="hub_spoke")
    make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.1")
    rows = [f"p{i:04d},{'client' if i % 3 else 'server'},,10.{100 + i // 256}.{i % 256}.0/24" for i in range(1200)]
    resp = api.post(
        f"/api/peers/wan/{wan['id']}/import", data="name,kind,endpoint,lans\n" + "\n".join(rows), content_type=CSV
    )
    assert resp.status_code == 201 and len(resp.get_json()) == 1200

    base = f"/api/peers/wan/{wan['id']}"
    first = api.get(f"{base}?page=1")
    assert first.status_code == 200 and first.headers["X-Total-Count"] == "1201"
    assert [p["name"] for p in first.get_json()][:3] == ["hub", "p0000", "p0001"] and len(first.get_json()) == 50
    # Tunnel-IP order is numeric (10.0.1.0 after 10.0.0.255), not textual.
    page6 = api.get(f"{base}?page=6&per_page=50").get_json()
    assert [p["tunnel_ip"] for p in page6][4:7] == ["10.0.0.255", "10.0.1.0", "10.0.1.1"]
    last = api.get(f"{base}?page=3&per_page=500").get_json()
    assert len(last) == 201 and last[-1]["name"] == "p1199"
    assert api.get(f"{base}?page=9&per_page=500").get_json() == []

    # Search by name, tunnel IP and LAN; filters; sort.
    assert [p["name"] for p in api.get(f"{base}?q=p011&page=1").get_json()] == [f"p011{i}" for i in range(10)]
    assert [p["name"] for p in api.get(f"{base}?q=10.0.4.177").get_json()] == ["p1199"]
    assert [p["name"] for p in api.get(f"{base}?q=10.101.7.0/24").get_json()] == ["p0263"]
    servers = api.get(f"{base}?kind=server&page=1&per_page=5")
    assert servers.headers["X-Total-Count"] == "401" and {p["kind"] for p in servers.get_json()} == {"server"}
    assert api.get(f"{base}?q=%25&page=1").headers["X-Total-Count"] == "0"  # LIKE wildcards are literal
    assert [p["name"] for p in api.get(f"{base}?sort=-name&page=1&per_page=2").get_json()] == ["p1199", "p1198"]
    assert api.get(f"{base}?stale=true&page=1").headers["X-Total-Count"] == "1201"
    assert api.get(f"{base}?stale=false&page=1").headers["X-Total-Count"] == "0"
    assert api.get(f"{base}?online=true&page=1").status_code == 200
    for bad in ("page=0", "per_page=501", "kind=router", "stale=maybe", "sort=evil", "page=x"):
        resp = api.get(f"{base}?{bad}")
        assert resp.status_code == 400, bad
        assert resp.get_json()["field"] == bad.split("=")[0]

    # Bounded SQL: a page of 50 and a page of 500 run the same statements (no N+1).
    api.get(f"{base}?page=1")  # hashes cached
    with statements(app) as small:
        assert api.get(f"{base}?page=1&per_page=50&q=p").status_code == 200
    with statements(app) as large:
        assert api.get(f"{base}?page=1&per_page=500&q=p&stale=true").status_code == 200
    assert len(small) == len(large) <= 10, small


# --- the pages ---------------------------------------------------------------------------------------


def test_wan_page_searches_filters_and_pages_with_the_url_as_state(operator_browser: Any, api: Any) -> None:
    wan = make_wan(api, topology="hub_spoke")
    make_peer(api, wan["id"], "hub", is_hub=True, endpoint="203.0.113.1")
    table = "name,kind,endpoint,lans\n" + "\n".join(f"s{i:03d},client,,10.{50 + i}.0.0/24" for i in range(120))
    assert api.post(f"/api/peers/wan/{wan['id']}/import", data=table, content_type=CSV).status_code == 201

    page = operator_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    assert page.count('<tr id="peer-') == 50 and "page 1 of 3" in page and 'name="q"' in page
    assert 'hx-push-url="true"' in page and f"/wans/{wan['id']}?page=2" in page

    part = operator_browser.get(f"/wans/{wan['id']}?q=s11&kind=client", headers={"HX-Request": "true"})
    body = part.get_data(as_text=True)
    assert "<html" not in body and body.count('<tr id="peer-') == 10 and "10 matching" in body
    assert "HX-Request" in part.headers.get("Vary", "")
    assert operator_browser.get(f"/wans/{wan['id']}?q=10.57.0.0").get_data(as_text=True).count('<tr id="peer-') == 1
    last = operator_browser.get(f"/wans/{wan['id']}?page=3&sort=-name").get_data(as_text=True)
    assert last.count('<tr id="peer-') == 21 and "hub" in last
    # Odd values from a bookmark fall back to defaults instead of erroring.
    assert operator_browser.get(f"/wans/{wan['id']}?page=-4&kind=router&sort=evil").status_code == 200


def test_csv_import_page_previews_then_creates(app: Flask, operator_browser: Any, api: Any) -> None:
    wan = make_wan(api)
    operator_browser.get(f"/wans/{wan['id']}/import-peers")
    table = "name,kind,endpoint,lans\nbranch,server,198.51.100.1,192.168.10.0/24\nphone,client,,\n"
    resp = operator_browser.post(f"/wans/{wan['id']}/import-peers", {"csv": table, "preview": "1"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="import-preview"' in body and "10.0.0.2" in body
    assert "Create 2 peers" in body and count(app, Peer) == 0
    bad = operator_browser.post(f"/wans/{wan['id']}/import-peers", {"csv": table + "x y,client,,\n", "confirm": "1"})
    assert bad.status_code == 422 and "Line 4:" in bad.get_data(as_text=True) and count(app, Peer) == 0
    done = operator_browser.post(f"/wans/{wan['id']}/import-peers", {"csv": table, "confirm": "1"})
    assert done.status_code == 303 and count(app, Peer) == 2


def test_export_and_import_pages(app: Flask, operator_browser: Any, api: Any) -> None:
    import io

    wan = make_wan(api)
    make_peer(api, wan["id"], "a", endpoint="203.0.113.1")
    settings = operator_browser.get(f"/wans/{wan['id']}/edit").get_data(as_text=True)
    assert 'id="export-wan"' in settings
    resp = operator_browser.post(f"/wans/{wan['id']}/export", {"passphrase": "twelve chars!"})
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    document = resp.get_data()
    assert b"PrivateKey" not in document
    assert 'href="/wans/import"' in operator_browser.get("/wans/").get_data(as_text=True)
    wrong = operator_browser.post(
        "/wans/import",
        {"document": (io.BytesIO(document), "corp.json"), "passphrase": "wrong passphrase", "name": "corp2"},
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422 and "Wrong passphrase" in wrong.get_data(as_text=True)
    ok = operator_browser.post(
        "/wans/import",
        {"document": (io.BytesIO(document), "corp.json"), "passphrase": "twelve chars!", "name": "corp2"},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 303, ok.get_data(as_text=True)[:2000]
