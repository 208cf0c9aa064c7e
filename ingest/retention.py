"""Retention (docs/storage.md#retention): of raw readings (TimescaleDB retention policy when
`readings` is a hypertable, batched deletes otherwise; rollups are kept), and of dead letters and
quarantine entries (batched deletes by arrival time)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from civicair.core import tables
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
    _delete_in_batches(engine, repo.delete_battery_reports_before, cutoff, batch)
    log.info("retention applied method=%s cutoff=%s readings_deleted=%d uplinks_deleted=%d",
             "timescaledb" if timescale else "delete", cutoff.isoformat(), readings, uplinks)
    return RetentionResult("timescaledb" if timescale else "delete", readings, uplinks)


@dataclass(frozen=True)
class KeptRetentionResult:
    dead_letters_deleted: int = 0
    quarantine_deleted: int = 0


def apply_kept_retention(engine: sa.Engine, dead_letter_days: int, quarantine_days: int, *,
                         batch: int = 10_000, now: datetime | None = None) -> KeptRetentionResult:
    """Delete dead letters older than `dead_letter_days` and quarantine entries older than
    `quarantine_days` (replayed or not), `batch` rows per transaction; overflow counts older
    than the longer of the two go too."""
    now = now or datetime.now(UTC)
    dead = _delete_in_batches(engine, lambda c, t, n: repo.delete_kept_before(c, tables.dead_letters, t, n),
                              now - timedelta(days=dead_letter_days), batch)
    quarantined = _delete_in_batches(engine, lambda c, t, n: repo.delete_kept_before(c, tables.quarantine, t, n),
                                     now - timedelta(days=quarantine_days), batch)
    with engine.begin() as conn:
        repo.delete_overflow_before(conn, now - timedelta(days=max(dead_letter_days, quarantine_days)))
    log.info("retention of dead letters (%d days) and quarantine (%d days): %d and %d deleted",
             dead_letter_days, quarantine_days, dead, quarantined)
    return KeptRetentionResult(dead, quarantined)
