"""Gunicorn's access log without the noise (used by ./run.sh): no line for /healthz, static files or
the pages' polling (job status and log every second, the Router section, a peer's state and status,
the WAN page's peer table refreshing itself). Every other request, and any of these that did not
answer 2xx/3xx, is logged as gunicorn would."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

QUIET = re.compile(r"^/(?:healthz$|static/|favicon|jobs/\d+/(?:status|log|result)$|peers/\d+/(?:router|state|status)$)")
# Elements that poll a full page URL with htmx (their id arrives in the HX-Trigger header).
POLLING_IDS = frozenset({"peers-table", "peer-status"})


def _header(req: Any, name: str) -> str:
    for key, value in getattr(req, "headers", None) or ():
        if key.upper() == name:
            return str(value)
    return ""


class QuietAccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        status = str(getattr(resp, "status", "") or "")
        if status[:1] in ("2", "3"):
            path = getattr(req, "path", "") or ""
            if QUIET.match(path) or (_header(req, "HX-REQUEST") and _header(req, "HX-TRIGGER") in POLLING_IDS):
                return
        super().access(resp, req, environ, request_time)
