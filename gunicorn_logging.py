"""Gunicorn's access log without the noise (used by ./run.sh): no line for /healthz, static files or
the pages' polling (job status every second, the Router section and peer state refreshed by htmx).
Every other request, and any poll that did not answer 2xx/3xx, is logged as gunicorn would."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

QUIET = re.compile(r"^/(?:healthz$|static/|favicon|jobs/\d+/(?:status|log|result)$|peers/\d+/(?:router|state)$)")


class QuietAccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        status = str(getattr(resp, "status", "") or "")
        if QUIET.match(getattr(req, "path", "") or "") and status[:1] in ("2", "3"):
            return
        super().access(resp, req, environ, request_time)
