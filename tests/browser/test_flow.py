"""The operator's first hour, in a real browser against the real stack (see conftest.py).

Register the first admin → create a WAN → add a hub, a server, a client and a MikroTik peer → type an
overlapping LAN and see the conflict under the field → switch to Client and see the callout → resolve
with Auto-NAT → download a .conf → add a peer and see the stale badge → download again, badge gone →
deploy to the simulated router and watch the job page reach done → open the topology page.
Then what issue 15 asked for: the header and stale banner update in place after "Get config", the
Auto-NAT box re-runs the live check, a client form without router-only fields, copy buttons, the masked
config preview, the audit log's tabs, the phone menu, and every page in light and dark mode.
Each key page is saved at 1280×800 and 390×844, light and dark, under test-output/screenshots/.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROUTER_PASSWORD, VIEWPORTS, Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "admin@example.com"
PASSWORD = "correct-horse-battery"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"


class Shots:
    """Full-page screenshots at both viewports, light and dark; each also checks the page does not
    overflow sideways and that dark mode (prefers-color-scheme) really darkens it."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, name: str) -> None:
        for scheme in ("light", "dark"):
            self.page.emulate_media(color_scheme=scheme)
            background = self.page.evaluate(BACKGROUND)
            assert (background == "rgb(14, 20, 28)") == (scheme == "dark"), (name, scheme, background)
            for label, (width, height) in VIEWPORTS.items():
                self.page.set_viewport_size({"width": width, "height": height})
                overflow = self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name} at {width}px is {overflow}px wider than the screen"
                path = self.folder / f"{name}-{label}-{scheme}-{width}x{height}.png"
                self.page.screenshot(path=str(path), full_page=True)
                self.taken.append(path)
        self.page.emulate_media(color_scheme="light")
        width, height = VIEWPORTS["desktop"]
        self.page.set_viewport_size({"width": width, "height": height})

    def phone(self) -> None:
        self.page.set_viewport_size(dict(zip(("width", "height"), VIEWPORTS["phone"], strict=True)))

    def desktop(self) -> None:
        self.page.set_viewport_size(dict(zip(("width", "height"), VIEWPORTS["desktop"], strict=True)))


