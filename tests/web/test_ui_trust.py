"""Issue 15 on the server side: what each page carries so that a person can trust it (copy buttons,
a masked config preview, clients' pages without router-only fields, the Auto-NAT re-check, the icon
and the dark-mode sheet), all without an inline script, style or event handler."""

from __future__ import annotations

import re

from tests.web.test_pages_network import add_peer, wan_id  # noqa: F401 — the fixture

INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.I)


def body(resp) -> str:
    return resp.get_data(as_text=True)


def test_every_page_links_the_icon_the_sheets_and_the_copy_module(admin_browser, wan_id):  # noqa: F811
    page = body(admin_browser.get(f"/wans/{wan_id}"))
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    assert 'href="/static/ui.css"' in page and '<script src="/static/ui.js" defer>' in page
    assert '<label for="nav-toggle" class="nav-toggle-label">Menu</label>' in page
    for name in ("favicon.svg", "ui.css", "ui.js"):
        resp = admin_browser.get(f"/static/{name}")
        text = body(resp)
        resp.close()
        assert resp.status_code == 200 and text
        if name == "ui.css":
            assert "@media (prefers-color-scheme: dark)" in text


def test_peer_page_previews_its_config_with_the_private_key_masked(admin_browser, wan_id):  # noqa: F811
    assert add_peer(admin_browser, wan_id, endpoint="203.0.113.1").status_code == 303
    page = body(admin_browser.get("/peers/1"))
    preview = page[page.index('id="config-preview-text"') :]
    preview = preview[: preview.index("</pre>")]
    assert "[Interface]" in preview and "PrivateKey = &lt;hidden&gt;" in preview
    assert re.search(r"PrivateKey = [A-Za-z0-9+/]{43}=", page) is None
    assert 'data-copy-target="#public-key"' in page and '<code id="public-key">' in page
    assert INLINE.search(page) is None


def test_a_client_form_hides_what_a_phone_does_not_need(admin_browser, wan_id):  # noqa: F811
    form = body(admin_browser.get(f"/wans/{wan_id}/peers/new"))
    hidden = form[form.index('<div class="not-client">') :]
    for name in ("is_hub", "endpoint", "has_port_forward", "listen_port"):
        assert f'name="{name}"' in hidden[: hidden.index('</div>\n      <p class="hint client-only">')], name
    assert "wg-wan-overlay.conf whatever the peer&#39;s name" in form
    # Ticking Auto-NAT (or Routed) re-runs the live conflict check, as typing in the field does.
    auto_nat = re.search(r'<input[^>]*name="subnet_auto_nat"[^>]*>', form).group(0)
    assert 'hx-trigger="change"' in auto_nat and "/check/cidr" in auto_nat
    help_ = body(admin_browser.get(f"/wans/{wan_id}/peers/kind-help?kind=client"))
    assert "“Local networks” below" not in help_ and "“Local networks”" in help_


def test_a_client_page_offers_networks_and_services_only_under_advanced(admin_browser, wan_id):  # noqa: F811
    assert add_peer(admin_browser, wan_id, name="phone", kind="client").status_code == 303
    page = body(admin_browser.get("/peers/1"))
    assert re.search(r'<details class="advanced" id="subnet-advanced">\s*<summary>Advanced', page)
    assert re.search(r'<details class="advanced" id="service-advanced">\s*<summary>Advanced', page)
    assert page.index('id="subnet-advanced"') < page.index(">Add network</button>")
    auto_nat = re.search(r'<input[^>]*name="auto_nat"[^>]*>', page).group(0)
    assert 'hx-trigger="change"' in auto_nat
    assert add_peer(admin_browser, wan_id, name="gw", endpoint="203.0.113.9").status_code == 303
    server = body(admin_browser.get("/peers/2"))
    assert 'id="subnet-advanced"' not in server and ">Add network</button>" in server


def test_new_token_and_qr_config_have_copy_buttons(admin_browser, wan_id):  # noqa: F811
    page = body(admin_browser.post("/account/tokens", {"tok-name": "ci"}))
    assert 'data-copy-target="#new-token pre.token"' in page
    assert add_peer(admin_browser, wan_id, name="phone", kind="client").status_code == 303
    qr = body(admin_browser.post("/peers/1/qr"))
    assert 'data-copy-target="#config-text"' in qr and "[Interface]" in qr


def test_a_refused_form_lists_every_error_keeps_values_and_explains_the_password(admin_browser, wan_id):  # noqa: F811
    resp = add_peer(
        admin_browser,
        wan_id,
        name="bad name!",
        kind="mikrotik",
        endpoint="vpn.example.com:99999",
        listen_port="70000",
        mikrotik_host="192.168.88.1",
        mikrotik_password="s3cret-router-pw",
    )
    assert resp.status_code == 422
    page = body(resp)
    errors = re.findall(r'<div class="error">([^<]*)</div>', page)
    assert len(errors) >= 2, errors  # all at once, not one per submit
    assert 'value="vpn.example.com:99999"' in page and 'value="192.168.88.1"' in page
    assert "s3cret-router-pw" not in page and "type it again here" in page


def test_masking_hides_every_secret_of_a_routeros_script() -> None:
    from app.services.configs import masked

    script = (
        '/interface wireguard add name=wg private-key="cHJpdmF0ZQ==" listen-port=51820\n'
        '/interface wireguard peers add public-key="cHVibGlj" preshared-key="cHNr+/=" allowed-address=10.0.0.1/32\n'
        '/user add name=wirewan password="hunter2"\n'
    )
    out = masked(script)
    assert "cHJpdmF0ZQ==" not in out and "cHNr" not in out and "hunter2" not in out
    assert 'public-key="cHVibGlj"' in out and "listen-port=51820" in out and "allowed-address=10.0.0.1/32" in out


def test_every_list_says_what_will_appear_when_it_is_empty(admin_browser):
    """Empty states everywhere: a fresh install, then a WAN with one phone and nothing else."""
    from tests.web.test_pages_network import WAN_FORM

    assert "No WANs yet" in body(admin_browser.get("/wans/"))
    wan = int(admin_browser.post("/wans/new", WAN_FORM).headers["Location"].rsplit("/", 1)[1])
    pages = {
        f"/wans/{wan}": "No peers yet. Start with a peer that has a public endpoint",
        f"/wans/{wan}/topology": "No peers yet.",
        f"/wans/{wan}/audit?kind=router": "No router calls yet",
        "/jobs/": "No jobs yet: they appear when someone tests, preflights or deploys a MikroTik peer",
        "/settings/webhooks": "No webhooks yet.",
        "/account": "No tokens yet.",
    }
    for url, empty in pages.items():
        resp = admin_browser.get(url)
        assert resp.status_code == 200 and empty in body(resp), url
    assert add_peer(admin_browser, wan, name="phone", kind="client").status_code == 303
    peer = re.search(r'href="/peers/(\d+)">phone<', body(admin_browser.get(f"/wans/{wan}"))).group(1)
    page = body(admin_browser.get(f"/peers/{peer}"))
    assert "None: this peer hosts no LAN (usual for a laptop or phone)." in page and "None published." in page
    assert "Nothing deployed" not in page  # a phone has no router section at all
