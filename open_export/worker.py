"""Scheduled export job for `civicair up`: every 15 minutes, yesterday's daily files (final) and today's
daily files so far (so the `latest` URLs stay fresh); once a day, last month's monthly files.
Idempotent: files whose bytes do not change are not rewritten."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings
from civicair.open_export.periods import PeriodKind
from civicair.open_export.service import default_day, run_export

log = logging.getLogger(__name__)
EXPORT_INTERVAL_S = 900


def export_once(settings: Settings, db: Database, today: date | None = None, *, monthly: bool = True) -> int:
    """Run the scheduled exports; returns the number of files written."""
    today = today or datetime.now(UTC).date()
    runs: list[tuple[PeriodKind, date]] = [("day", default_day("day", today)), ("day", today)]
    if monthly:
        runs.append(("month", default_day("month", today)))
    written = 0
    for kind, day in runs:
        report = run_export(settings, db.read_engine, kind=kind, day=day)
        written += len(report.written)
        if report.written:
            log.info("export %s %s: %d file(s) written to %s", kind, day, len(report.written), report.out)
    return written


class ExportJob:
    """Daily files every run; the monthly files on the first run of each UTC day."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.monthly_done: date | None = None

    def __call__(self) -> int:
        today = datetime.now(UTC).date()
        written = export_once(self.settings, self.db, today, monthly=self.monthly_done != today)
        self.monthly_done = today
        return written


def jobs(settings: Settings, db: Database) -> list[Job]:
    return [Job("open_export.export", EXPORT_INTERVAL_S, ExportJob(settings, db), first_delay_s=30)]
