"""The strict Content-Security-Policy in a real browser (issue 11): pages, htmx, the confirm prompts,
the router form's script and Swagger UI all work with no inline script or style, and the browser
reports no violation. The app runs in this process (no worker needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import make_user


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    make_user(app, "admin@example.com", "admin")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_pages_work_under_the_csp_without_violations(chromium: Any, served: str) -> None:
    context = chromium.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{served}/login")
    page.fill("#email", "admin@example.com")
    page.fill("#password", "correct-horse")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("htmx.config.allowEval === false && htmx.config.allowScriptTags === false")

    # post_button's confirm is static/app.js now: dismissing it keeps the token.
    page.goto(f"{served}/account")
    page.fill("#tok-name", "script")
    page.click("text=Create token")
    page.wait_for_load_state("networkidle")
    questions: list[str] = []
    page.on("dialog", lambda d: (questions.append(d.message), d.dismiss()))
    page.click("text=Revoke")
    page.wait_for_timeout(300)
    assert questions == ["Revoke token script? Scripts using it stop working."]
    assert page.locator("text=Revoke").count() == 1

    # The router form: TLS picks 8729 unless a port was typed; the plaintext warning follows TLS.
    page.goto(f"{served}/wans/new")
    page.fill("#name", "acme")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(page.url + "/peers/new?kind=mikrotik")
    warning = page.locator("#plaintext-api-warning")
    assert warning.is_visible() and page.input_value("#mikrotik_port") == ""
    page.check("#mikrotik_use_tls")
    assert not warning.is_visible() and page.input_value("#mikrotik_port") == "8729"
    page.uncheck("#mikrotik_use_tls")
    assert page.input_value("#mikrotik_port") == "8728"
    page.fill("#mikrotik_port", "9000")
    page.check("#mikrotik_use_tls")
    assert page.input_value("#mikrotik_port") == "9000"

    page.goto(f"{served}/api/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    context.close()
    violations = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
    assert violations == []
