from __future__ import annotations

from datetime import UTC, datetime

# Ids are PostgreSQL INTEGERs (32-bit): a larger number names no row, and binding it fails in the
# driver (a 500), so callers treat it as "not found" before querying.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    # Naive UTC: SQLite has no time zones, and mixing aware and naive datetimes raises.
    return datetime.now(UTC).replace(tzinfo=None)
