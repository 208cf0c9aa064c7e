"""Scheduled jobs of the api package (collected by core.runtime)."""

from __future__ import annotations

import logging

from api.zone_rollup import refresh as refresh_zone_series
from api.zones import refresh_device_zones
from core.db import Database
from core.jobs import Job
from core.settings import Settings

log = logging.getLogger(__name__)


def jobs(settings: Settings, db: Database) -> list[Job]:
    def refresh() -> None:
        with db.engine.begin() as conn:
            refresh_device_zones(conn)

    def zone_rollup() -> None:
        with db.engine.begin() as conn:
            result = refresh_zone_series(conn, settings)
        log.info("zone series materialised up to %s: %d zones rebuilt, %d updated, %d rows in %.1f s",
                 result.watermark.isoformat(), result.rebuilt, result.updated, result.rows, result.seconds)

    return [Job("api.device_zones", 600.0, refresh, first_delay_s=10.0),
            Job("api.zone_rollup", settings.zone_rollup_interval_s, zone_rollup, first_delay_s=30.0)]
