"""Job progress a person can read: "queued" (not "waiting for a worker") until a worker takes the
job, "No worker is running" only when RQ sees no worker heartbeat on the queue, and the peer page's
state refreshed in place after a config download."""

from __future__ import annotations

import os
import re
from typing import Any

from redis import Redis
from rq import Queue, Worker


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def test_a_queued_job_says_no_worker_only_when_none_listens(app: Any, operator_browser: Any, router_wan: Any) -> None:
    router_id = router_wan["router"]["id"]
    resp = operator_browser.post(f"/peers/{router_id}/router/test-connection")
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    status = text(operator_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"}))
    assert "queued" in status and "waiting for a worker" not in status
    assert "No worker is running" in status and "rq worker" in status
    # A worker with a live heartbeat on the queue: the job is simply queued.
    redis = Redis.from_url(os.environ["REDIS_URL"])
    worker = Worker([Queue(app.config["RQ_QUEUE"], connection=redis)], connection=redis)
    worker.register_birth()
    try:
        status = text(operator_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"}))
        assert "queued" in status and "No worker is running" not in status
        page = text(operator_browser.get(f"/jobs/{job_id}"))
        assert "No worker is running" not in page
    finally:
        worker.register_death()
        redis.close()


def test_get_config_refreshes_the_header_and_the_stale_banner(admin_browser: Any, router_wan: Any) -> None:
    server_id = router_wan["server"]["id"]
    page = text(admin_browser.get(f"/peers/{server_id}"))
    state = re.search(r'<span id="peer-state"[^>]*>', page).group(0)
    assert f'hx-get="/peers/{server_id}/state"' in state and 'hx-trigger="config-applied from:body"' in state
    assert "Not applied" in page and '<section class="card banner-stale" id="stale-banner">' in page
    assert re.search(rf'<form method="post" action="/peers/{server_id}/config" class="inline" data-download>', page)
    download = admin_browser.post(f"/peers/{server_id}/config")
    assert download.headers["HX-Trigger"] == "config-applied"
    fragment = text(admin_browser.get(f"/peers/{server_id}/state", headers={"HX-Request": "true"}))
    assert "Not applied" not in fragment and "Config stale" not in fragment
    assert '<div id="stale-banner" hx-swap-oob="true"></div>' in fragment
