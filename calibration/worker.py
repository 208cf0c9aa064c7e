"""Scheduled jobs of the calibration package: the hourly calibration run and the optional E2
reference fetcher (off by default)."""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from civicair.calibration.service import import_reference_file, run_calibration
from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings

log = logging.getLogger(__name__)


def e2_urls(template: str, today: date, days: int) -> list[tuple[date, str]]:
    """URLs of the last `days` daily files, oldest first ({date} = YYYY-MM-DD, {year})."""
    out = []
    for k in range(days - 1, -1, -1):
        d = today - timedelta(days=k)
        out.append((d, template.format(date=d.isoformat(), year=d.year)))
    return out


def fetch_e2(settings: Settings, db: Database, client: httpx.Client, today: date | None = None) -> dict[str, int]:
    """Download and import the recent E2 files; a missing file (404) is skipped, not an error.
    Re-importing an unchanged file changes nothing (idempotent)."""
    today = today or datetime.now(UTC).date()
    stats = {"files": 0, "rows": 0, "written": 0, "missing": 0}
    for _, url in e2_urls(settings.e2_url_template, today, settings.e2_fetch_days):
        resp = client.get(url)
        if resp.status_code == 404:
            stats["missing"] += 1
            continue
        resp.raise_for_status()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / url.rsplit("/", 1)[-1]
            path.write_bytes(resp.content)
            rep = import_reference_file(db, path, "e2")
        stats["files"] += 1
        stats["rows"] += len(rep.parse.rows)
        stats["written"] += rep.written
        log.info("E2 %s: %d rows, %d new or changed, %d bad", url, len(rep.parse.rows), rep.written,
                 len(rep.parse.bad_rows))
    return stats


def calibrate(settings: Settings, db: Database) -> dict[str, object]:
    """One scheduled run in one transaction: committed when every result is written."""
    with db.engine.begin() as conn:
        return run_calibration(conn, settings, wait=False).as_dict()


def jobs(settings: Settings, db: Database) -> list[Job]:
    out = [Job("calibration", settings.calibration_interval_s, lambda: calibrate(settings, db), first_delay_s=30.0)]
    if settings.e2_fetch_enabled:
        def run_fetch() -> dict[str, int]:
            with httpx.Client(timeout=60, follow_redirects=True) as client:
                return fetch_e2(settings, db, client)

        out.insert(0, Job("e2-fetch", settings.calibration_interval_s, run_fetch, first_delay_s=10.0))
    return out
