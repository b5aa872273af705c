from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    # Naive UTC: SQLite has no time zones, and mixing aware and naive datetimes raises.
    return datetime.now(UTC).replace(tzinfo=None)
