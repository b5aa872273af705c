"""./run.sh's access log (gunicorn_logging.QuietAccessLogger): no line for health checks, static files
or the pages' 1 s polls while they answer normally; every other request is logged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from gunicorn_logging import QuietAccessLogger


@pytest.mark.parametrize(
    ("path", "status", "logged"),
    [
        ("/healthz", "200 OK", False),
        ("/static/app.css", "200 OK", False),
        ("/static/vendor/htmx-2.0.11.min.js", "304 Not Modified", False),
        ("/jobs/12/status", "200 OK", False),
        ("/peers/3/router", "200 OK", False),
        ("/peers/3/state", "200 OK", False),
        ("/peers/3/status", "200 OK", False),
        ("/jobs/12/status", "500 Internal Server Error", True),
        ("/jobs/12", "200 OK", True),
        ("/wans/1", "200 OK", True),
        ("/api/wan/1/configs.zip", "200 OK", True),
    ],
)
def test_polls_health_checks_and_static_files_stay_out_of_the_log(
    monkeypatch: Any, path: str, status: str, logged: bool
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(Logger, "access", lambda self, resp, req, environ, request_time: seen.append(req.path))
    QuietAccessLogger(Config()).access(SimpleNamespace(status=status), SimpleNamespace(path=path), {}, 0)
    assert seen == ([path] if logged else [])


def test_a_page_polled_by_htmx_stays_out_but_the_same_page_opened_is_logged(monkeypatch: Any) -> None:
    seen: list[str] = []
    monkeypatch.setattr(Logger, "access", lambda self, resp, req, environ, request_time: seen.append(req.path))
    logger = QuietAccessLogger(Config())
    polled = [("HX-REQUEST", "true"), ("HX-TRIGGER", "peers-table")]
    logger.access(SimpleNamespace(status="200 OK"), SimpleNamespace(path="/wans/1", headers=polled), {}, 0)
    logger.access(SimpleNamespace(status="200 OK"), SimpleNamespace(path="/wans/1", headers=[]), {}, 0)
    assert seen == ["/wans/1"]
