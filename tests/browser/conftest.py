"""Browser tests: the real stack (`./run.sh`: migrations, gunicorn, an RQ worker, Redis) driven by
Debian's Chromium through Playwright for Python, with a simulated MikroTik in this process.

Chromium is the system's (`apt-get install chromium`; CHROMIUM_PATH overrides /usr/bin/chromium),
never one fetched by `playwright install`. Without it, or without Playwright, the tests are skipped
(under CI=true, where .ci/run installs Chromium, such a skip fails the run: see tests/ci_skips.py).
Screenshots go to test-output/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ports import free_port
from tests.routeros_sim.server import SimRouter

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROUTER_PASSWORD = "router-pw"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """Launch options (the pytest-playwright fixture name): the system Chromium, headless."""
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="session")
def chromium(browser_type_launch_args: dict[str, Any]) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -r requirements-dev.txt)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**browser_type_launch_args)
        yield browser
        browser.close()


@dataclass
class Stack:
    url: str
    sim: SimRouter
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`./run.sh` on a free port with its own instance folder and queue, and one simulated router."""
    if not shutil.which("bash"):
        pytest.skip("needs bash to run ./run.sh")
    instance = tmp_path_factory.mktemp("browser-instance")
    port = free_port()
    env = {
        **os.environ,
        "WIREWAN_INSTANCE": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'wirewan.db'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_WORKERS": "2",
        "RQ_QUEUE": f"browser-{uuid.uuid4().hex[:8]}",
        # The simulator answers at once; the defaults are for real routers over real links.
        "WIREWAN_PROBE_SECONDS": "2",
        "WIREWAN_ROLLBACK_SECONDS": "60",
        "WIREWAN_ROUTER_CONNECT_TIMEOUT": "3",
        "WIREWAN_ROUTER_COMMAND_TIMEOUT": "5",
    }
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "ENCRYPTION_SALT", "TEST_DATABASE_URL"):
        env.pop(name, None)
    log = instance / "run.log"
    with SimRouter(user="admin", password=ROUTER_PASSWORD, auto_handshake=True) as sim, log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "run.sh")], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        running = Stack(f"http://127.0.0.1:{port}", sim, log)
        try:
            deadline = time.monotonic() + 120  # a fresh CI venv installs requirements.txt first
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"./run.sh exited with {proc.returncode}:\n{running.log_tail()}")
                try:
                    with urllib.request.urlopen(f"{running.url}/healthz", timeout=2) as resp:  # noqa: S310
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"WireWAN did not answer on {running.url}:\n{running.log_tail()}")
                time.sleep(0.2)
            yield running
        finally:
            # run.sh stops its children (gunicorn, the worker, its Redis) itself on TERM.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert sim.internal_errors == []


@pytest.fixture
def page(chromium: Any, stack: Stack) -> Iterator[Any]:
    width, height = VIEWPORTS["desktop"]
    context = chromium.new_context(
        viewport={"width": width, "height": height}, base_url=stack.url, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS
