"""Scheduled jobs of the ingest package (collected by `civicair.runtime`): retention of raw
readings, daily (idempotent: several processes may run it)."""

from __future__ import annotations

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings
from civicair.ingest.retention import apply_retention


def jobs(settings: Settings, db: Database) -> list[Job]:
    return [
        Job("ingest-retention", 24 * 3600,
            lambda: apply_retention(db.engine, settings.raw_retention_days), first_delay_s=60.0),
    ]
