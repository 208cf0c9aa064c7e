"""Hourly rollup maintenance outside the hot path: `civicair rollup --rebuild --since`.

The writer folds each committed batch into `hourly` incrementally (repository
`insert_readings`); this recomputes hours from the raw readings, e.g. after a manual fix.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from civicair.ingest import repository as repo

log = logging.getLogger(__name__)


def rebuild_hourly(engine: sa.Engine, since: datetime, until: datetime | None = None,
                   *, chunk: timedelta = timedelta(days=7)) -> int:
    """Recompute `hourly` for [since, until) from raw readings, one transaction per `chunk`
    (so a long rebuild does not hold one huge transaction). Returns hourly rows written."""
    if until is None:
        with engine.connect() as conn:
            latest = conn.execute(sa.text("select max(time) from readings")).scalar()
        if latest is None:
            return 0
        until = latest + timedelta(hours=1)
    total = 0
    start = since
    while start < until:
        end = min(start + chunk, until)
        with engine.begin() as conn:
            total += repo.rebuild_hourly(conn, start, end)
        start = end
    log.info("hourly rollup rebuilt since=%s rows=%d", since.isoformat(), total)
    return total
