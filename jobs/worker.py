"""The RQ worker WireWAN runs: it loads the app once, before RQ forks a work horse per job.

A plain `rq worker` imports the job module (and with it Flask, SQLAlchemy and the app) again in every
forked horse: about half a second of CPU before each job. Preloading in the parent makes that free,
which matters when one change fans out to many routers.
"""

from __future__ import annotations

from typing import Any

from rq import Worker

from jobs import runtime


class PreloadWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import jobs.mikrotik  # noqa: F401  (the job functions and everything they import)

        runtime.get_app()
