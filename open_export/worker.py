"""Scheduled export job for `civicair up` (docs/open-data.md#freshness). Every 15 minutes, under the
export folder's lock:

- today's files (the day so far, served as `today.*`);
- once a day has finished: its final files (`latest.*` moves to it) and the month file of that
  day's month, rewritten with the day in (the current month's file holds its finished days);
- every past day the invalidation log names (a calibration refit or late data changed its hours;
  migration 0013): that day's files and its month's file; the log rows handled are deleted;
- a folder with no state yet (a new instance, a new folder): every finished day of the current
  month, the current and the previous month.

Idempotent: files whose bytes do not change are not rewritten, and a process that finds the work
done (the state in the folder, the log emptied) does nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings
from civicair.open_export import repository
from civicair.open_export.periods import PeriodKind, day_start, period_for
from civicair.open_export.service import export_dir, run_export
from civicair.open_export.state import folder_lock, read_state, write_state

log = logging.getLogger(__name__)
EXPORT_INTERVAL_S = 900
CATCH_UP_DAYS = 35  # a folder whose final exports stopped longer ago catches up on this many days


def plan(today: date, final_before: date | None, invalidated: set[date]) -> list[tuple[PeriodKind, date]]:
    """The exports of one run: days oldest first, then their months, then today. `final_before`:
    every day before it has had its final export (None: a new folder). Pure."""
    month_start = today.replace(day=1)
    yesterday = today - timedelta(days=1)
    if final_before is None:
        days = {month_start + timedelta(days=i) for i in range(today.day - 1)} | {yesterday}
        months = {(month_start - timedelta(days=1)).replace(day=1), month_start}
    else:
        first = max(final_before, today - timedelta(days=CATCH_UP_DAYS))
        days = {first + timedelta(days=i) for i in range((today - first).days)}
        months = {d.replace(day=1) for d in days}
    past = {d for d in invalidated if d < today}
    days |= past
    months |= {d.replace(day=1) for d in past}
    return [*(("day", d) for d in sorted(days)), *(("month", m) for m in sorted(months)), ("day", today)]


def export_once(settings: Settings, db: Database, now: datetime | None = None) -> int:
    """Run the scheduled exports; returns the number of files written."""
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date()
    root = export_dir(settings)
    written = 0
    with folder_lock(root):
        state = read_state(root)
        # read on the export's database (a replica may lag: what it shows, the exports below see)
        with db.read_engine.connect() as conn:
            logged = repository.invalidated_days(conn)
        runs = plan(today, state.final_before, {day for _, day in logged})
        for kind, day in runs:
            # the current month holds its finished days only
            until = day_start(now) if kind == "month" and period_for("month", day).end > day_start(now) else None
            report = run_export(settings, db.read_engine, kind=kind, day=day, until=until, locked=True)
            written += len(report.written)
            if report.written:
                log.info("export %s %s: %d file(s) written to %s", kind, day, len(report.written), report.out)
        with db.engine.begin() as conn:
            repository.forget_invalidations(conn, [i for i, _ in logged])
        write_state(root, replace(read_state(root), final_through=today.isoformat()))
    return written


class ExportJob:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db

    def __call__(self) -> int:
        return export_once(self.settings, self.db)


def jobs(settings: Settings, db: Database) -> list[Job]:
    return [Job("open_export.export", EXPORT_INTERVAL_S, ExportJob(settings, db), first_delay_s=30)]
