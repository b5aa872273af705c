"""The RQ worker WireWAN runs: it loads the app once, before RQ forks a work horse per job, and reaps
the jobs of dead workers as part of RQ's own maintenance.

A plain `rq worker` imports the job module (and with it Flask, SQLAlchemy and the app) again in every
forked horse: about half a second of CPU before each job. Preloading in the parent makes that free,
which matters when one change fans out to many routers.

Reaping belongs to the workers, never to a page view (a GET must not write): RQ runs
`run_maintenance_tasks` when a worker starts and every `--maintenance-interval` seconds after, also
while it idles. The same maintenance disables expired peers (`Peer.expires_at`), so expiry takes
effect within one maintenance interval.
"""

from __future__ import annotations

import gc
from typing import Any

from rq import Worker

from jobs import runtime


class PreloadWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import jobs.mikrotik  # noqa: F401  (the job functions and everything they import)

        runtime.warm_up(runtime.get_app())
        # Objects made so far are never collected: the forked horses need not touch (and so copy)
        # every page of the parent's heap when their first garbage collection runs. The warm-up's
        # garbage (its rolled-back rows) is collected first rather than frozen.
        gc.collect()
        gc.freeze()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        try:
            reaped = runtime.reap_abandoned_jobs()
        except Exception:  # a database hiccup must not kill the worker; the next round retries
            self.log.exception("reaping abandoned jobs failed")
            return
        if reaped:
            self.log.warning("marked %d job(s) abandoned: their worker stopped beating", reaped)
        try:
            expired = runtime.expire_peers()
        except Exception:  # as above: the next round retries
            self.log.exception("disabling expired peers failed")
            return
        if expired:
            self.log.info("disabled %d expired peer(s)", expired)
