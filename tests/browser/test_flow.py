"""The operator's first hour, in a real browser against the real stack (see conftest.py).

Register the first admin → create a WAN → add a hub, a server, a client and a MikroTik peer → type an
overlapping LAN and see the conflict under the field → switch to Client and see the callout → resolve
with Auto-NAT → download a .conf → add a peer and see the stale badge → download again, badge gone →
deploy to the simulated router and watch the job page reach done → open the topology page.
Each key page is saved at 1280×800 and 390×844 under test-output/screenshots/.
"""

from __future__ import annotations

import re
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


class Shots:
    """Full-page screenshots at both viewports; each also checks the page does not overflow sideways."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, name: str) -> None:
        for label, (width, height) in VIEWPORTS.items():
            self.page.set_viewport_size({"width": width, "height": height})
            overflow = self.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} at {width}px is {overflow}px wider than the screen"
            path = self.folder / f"{name}-{label}-{width}x{height}.png"
            self.page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        width, height = VIEWPORTS["desktop"]
        self.page.set_viewport_size({"width": width, "height": height})


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


def download_config(page: Any, button: str) -> str:
    with page.expect_download() as info:
        page.get_by_role("button", name=button).first.click()
    download = info.value
    assert download.suggested_filename.endswith(".conf")
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

    # --- a WAN and four peers ----------------------------------------------------------------------
    page.get_by_role("link", name="New WAN").first.click()
    page.fill("#name", "lab")
    page.select_option("#topology", "hybrid")
    page.get_by_role("button", name="Create WAN").click()
    expect(page.locator("h1")).to_have_text("lab")
    wan_url = page.url

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
    shot("peer-form-client-callout")
    page.select_option("#kind", "server")
    expect(callout).to_have_count(0)

    page.check("#subnet_auto_nat")
    page.fill("#subnet", "")
    page.locator("#subnet").press_sequentially("192.168.88.0/24", delay=5)
    expect(page.locator("#subnet-messages .warning")).to_contain_text("other peers will reach it as 172.16.0.0/24")
    expect(page.locator("#subnet-messages .error")).to_have_count(0)
    page.get_by_role("button", name="Add peer").click()
    expect(page.locator(".flash-success")).to_contain_text("Peer 'branch' added")
    expect(page.locator("#subnets")).to_contain_text("172.16.0.0/24")

    # --- a .conf, then a new peer makes it stale, a new download clears it ---------------------------
    page.goto(f"/peers/{vps}")
    expect(page.locator("#stale-banner")).to_contain_text("Config not applied yet")
    assert "[Interface]" in download_config(page, "Get config")
    page.reload()
    expect(page.locator(".banner-stale")).to_have_count(0)

    add_peer(page, wan_url, "phone", kind="client")
    page.goto(f"/peers/{vps}")
    expect(page.locator("#stale-banner")).to_contain_text("Config stale")
    expect(page.locator("h1 .badge-stale")).to_have_text("Config stale")
    expect(page.locator("#stale-banner pre.diff")).to_contain_text("+[Peer]")
    shot("peer-stale")
    assert "[Interface]" in download_config(page, "Get updated config")
    page.reload()
    expect(page.locator(".banner-stale")).to_have_count(0)
    expect(page.locator("h1 .badge-stale")).to_have_count(0)

    page.goto(wan_url)
    expect(page.locator("#peers-table tbody tr")).to_have_count(6)
    shot("wan")

    # --- deploy to the simulated router through the queue -------------------------------------------
    page.goto(f"/peers/{office}")
    router = page.locator("#router")
    router.get_by_role("button", name="Preflight").click()
    deploy = router.get_by_role("button", name=re.compile(r"^Deploy approved plan \(\d+ changes?\)$"))
    expect(deploy).to_be_visible(timeout=30_000)
    deploy.click()
    job_link = page.locator("#router-job .job-status-head a", has_text="job #")
    expect(job_link).to_be_visible()
    job_link.click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("h1")).to_contain_text("Deploy")
    status = page.locator(".job-status").first
    expect(status.locator(".badge-job-succeeded")).to_be_visible(timeout=45_000)
    expect(status.locator("progress.job-progress")).to_have_attribute("value", "100")
    shot("job-done")
    assert any(r.get("comment", "").startswith("WAN-Overlay-Manager:") for r in stack.sim.rows("/interface/wireguard"))

    page.goto(f"/peers/{office}")
    expect(page.locator("#router .router-state")).to_contain_text("deployed config is current")

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

    # --- the dashboard -----------------------------------------------------------------------------------
    page.goto("/")
    row = page.locator("#dashboard tbody tr").first
    expect(row).to_contain_text("lab")
    expect(page.locator("#last-jobs tbody tr").first).to_contain_text("Deploy")
    shot("dashboard")

    assert len(shot.taken) == 14 and all(p.stat().st_size > 5_000 for p in shot.taken)
