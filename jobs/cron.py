"""RQ's own scheduler configuration (`rq cron jobs/cron.py`, started by run.sh): every
STATUS_INTERVAL seconds a status round, every VERIFY_INTERVAL seconds a verify round
(jobs/ops.py schedule_round). The intervals and the queue come from the app's settings."""

from __future__ import annotations

from rq import cron

from app.config import load_settings
from jobs.ops import schedule_round


def register_rounds(queue: str, status_interval: int, verify_interval: int) -> None:
    cron.register(schedule_round, queue, args=("status",), interval=status_interval, name="wirewan-status-round")
    cron.register(schedule_round, queue, args=("verify",), interval=verify_interval, name="wirewan-verify-round")


_settings = load_settings()
register_rounds(_settings["RQ_QUEUE"], int(_settings["STATUS_INTERVAL"]), int(_settings["VERIFY_INTERVAL"]))