def add_peer(page: Any, wan_url: str, name: str, kind: str = "server", **fields: Any) -> int:
    page.goto(f"{wan_url}/peers/new")
    page.fill("#name", name)
    page.select_option("#kind", kind)
    if fields.pop("hub", False):
        page.check("#is_hub")
    for field, value in fields.items():
        page.fill(f"#{field}", str(value))
    page.get_by_role("button", name="Add peer").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Peer '{name}' added")
    match = re.search(r"/peers/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))


def download_config(page: Any, button: str, filename: str = "") -> str:
    with page.expect_download() as info:
        page.get_by_role("button", name=button).first.click()
    download = info.value
    assert download.suggested_filename.endswith(".conf")
    if filename:
        assert download.suggested_filename == filename
    return Path(download.path()).read_text()


def test_first_hour(page: Any, stack: Stack, screenshots: Path) -> None:
    shot = Shots(page, screenshots)

    # --- the first admin ---------------------------------------------------------------------------
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/register$"))
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Create admin account").click()
    expect(page.locator(".flash-success")).to_contain_text("You are the admin")
    # Empty states say what will appear and how to start.
    expect(page.locator("#dashboard")).to_contain_text("No WANs yet")
    expect(page.locator("#last-jobs")).to_contain_text("No jobs yet")
    shot("dashboard-empty")
    # A favicon, and on a phone a top bar of one row whose menu opens the navigation.
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")
    shot.phone()
    bar = page.locator("header.topbar")
    assert bar.bounding_box()["height"] < 60
    expect(page.locator("#main-nav")).to_be_hidden()
    page.locator("label.nav-toggle-label").click()
    expect(page.locator("#main-nav")).to_be_visible()
    expect(page.locator("#main-nav").get_by_role("link", name="Jobs")).to_be_visible()
    page.locator("label.nav-toggle-label").click()
    expect(page.locator("#main-nav")).to_be_hidden()
    shot.desktop()
    expect(page.locator("#main-nav")).to_be_visible()

    # --- a WAN and four peers ----------------------------------------------------------------------
    page.get_by_role("link", name="New WAN").first.click()
    page.fill("#name", "lab")
    page.select_option("#topology", "hybrid")
    page.get_by_role("button", name="Create WAN").click()
    expect(page.locator("h1")).to_have_text("lab")
    wan_url = page.url
    expect(page.locator("#peers-table")).to_contain_text("No peers yet")
    shot("wan-empty")

    add_peer(page, wan_url, "hub", hub=True, endpoint="hub.example.net")
    vps = add_peer(page, wan_url, "vps", endpoint="203.0.113.10", subnet="10.20.0.0/16")
    add_peer(page, wan_url, "laptop", kind="client")
    host, port = stack.sim.address
    office = add_peer(
        page,
        wan_url,
        "office",
        kind="mikrotik",
        endpoint="198.51.100.7",
        subnet="192.168.88.0/24",
        mikrotik_host=host,
        mikrotik_port=port,
        mikrotik_username="admin",
        mikrotik_password=ROUTER_PASSWORD,
    )

    # --- a refused form: every error at once, every value kept, the password's absence explained ------
    page.goto(f"{wan_url}/peers/new")
    # The Name hint tells which file name a download gets: the interface wg-quick will create.
    hint = page.locator(".hint", has_text="The downloaded file is").inner_text()
    conf_name = re.search(r"The downloaded file is (\S+\.conf)", hint).group(1)
    assert "wg-quick names the interface it creates after the file" in hint
    page.fill("#name", "bad name!")
    page.select_option("#kind", "mikrotik")
    page.fill("#endpoint", "vpn.example.com:99999")
    page.fill("#mikrotik_host", "192.168.88.1")
    page.fill("#mikrotik_password", "s3cret-router-pw")
    page.get_by_role("button", name="Add peer").click()
    expect(page.locator("#name-messages .error")).to_be_visible()
    errors = page.locator("div.error")
    expect(errors.nth(1)).to_be_visible()  # all at once, not one per submit
    expect(page.locator("#endpoint")).to_have_value("vpn.example.com:99999")
    expect(page.locator("#mikrotik_host")).to_have_value("192.168.88.1")
    expect(page.locator("#mikrotik_password")).to_have_value("")
    expect(page.locator("main")).to_contain_text("type it again here")
    shot("peer-form-errors")

    # --- an overlapping LAN: the conflict under the field, the client callout, Auto-NAT ------------
    page.goto(f"{wan_url}/peers/new")
    page.fill("#name", "branch")
    page.locator("#subnet").press_sequentially("192.168.88.0/24", delay=5)
    conflict = page.locator("#subnet-messages .error")
    expect(conflict).to_contain_text("overlaps 192.168.88.0/24 of peer 'office'")
    expect(conflict).to_contain_text("Auto-NAT")
    shot("peer-form-conflict")

    page.select_option("#kind", "client")
    callout = page.locator("#client-callout")
    expect(callout).to_be_visible()
    expect(callout).to_contain_text("reaches every routed LAN")
    expect(callout).not_to_contain_text("below")
    # A phone needs no hub role, endpoint, listen port, port-forward or "routed".
    for field in ("#is_hub", "#endpoint", "#listen_port", "#has_port_forward", "#subnet_routed"):
        expect(page.locator(field)).to_be_hidden()
    expect(page.locator("#tunnel_ip")).to_be_visible()
    shot("peer-form-client-callout")
    shot.phone()
    kind_box = page.locator("#kind").bounding_box()
    assert kind_box["x"] + kind_box["width"] <= VIEWPORTS["phone"][0], "the Type select is cut off"
    shot.desktop()
    page.select_option("#kind", "server")
    expect(callout).to_have_count(0)
    expect(page.locator("#endpoint")).to_be_visible()

    # Ticking Auto-NAT re-runs the live check at once: no need to type in the field again.
    page.check("#subnet_auto_nat")
    expect(page.locator("#subnet-messages .warning")).to_contain_text("other peers will reach it as 172.16.0.0/24")
    expect(page.locator("#subnet-messages .error")).to_have_count(0)
    shot("peer-form-auto-nat")
    page.get_by_role("button", name="Add peer").click()
    expect(page.locator(".flash-success")).to_contain_text("Peer 'branch' added")
    expect(page.locator("#subnets")).to_contain_text("172.16.0.0/24")

    # --- a .conf, then a new peer makes it stale, a new download clears it ---------------------------
    page.goto(f"/peers/{vps}")
    expect(page.locator("#stale-banner")).to_contain_text("Config not applied yet")
    expect(page.locator("h1 .badge-new")).to_have_text("Not applied")
    # The config preview, private key masked; the public key's copy button.
    page.locator("#config-preview summary").click()
    expect(page.locator("#config-preview-text")).to_contain_text("PrivateKey = <hidden>")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator('button[data-copy-target="#public-key"]')
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == page.locator("#public-key").inner_text()
    shot("peer-preview")
    # "Get config" updates the header and the banner in place: no reload.
    assert "[Interface]" in download_config(page, "Get config", conf_name)
    expect(page.locator(".banner-stale")).to_have_count(0)
    expect(page.locator("h1 .badge-new")).to_have_count(0)
    page.reload()
    expect(page.locator(".banner-stale")).to_have_count(0)

    add_peer(page, wan_url, "phone", kind="client")
    page.goto(f"/peers/{vps}")
    expect(page.locator("#stale-banner")).to_contain_text("Config stale")
    expect(page.locator("h1 .badge-stale")).to_have_text("Config stale")
    expect(page.locator("#stale-banner pre.diff")).to_contain_text("+[Peer]")
    shot("peer-stale")
    assert "[Interface]" in download_config(page, "Get updated config")
    expect(page.locator(".banner-stale")).to_have_count(0)
    expect(page.locator("h1 .badge-stale")).to_have_count(0)

    # A client's page keeps "Add network" and "Publish service" under Advanced.
    page.goto(wan_url)
    page.locator("#peers-table").get_by_role("link", name="phone").click()
    expect(page.get_by_role("button", name="Add network")).to_be_hidden()
    expect(page.get_by_role("button", name="Publish")).to_be_hidden()
    page.locator("#subnet-advanced summary").click()
    expect(page.get_by_role("button", name="Add network")).to_be_visible()
    shot("peer-client")

    page.goto(wan_url)
    expect(page.locator("#peers-table tbody tr")).to_have_count(6)
    # branch is NATed, office is not: the page says which prefix is unreachable from whom, and the fix.
    unreachable = page.locator("#conflicts .conflict-list li", has_text="unreachable from 'branch'")
    expect(unreachable).to_contain_text("Auto-NAT 192.168.88.0/24 on 'office' too")
    shot("wan")
    # Doing what it says leaves no conflict to report.
    page.goto(f"/peers/{office}")
    page.locator("#subnets").get_by_role("button", name="Auto-NAT").click()
    expect(page.locator("#subnets")).to_contain_text("NAT off")
    page.goto(wan_url)
    expect(page.locator("#conflicts")).to_contain_text(
        "No conflicts: every routed LAN is reachable by a unique prefix."
    )
    expect(page.locator("#conflicts .conflict-list")).to_have_count(0)
    shot("wan-no-conflict")

    # --- deploy to the simulated router through the queue -------------------------------------------
    page.goto(f"/peers/{office}")
    router = page.locator("#router")
    expect(router.locator(".router-sync")).to_have_text("not deployed")
    router.get_by_role("button", name="Test connection").click()
    expect(page.locator("#router-job")).to_contain_text("Connected: RouterOS", timeout=30_000)
    router.get_by_role("button", name="Preflight").click()
    deploy = router.get_by_role("button", name=re.compile(r"^Deploy approved plan \(\d+ changes?\)$"))
    expect(deploy).to_be_visible(timeout=30_000)
    deploy.click()
    expect(page.locator("#router-job .job-status-head")).to_contain_text("Deploy")
    job_link = page.locator("#router-job .job-status-head a", has_text="job #")
    expect(job_link).to_be_visible()
    job_link.click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("h1")).to_contain_text("Deploy")
    status = page.locator(".job-status").first
    expect(status.locator(".badge-job-succeeded")).to_be_visible(timeout=45_000)
    expect(status.locator("progress.job-progress")).to_have_attribute("value", "100")
    expect(page.locator(".job-no-worker")).to_have_count(0)  # a worker runs: never "No worker is running"
    shot("job-done")
    assert any(r.get("comment", "").startswith("WAN-Overlay-Manager:") for r in stack.sim.rows("/interface/wireguard"))

    page.goto(f"/peers/{office}")
    expect(page.locator("#router .router-sync")).to_have_text("in sync")

    # --- the audit log: actions apart from router calls, credited to the admin who clicked -----------------
    page.goto(wan_url)
    page.get_by_role("link", name="Audit log").click()
    actions = page.locator(".audit-table")
    expect(actions).to_contain_text("Test connection of router 'office' requested")
    expect(actions).to_contain_text("Preflight of router 'office' requested")
    expect(actions).to_contain_text("Deploy of router 'office' requested")
    expect(actions.locator("tbody tr", has_text="Deploy of router").first).to_contain_text(EMAIL)
    expect(actions).not_to_contain_text("router-call")
    shot("audit-actions")
    page.get_by_role("link", name=re.compile(r"^Router calls")).click()
    expect(page.locator(".audit-table tbody tr").first).to_contain_text(EMAIL)
    expect(page.locator(".audit-table")).to_contain_text("/interface/wireguard")
    shot("audit-router-calls")

    # --- jobs and users on a phone: dates and the role select are not squeezed -------------------------
    page.goto("/jobs")
    shot.phone()
    clipped = page.evaluate(
        "() => [...document.querySelectorAll('.job-table td.when')].filter(td => td.scrollWidth > td.clientWidth).length"
    )
    assert clipped == 0
    # Nor does the card clip the table (its wrapper would scroll sideways).
    wrap = page.evaluate(
        "() => { const w = document.querySelector('#job-table'); return w.scrollWidth - w.clientWidth; }"
    )
    assert wrap <= 1, f"the jobs table is {wrap}px wider than its card"
    shot.desktop()
    shot("jobs")
    page.goto("/users/")
    shot.phone()
    assert page.locator(".users-table select").first.bounding_box()["width"] >= 100
    shot.desktop()
    shot("users")

    # --- the topology page ------------------------------------------------------------------------------
    page.goto(wan_url)
    page.get_by_role("link", name="Topology").click()
    expect(page).to_have_url(re.compile(r"/topology$"))
    svg = page.locator("#topology svg")
    expect(svg.locator("a.topo-node")).to_have_count(6)
    expect(svg.locator(".topo-relayed").first).to_be_visible()
    expect(svg.locator("text.topo-via").first).to_have_text("via hub")
    expect(svg.locator(".topo-nat", has_text="as 172.16.0.0/24")).to_have_count(1)
    shot("topology")
    svg.locator(f'a.topo-node[data-peer-id="{office}"]').click()
    expect(page).to_have_url(re.compile(rf"/peers/{office}$"))

    # --- the dashboard: one vocabulary, and each count counts what its words say ---------------------------
    # A new peer makes vps (applied) and office (deployed) stale; it has never applied a config itself.
    add_peer(page, wan_url, "tablet", kind="client")
    page.goto(f"/peers/{office}")
    expect(page.locator("#router .router-sync")).to_have_text("changes pending")
    # "All configs (.zip)" carries every .conf and the router's .rsc, and marks nothing applied.
    page.goto(wan_url)
    with page.expect_download() as info:
        page.get_by_role("button", name="All configs (.zip)").click()
    with zipfile.ZipFile(info.value.path()) as archive:
        names = archive.namelist()
    assert "office.rsc" in names and sum(n.endswith(".conf") for n in names) == 6, names
    page.reload()
    expect(page.locator("#peers-table .badge-stale")).to_have_count(2)
    expect(page.locator("#peers-table .badge-new")).to_have_count(5)
    page.goto("/")
    row = page.locator("#dashboard tbody tr").first
    expect(row).to_contain_text("lab")
    # hub, laptop, branch, phone, tablet never applied; vps and office applied an older config.
    expect(page.locator("#total-not-applied")).to_have_text(re.compile(r"^\s*5\s*peers not applied\s*$"))
    expect(page.locator("#total-stale")).to_have_text(re.compile(r"^\s*2\s*peers stale\s*$"))
    expect(page.locator("#total-routers-pending")).to_have_text(re.compile(r"^\s*1\s*router with changes pending\s*$"))
    expect(page.locator("#dashboard-words")).to_contain_text("not applied when it never downloaded or deployed one")
    expect(page.locator("main")).not_to_contain_text("deploys pending")
    expect(page.locator("main")).not_to_contain_text("stale configs")
    expect(page.locator("#last-jobs tbody tr").first).to_contain_text("Deploy")
    shot("dashboard")

    # "Mark all applied" is the separate, explicit action that does the marking.
    page.goto(wan_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Mark all applied").click()
    expect(page.locator("#peers-table .badge-stale")).to_have_count(0)
    expect(page.locator("#peers-table .badge-new")).to_have_count(0)

    # --- beyond 60 spokes the topology clusters them by kind, and says so in the picture ----------------
    page.goto("/wans/new")
    page.fill("#name", "fleet")
    page.select_option("#topology", "hub_spoke")
    page.get_by_role("button", name="Create WAN").click()
    expect(page.locator("h1")).to_have_text("fleet")
    fleet_url = page.url
    add_peer(page, fleet_url, "hq", hub=True, endpoint="hq.example.net")
    page.goto(f"{fleet_url}/import-peers")
    page.fill(
        'textarea[name="csv"]', "name,kind,endpoint,lans\n" + "\n".join(f"phone-{i:02d},client,," for i in range(70))
    )
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Create 70 peers").click()
    page.goto(f"{fleet_url}/topology")
    svg = page.locator("#topology svg")
    cluster = svg.locator('a.topo-cluster[data-cluster="client"]')
    expect(cluster).to_have_count(1)
    expect(cluster.locator("text.topo-name")).to_have_text("70 clients")
    expect(svg.locator("a.topo-node[data-peer-id]")).to_have_count(1)  # the hub stays itself
    expect(svg.locator("text.topo-caption")).to_have_text("70 spokes clustered by kind · the WAN page lists every peer")
    expect(page.locator("#topo-clustered")).to_contain_text("draw every peer")
    shot("topology-clustered")
    cluster.click()
    expect(page).to_have_url(re.compile(r"/wans/\d+\?kind=client$"))
    expect(page.locator("#peers-table tbody tr")).to_have_count(50)  # the first page of the 70

    assert len(shot.taken) == 4 * 19 and all(p.stat().st_size > 5_000 for p in shot.taken)
