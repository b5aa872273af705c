"""WAN and peer pages: full page vs fragment, 303 after POST, messages under fields, viewers read-only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Peer, Subnet, Wan

WAN_FORM = {
    "name": "acme", "topology": "mesh", "tunnel_cidr": "10.0.0.0/24", "services_cidr": "10.0.5.0/24",
    "nat_pool_cidr": "172.16.0.0/12", "interface_name": "wg-wan-overlay", "listen_port": "51820",
    "keepalive": "25", "mtu": "1420", "mgmt_cidrs": "", "dns": "",
}  # fmt: skip


def errors(resp) -> list[str]:
    from html import unescape

    return [unescape(m) for m in re.findall(r'<div class="error">([^<]*)</div>', resp.get_data(as_text=True))]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


@pytest.fixture
def wan_id(admin_browser) -> int:
    resp = admin_browser.post("/wans/new", WAN_FORM)
    assert resp.status_code == 303
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def add_peer(browser, wan_id: int, **fields) -> object:
    data = {
        "name": "hq",
        "kind": "server",
        "endpoint": "",
        "listen_port": "51820",
        "subnet_routed": "y",
        **fields,
    }
    return browser.post(f"/wans/{wan_id}/peers/new", data)


def test_create_wan_redirects_to_its_page(admin_browser, wan_id):
    page = admin_browser.get(f"/wans/{wan_id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>acme</h1>" in body and "10.0.0.0/24" in body
    assert "No conflicts" in body


def test_wan_form_shows_every_message_and_saves_nothing(app, admin_browser):
    resp = admin_browser.post(
        "/wans/new",
        {**WAN_FORM, "tunnel_cidr": "10.0.0.5/24", "listen_port": "70000", "interface_name": "wg\nx"},
    )
    assert resp.status_code == 422
    assert errors(resp) == [
        "Interface name contains a control or invisible character (such as a newline, tab or NUL); remove it.",
        "Default listen port must be a whole number from 1 to 65535.",
        "10.0.0.5/24 has host bits set; did you mean 10.0.0.0/24?",
    ]
    assert count(app, Wan) == 0


def test_duplicate_wan_name_is_refused(admin_browser, wan_id):
    resp = admin_browser.post("/wans/new", WAN_FORM)
    assert resp.status_code == 422
    assert errors(resp) == ["A WAN named 'acme' already exists; pick another name."]


def test_wan_page_and_fragment_from_one_url(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    full = admin_browser.get(f"/wans/{wan_id}")
    fragment = admin_browser.get(f"/wans/{wan_id}", headers={"HX-Request": "true"})
    assert "<html" in full.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="peers-table"' in body and ">hq</a>" in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_add_peer_allocates_and_shows_badges(app, admin_browser, wan_id):
    assert add_peer(admin_browser, wan_id, endpoint="203.0.113.1", is_hub="y").status_code == 303
    assert add_peer(admin_browser, wan_id, name="laptop", kind="client").status_code == 303
    body = admin_browser.get(f"/wans/{wan_id}").get_data(as_text=True)
    row_hq = body.split('id="peer-1"')[1].split("</tr>")[0]
    row_laptop = body.split('id="peer-2"')[1].split("</tr>")[0]
    assert "10.0.0.1" in row_hq and ">Hub<" in row_hq and "CGNAT" not in row_hq
    assert "10.0.0.2" in row_laptop and ">CGNAT<" in row_laptop


def test_peer_with_overlapping_lan_refused_then_auto_natted(app, admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1", subnet="192.168.1.0/24")
    resp = add_peer(admin_browser, wan_id, name="branch", endpoint="198.51.100.7", subnet="192.168.1.0/24")
    assert resp.status_code == 422
    assert errors(resp) == [
        "192.168.1.0/24 overlaps 192.168.1.0/24 of peer 'hq' (routed). Two routed LANs with overlapping "
        "addresses cannot both be reached by their real addresses: tick 'Auto-NAT if conflict' to publish "
        "this one under a free block of the NAT pool 172.16.0.0/12, or mark it not routed."
    ]
    assert count(app, Peer) == 1  # nothing half-saved: no peer without its subnet
    resp = add_peer(admin_browser, wan_id, name="branch", endpoint="198.51.100.7", subnet="192.168.1.0/24",
                    subnet_auto_nat="y")  # fmt: skip
    assert resp.status_code == 303
    with app.app_context():
        nat = db.session.scalar(select(Subnet.nat_cidr).where(Subnet.nat_cidr.is_not(None)))
    assert nat == "172.16.0.0/24"


def test_endpoint_guardrail_on_the_form(admin_browser, wan_id):
    resp = add_peer(admin_browser, wan_id, endpoint="203.0.113.1:51821")
    assert resp.status_code == 422
    assert errors(resp)[0].startswith("Endpoint port 51821 differs from listen port 51820.")
    assert add_peer(admin_browser, wan_id, endpoint="203.0.113.1:51821", has_port_forward="y").status_code == 303


def test_management_host_lockout_guardrail(admin_browser, wan_id):
    resp = add_peer(admin_browser, wan_id, kind="mikrotik", endpoint="203.0.113.1", mikrotik_host="10.0.0.77")
    assert resp.status_code == 422
    assert errors(resp)[0].startswith("Management host 10.0.0.77 is inside the WAN's tunnel range 10.0.0.0/24.")


def test_live_cidr_check_names_the_other_peer(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1", subnet="192.168.1.0/24")
    resp = admin_browser.get(f"/wans/{wan_id}/check/cidr?cidr=192.168.1.0/24&routed=y", headers={"HX-Request": "true"})
    assert "of peer 'hq'" in errors(resp)[0]
    resp = admin_browser.get(f"/wans/{wan_id}/check/cidr?cidr=192.168.1.0/24&routed=y&auto_nat=y")
    assert "other peers will reach it as 172.16.0.0/24 (Auto-NAT)" in resp.get_data(as_text=True)
    resp = admin_browser.get(f"/wans/{wan_id}/check/cidr?cidr=192.168.7.9/24&routed=y")
    assert errors(resp) == ["192.168.7.9/24 has host bits set; did you mean 192.168.7.0/24?"]
    resp = admin_browser.get(f"/wans/{wan_id}/check/cidr?cidr=192.168.2.0/24&routed=y")
    assert "does not conflict" in resp.get_data(as_text=True)


def test_live_endpoint_and_management_checks(admin_browser, wan_id):
    resp = admin_browser.get(f"/wans/{wan_id}/check/endpoint?endpoint=vpn.example.com:51999&listen_port=51820")
    assert errors(resp)[0].startswith("Endpoint port 51999 differs from listen port 51820.")
    resp = admin_browser.get(f"/wans/{wan_id}/check/endpoint?endpoint=&listen_port=51820")
    assert "behind CGNAT" in resp.get_data(as_text=True)
    resp = admin_browser.get(f"/wans/{wan_id}/check/mgmt-host?mikrotik_host=10.0.0.5")
    assert "tunnel range" in errors(resp)[0]
    resp = admin_browser.get(f"/wans/{wan_id}/check/mgmt-host?mikrotik_host=192.168.88.1")
    assert "192.168.88.1" in resp.get_data(as_text=True) and not errors(resp)


def test_peer_form_wires_live_checks_with_debounce(admin_browser, wan_id):
    body = admin_browser.get(f"/wans/{wan_id}/peers/new").get_data(as_text=True)
    for target in ("#endpoint-messages", "#subnet-messages", "#mikrotik_host-messages"):
        assert f'hx-target="{target}"' in body
    assert body.count('hx-trigger="input changed delay:400ms"') == 3


def test_client_callout(admin_browser, wan_id):
    resp = admin_browser.get(f"/wans/{wan_id}/peers/kind-help?kind=client", headers={"HX-Request": "true"})
    body = resp.get_data(as_text=True)
    assert "reaches every routed LAN" in body
    assert "this peer HOSTS the network" in body and "not “this peer can REACH it”" in body
    assert "hub-and-spoke" in body and "forward-chain firewall rules" in body
    server = admin_browser.get(f"/wans/{wan_id}/peers/kind-help?kind=server").get_data(as_text=True)
    assert "client-callout" not in server
    form = admin_browser.get(f"/wans/{wan_id}/peers/new?kind=client").get_data(as_text=True)
    assert "client-callout" in form and "A laptop almost never hosts a LAN; leave this empty." in form
    assert form.index("Only networks this peer HOSTS") < form.index('name="subnet"')


def test_subnet_added_with_htmx_returns_the_section(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    resp = admin_browser.post("/peers/1/subnets", {"cidr": "192.168.5.0/24", "routed": "y"}, htmx=True)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert body.startswith('\n<section class="card" id="subnets">') or 'id="subnets"' in body.split("\n", 3)[1]
    assert "<code>192.168.5.0/24</code>" in body and "hx-swap-oob" in body and "192.168.5.0/24 added." in body


def test_subnet_post_without_htmx_redirects(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    resp = admin_browser.post("/peers/1/subnets", {"cidr": "192.168.5.0/24", "routed": "y"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/peers/1"


def test_subnet_error_stays_under_the_field(app, admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    resp = admin_browser.post("/peers/1/subnets", {"cidr": "10.0.5.0/24", "routed": "y"}, htmx=True)
    assert resp.status_code == 422
    assert errors(resp)[0].startswith("10.0.5.0/24 overlaps the WAN's services range 10.0.5.0/24.")
    assert count(app, Subnet) == 0


def test_auto_nat_and_nat_off_buttons(app, admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1", subnet="192.168.1.0/24")
    add_peer(admin_browser, wan_id, name="b", endpoint="198.51.100.7", subnet="192.168.1.0/24", subnet_routed="")
    with app.app_context():
        sid = db.session.scalar(select(Subnet.id).where(Subnet.peer_id == 2))
    admin_browser.post(f"/peers/2/subnets/{sid}/auto-nat", htmx=True)
    resp = admin_browser.post(f"/peers/2/subnets/{sid}/routed", htmx=True)
    assert "<code>172.16.0.0/24</code>" in resp.get_data(as_text=True)
    resp = admin_browser.post(f"/peers/2/subnets/{sid}/nat-off", htmx=True)
    assert "overlaps 192.168.1.0/24 of peer &#39;hq&#39;" in resp.get_data(as_text=True)  # refused, flashed
    with app.app_context():
        assert db.session.get(Subnet, sid).nat_cidr == "172.16.0.0/24"


def test_service_published(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1", subnet="192.168.1.0/24")
    resp = admin_browser.post("/peers/1/services", {"name": "nas", "protocol": "tcp", "local_ip": "192.168.1.10",
                                                    "local_port": "443"}, htmx=True)  # fmt: skip
    assert "<code>10.0.5.1:443</code>" in resp.get_data(as_text=True)
    resp = admin_browser.post("/peers/1/services", {"name": "nas", "protocol": "tcp", "local_ip": "192.168.1.10",
                                                    "local_port": "443"}, htmx=True)  # fmt: skip
    assert resp.status_code == 422
    assert errors(resp) == ["Peer 'hq' already publishes a service named 'nas'."]


def test_delete_peer_with_htmx_navigates(app, admin_browser, wan_id):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    resp = admin_browser.post("/peers/1/delete", htmx=True)
    assert resp.headers["HX-Redirect"] == f"/wans/{wan_id}"
    assert count(app, Peer) == 0


def test_edit_peer_keeps_password_when_blank(app, admin_browser, wan_id):
    add_peer(admin_browser, wan_id, kind="mikrotik", endpoint="203.0.113.1", mikrotik_host="192.168.88.1",
             mikrotik_password="s3cret\"$[x]", mikrotik_username="wirewan", mikrotik_port="8728")  # fmt: skip
    with app.app_context():
        enc = db.session.get(Peer, 1).mt_password_enc
    page = admin_browser.get("/peers/1/edit").get_data(as_text=True)
    assert "s3cret" not in page  # write-only
    resp = admin_browser.post("/peers/1/edit", {"name": "hq2", "kind": "mikrotik", "endpoint": "203.0.113.1",
                                               "listen_port": "51820", "mikrotik_host": "192.168.88.1",
                                               "mikrotik_port": "8728", "mikrotik_username": "wirewan"})  # fmt: skip
    assert resp.status_code == 303
    with app.app_context():
        peer = db.session.get(Peer, 1)
        assert peer.name == "hq2" and peer.mt_password_enc == enc


def test_viewer_sees_pages_without_forms(app, admin_browser, wan_id, client):
    add_peer(admin_browser, wan_id, endpoint="203.0.113.1")
    from tests.conftest import Browser, make_user

    make_user(app, "viewer@example.com", "viewer")
    viewer = Browser(app.test_client())
    viewer.login("viewer@example.com", "correct-horse")
    for url in (f"/wans/{wan_id}", "/peers/1", "/wans/", f"/wans/{wan_id}/audit"):
        body = viewer.get(url).get_data(as_text=True)
        assert '<form method="post" action="/peers' not in body and "Add peer" not in body
    assert viewer.get(f"/wans/{wan_id}/peers/new").status_code == 403
    assert viewer.post(f"/wans/{wan_id}/peers/new", {"name": "x", "kind": "server"}).status_code == 403
    assert viewer.post("/peers/1/subnets", {"cidr": "192.168.9.0/24"}).status_code == 403
    assert viewer.post("/peers/1/delete").status_code == 403
    assert count(app, Peer) == 1


def test_audit_page_lists_changes_without_secrets(admin_browser, wan_id):
    add_peer(admin_browser, wan_id, kind="mikrotik", endpoint="203.0.113.1", mikrotik_host="192.168.88.1",
             mikrotik_password="hunter2-secret")  # fmt: skip
    body = admin_browser.get(f"/wans/{wan_id}/audit").get_data(as_text=True)
    assert "peer &#39;hq&#39; (mikrotik) added at 10.0.0.1" in body
    assert "WAN &#39;acme&#39; created" in body
    assert "hunter2-secret" not in body


def test_hostile_wan_name_is_escaped(admin_browser):
    resp = admin_browser.post("/wans/new", {**WAN_FORM, "name": "<script>alert(1)</script>"})
    assert resp.status_code == 303
    body = admin_browser.get(resp.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_dashboard_lists_wans_with_conflicts(admin_browser, wan_id):
    body = admin_browser.get("/").get_data(as_text=True)
    assert f'href="/wans/{wan_id}">acme</a>' in body
