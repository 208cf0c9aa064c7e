"""Scheduled jobs of the ingest package (collected by `civicair.runtime`): retention of raw
readings, and of dead letters and quarantine, daily (idempotent: several processes may run them)."""

from __future__ import annotations

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings
from civicair.ingest.retention import apply_kept_retention, apply_retention


def jobs(settings: Settings, db: Database) -> list[Job]:
    return [
        Job("ingest-retention", 24 * 3600,
            lambda: apply_retention(db.engine, settings.raw_retention_days), first_delay_s=60.0),
        Job("ingest-kept-retention", 24 * 3600,
            lambda: apply_kept_retention(db.engine, settings.dead_letter_retention_days,
                                         settings.quarantine_retention_days), first_delay_s=90.0),
    ]
