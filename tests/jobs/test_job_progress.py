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


def test_a_job_reads_running_the_moment_a_worker_takes_it(
    app: Any, operator_browser: Any, run_jobs: Any, router_wan: Any
) -> None:
    from jobs import runtime

    router_id = router_wan["router"]["id"]
    job_id = int(operator_browser.post(f"/peers/{router_id}/router/verify").headers["Location"].rsplit("/", 1)[1])
    assert "badge-job-queued" in text(operator_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"}))
    # Inside the worker's wrapper, before the job has done anything: the page already says running.
    with runtime.tracked(job_id):
        status = text(operator_browser.get(f"/jobs/{job_id}/status", headers={"HX-Request": "true"}))
        assert "badge-job-running" in status and "badge-job-queued" not in status
        assert "No worker is running" not in status


def test_the_handshake_wait_counts_its_seconds_against_its_limit(
    app: Any, api: Any, run_jobs: Any, sim: Any, router_wan: Any, monkeypatch: Any
) -> None:
    """Not a bar stuck at 85 %: the step line says how long the probe has waited and for how long it
    may (WIREWAN_PROBE_SECONDS, 1 s in these tests)."""
    from jobs.runtime import JobContext
    from tests.jobs.test_deploy_lifecycle import preflight_and_deploy

    steps: list[str] = []
    original = JobContext.step

    def recording(self: JobContext, step: str) -> None:
        steps.append(step)
        original(self, step)

    monkeypatch.setattr(JobContext, "step", recording)
    sim.auto_handshake = False  # the VPS never answers: the probe waits its whole time
    _, dep = preflight_and_deploy(api, run_jobs, router_wan["router"]["id"])
    assert dep["status"] == "succeeded", dep
    waits = [s for s in steps if s.startswith("waiting for handshakes")]
    assert waits and all(re.fullmatch(r"waiting for handshakes · \d+ s of up to 1 s", s) for s in waits), steps
    assert any("'vps'" in w for w in dep["warnings"])  # and the wait ends in a warning naming the peer
