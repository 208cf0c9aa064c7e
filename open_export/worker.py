"""Scheduled export job for `civicair up`: yesterday's daily files and last month's monthly files,
refreshed every few hours (idempotent: unchanged files are not rewritten)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core.db import Database
from core.jobs import Job
from core.settings import Settings
from open_export.service import default_day, run_export

log = logging.getLogger(__name__)
EXPORT_INTERVAL_S = 6 * 3600


def export_once(settings: Settings, db: Database) -> None:
    today = datetime.now(UTC).date()
    for kind in ("day", "month"):
        report = run_export(settings, db.read_engine, kind=kind, day=default_day(kind, today))
        if report.written:
            log.info("export %s: %d file(s) written to %s", kind, len(report.written), report.out)


def jobs(settings: Settings, db: Database) -> list[Job]:
    return [Job("open_export.daily", EXPORT_INTERVAL_S, lambda: export_once(settings, db), first_delay_s=60)]
