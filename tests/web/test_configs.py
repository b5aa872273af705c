"""Config downloads, staleness by hash, the stale banner with its diff, zip, QR and topology JSON."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from app import crypto
from app.extensions import db
from app.models import AuditEntry, Peer


@pytest.fixture
def wan(api):
    return api.post("/api/wan", json={"name": "acme"}).get_json()


def add(api, wan, name, **fields):
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={"name": name, "kind": "server", **fields})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def download(api, peer, config_type="wireguard"):
    """The download that marks the peer applied (POST; a GET changes nothing)."""
    return api.post(f"/api/peers/{peer['id']}/config?config_type={config_type}")


def private_key(app, peer_id):
    with app.app_context():
        return crypto.decrypt(db.session.get(Peer, peer_id).private_key_enc)


def stale(api, peer):
    return api.get(f"/api/peers/{peer['id']}").get_json()["stale"]


def test_download_is_an_attachment_with_the_private_key(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    resp = download(api, hq)
    assert resp.status_code == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="wg-acme.conf"'
    assert resp.headers["Cache-Control"] == "no-store"
    text = resp.get_data(as_text=True)
    assert f"PrivateKey = {private_key(app, hq['id'])}\n" in text
    assert "Address = 10.0.0.1/24\nListenPort = 51820\n" in text
    assert "# laptop\n" in text and "PersistentKeepalive = 25" in text


def test_new_peer_is_not_applied_until_downloaded(api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    assert hq["stale"] is True
    download(api, hq)
    assert stale(api, hq) is False


def test_joining_peer_stales_others_and_redownload_clears(api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    download(api, hq)
    add(api, wan, "branch", endpoint="198.51.100.7")
    assert stale(api, hq) is True
    download(api, hq)
    assert stale(api, hq) is False


def test_change_that_leaves_a_config_alone_does_not_stale_it(api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    branch = add(api, wan, "branch", endpoint="198.51.100.7")
    download(api, hq)
    # A LAN that is not routed is not advertised: hq's config is byte-for-byte the same.
    assert (
        api.post(f"/api/peers/{branch['id']}/subnets", json={"cidr": "192.168.7.0/24", "routed": False}).status_code
        == 201
    )
    api.patch(f"/api/wan/{wan['id']}", json={"name": "acme-renamed"})
    assert stale(api, hq) is False
    # A routed one is: hq now routes it to branch.
    api.post(f"/api/peers/{branch['id']}/subnets", json={"cidr": "192.168.8.0/24"})
    assert stale(api, hq) is True


def test_spoke_unaffected_by_another_spoke_joining(api):
    wan = api.post("/api/wan", json={"name": "star", "topology": "hub_spoke"}).get_json()
    add(api, wan, "hub", endpoint="203.0.113.1", is_hub=True)
    spoke = add(api, wan, "spoke1", endpoint="198.51.100.1")
    download(api, spoke)
    add(api, wan, "spoke2", endpoint="198.51.100.2")
    assert stale(api, spoke) is False


def test_stale_badge_and_banner_with_masked_diff(app, api, admin_browser, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    download(api, hq)
    add(api, wan, "branch", endpoint="198.51.100.7")
    table = admin_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    row = table.split(f'id="peer-{hq["id"]}"')[1].split("</tr>")[0]
    assert "Config stale" in row
    page = admin_browser.get(f"/peers/{hq['id']}").get_data(as_text=True)
    assert 'id="stale-banner"' in page and "Get updated config" in page
    assert "+# branch" in page and "+Endpoint = 198.51.100.7:51820" in page
    assert private_key(app, hq["id"]) not in page
    resp = admin_browser.post(f"/peers/{hq['id']}/mark-applied")
    assert resp.status_code == 303
    after = admin_browser.get(f"/peers/{hq['id']}").get_data(as_text=True)
    assert "banner-stale" not in after and '<div id="stale-banner"></div>' in after  # the empty placeholder


def test_page_download_marks_applied_and_is_audited(app, admin_browser, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    resp = admin_browser.post(f"/peers/{hq['id']}/config")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="wg-acme.conf"'
    assert private_key(app, hq["id"]) in resp.get_data(as_text=True)
    assert stale(api, hq) is False
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "download-config")).all()
        assert [e.object_id for e in entries] == [hq["id"]]
        assert private_key(app, hq["id"]) not in f"{entries[0].summary} {entries[0].details}"


def test_qr_code_for_client_peers(app, admin_browser, api, wan):
    add(api, wan, "hq", endpoint="203.0.113.1")
    phone = add(api, wan, "phone", kind="client")
    page = admin_browser.get(f"/peers/{phone['id']}").get_data(as_text=True)
    assert "QR code" in page
    resp = admin_browser.post(f"/peers/{phone['id']}/qr")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<svg" in body and "<path" in body
    assert resp.headers["Cache-Control"] == "no-store"
    assert stale(api, phone) is False


def test_qr_code_of_a_config_too_large_is_a_422_and_marks_nothing(app, admin_browser, api, wan):
    # A mesh of 40 peers: 39 [Peer] sections, far beyond a QR code's ~2,900 bytes.
    for i in range(40):
        add(api, wan, f"p{i}", endpoint=f"203.0.113.{i + 1}")
    phone = add(api, wan, "phone", kind="client")
    resp = admin_browser.post(f"/peers/{phone['id']}/qr")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "more than a QR code holds" in body and "Download the config file" in body
    assert "PrivateKey" not in body
    assert stale(api, phone) is True


def test_zip_holds_every_config_and_the_router_scripts_and_marks_nothing(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    rtr = add(
        api,
        wan,
        "rtr",
        kind="mikrotik",
        endpoint="198.51.100.9",
        mikrotik={"host": "192.168.88.1", "password": "pw"},
    )
    # A second router with a LAN: the zip renders every router with one shared hasher.
    rtr2 = add(api, wan, "rtr2", kind="mikrotik", mikrotik={"host": "192.168.89.1", "password": "pw2"})
    assert api.post(f"/api/peers/{rtr2['id']}/subnets", json={"cidr": "192.168.50.0/24"}).status_code == 201
    resp = api.get(f"/api/wan/{wan['id']}/configs.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        assert sorted(zf.namelist()) == ["hq.conf", "laptop.conf", "rtr.rsc", "rtr2.rsc"]
        assert all((i.external_attr >> 16) & 0o777 == 0o600 for i in zf.infolist())
        # Each file is what the peer's own download gives.
        assert zf.read("hq.conf") == api.get(f"/api/peers/{hq['id']}/config").data
        for router in (rtr, rtr2):
            script = api.get(f"/api/peers/{router['id']}/config?config_type=mikrotik-script").data
            assert zf.read(f"{router['name']}.rsc") == script
        assert "192.168.50.0/24" in zf.read("rtr.rsc").decode()
        assert zf.read("rtr.rsc").decode().startswith("# WireWAN bootstrap script")
        # Deflated: the download is a fraction of the files' size.
        assert sum(i.compress_size for i in zf.infolist()) < sum(i.file_size for i in zf.infolist()) / 2
    peers = {p["name"]: p for p in api.get(f"/api/peers/wan/{wan['id']}").get_json()}
    assert all(p["stale"] for p in peers.values())  # a zip is no proof that any device runs it
    with app.app_context():
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "download-zip")) is not None


def test_viewer_cannot_download_the_zip(app, api, wan, client):
    from tests.conftest import make_token, make_user

    add(api, wan, "hq", endpoint="203.0.113.1")
    make_user(app, "v@example.com", "viewer")
    token = make_token(app, "v@example.com")
    resp = client.get(f"/api/wan/{wan['id']}/configs.zip", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert b"PrivateKey" not in resp.data


def test_get_config_changes_nothing_post_marks_applied(app, api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    got = api.get(f"/api/peers/{hq['id']}/config")
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    assert stale(api, hq) is True
    posted = api.post(f"/api/peers/{hq['id']}/config")
    assert posted.status_code == 200 and posted.data == got.data
    assert stale(api, hq) is False


def test_web_mark_all_applied_is_a_post(app, api, admin_browser, wan):
    add(api, wan, "hq", endpoint="203.0.113.1")
    add(api, wan, "laptop", kind="client")
    page = admin_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    assert f'action="/wans/{wan["id"]}/mark-applied"' in page
    zipped = admin_browser.post(f"/wans/{wan['id']}/configs.zip")
    assert zipped.status_code == 200 and zipped.headers["Cache-Control"] == "no-store"
    assert all(p["stale"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json())
    assert admin_browser.get(f"/wans/{wan['id']}/mark-applied").status_code == 405
    assert admin_browser.post(f"/wans/{wan['id']}/mark-applied").status_code == 303
    assert not any(p["stale"] for p in api.get(f"/api/peers/wan/{wan['id']}").get_json())


def test_mikrotik_script_download(app, api, wan):
    rtr = add(
        api,
        wan,
        "rtr",
        kind="mikrotik",
        endpoint="198.51.100.9",
        mikrotik={"host": "192.168.88.1", "password": 'pa"ss$[x]'},
    )
    add(api, wan, "hq", endpoint="203.0.113.1")
    resp = download(api, rtr, "mikrotik-script")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="rtr.rsc"'
    text = resp.get_data(as_text=True)
    assert text.startswith("# WireWAN bootstrap script") and "/interface/wireguard\n" in text
    assert 'pa\\"ss\\$[x]' in text  # escaped, never a live "$[...]"
    assert stale(api, rtr) is False
    assert download(api, add(api, wan, "srv", endpoint="192.0.2.4"), "mikrotik-script").status_code == 400


def test_viewer_cannot_download_secrets(app, api, wan, client):
    from tests.conftest import make_token, make_user

    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    make_user(app, "v@example.com", "viewer")
    token = make_token(app, "v@example.com")
    resp = client.get(f"/api/peers/{hq['id']}/config", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403
    assert client.get(f"/api/peers/{hq['id']}", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_topology_reports_relayed_cgnat_pair(api, wan):
    hq = add(api, wan, "hq", endpoint="203.0.113.1")
    a = add(api, wan, "a", kind="client")
    b = add(api, wan, "b", kind="client")
    topo = api.get(f"/api/wan/{wan['id']}/topology").get_json()
    assert {n["name"]: n["cgnat"] for n in topo["nodes"]} == {"hq": False, "a": True, "b": True}
    edges = {(e["a"], e["b"]): e["via"] for e in topo["edges"]}
    assert edges[(hq["id"], a["id"])] is None and edges[(hq["id"], b["id"])] is None
    assert edges[(a["id"], b["id"])] == hq["id"]


def test_unreachable_overlap_shown_in_conflicts_panel(api, admin_browser, wan):
    a = add(api, wan, "a", endpoint="203.0.113.1")
    b = add(api, wan, "b", endpoint="198.51.100.7")
    api.post(f"/api/peers/{a['id']}/subnets", json={"cidr": "192.168.1.0/24", "routed": False})
    api.post(f"/api/peers/{b['id']}/subnets", json={"cidr": "192.168.1.0/24"})
    page = admin_browser.get(f"/wans/{wan['id']}").get_data(as_text=True)
    assert "unreachable" in page and "192.168.1.0/24 of peer &#39;b&#39; is unreachable from &#39;a&#39;" in page
