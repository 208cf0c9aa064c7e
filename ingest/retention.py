"""Retention of raw readings (docs/storage.md#retention): TimescaleDB retention policy when `readings` is a
hypertable, batched deletes otherwise. Rollups (`hourly`) are kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from civicair.ingest import repository as repo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    method: str  # timescaledb | delete
    readings_deleted: int = 0
    uplinks_deleted: int = 0


def _delete_in_batches(engine: sa.Engine, delete: Callable[[sa.Connection, datetime, int], int],
                       cutoff: datetime, batch: int) -> int:
    """Run `delete(conn, cutoff, batch)` one transaction at a time until a batch comes back short."""
    total = 0
    while True:
        with engine.begin() as conn:
            n = delete(conn, cutoff, batch)
        total += n
        if n < batch:
            return total


def apply_retention(engine: sa.Engine, days: int, *, batch: int = 10_000,
                    now: datetime | None = None) -> RetentionResult:
    """Delete raw readings (and uplink metadata) older than `days`, `batch` rows per
    transaction, so the writer is never blocked for long."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with engine.begin() as conn:
        timescale = repo.timescaledb_installed(conn) and repo.readings_is_hypertable(conn)
        if timescale:
            repo.set_timescale_retention(conn, days)
    readings = 0 if timescale else _delete_in_batches(engine, repo.delete_readings_before, cutoff, batch)
    uplinks = _delete_in_batches(engine, repo.delete_uplinks_before, cutoff, batch)
    log.info("retention applied method=%s cutoff=%s readings_deleted=%d uplinks_deleted=%d",
             "timescaledb" if timescale else "delete", cutoff.isoformat(), readings, uplinks)
    return RetentionResult("timescaledb" if timescale else "delete", readings, uplinks)
