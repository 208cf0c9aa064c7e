"""Scheduled jobs of the read model (collected by civicair.runtime)."""

from __future__ import annotations

import logging

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings
from civicair.readmodel.map import refresh_snapshots
from civicair.readmodel.mobile_rollup import refresh as refresh_mobile
from civicair.readmodel.things import sync_registry
from civicair.readmodel.zone_rollup import refresh as refresh_zone_series
from civicair.readmodel.zones import refresh_device_zones

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

    def sta_ids() -> None:
        with db.engine.begin() as conn:
            if added := sync_registry(conn, settings):
                log.info("SensorThings ids: %d registered", added)
    def mobile_rollup() -> None:
        with db.engine.begin() as conn:
            result = refresh_mobile(conn, settings)
        log.info("mobile rollup: %d closed trips of %d devices (%d still open), %d rows in %.1f s",
                 result.trips, result.devices, result.open_trips, result.rows, result.seconds)

    def map_snapshots() -> None:
        with db.engine.begin() as conn:
            n = refresh_snapshots(conn, settings)
        log.debug("map: %d snapshots rendered", n)

    return [Job("readmodel.sta_ids", 60.0, sta_ids, first_delay_s=5.0),
            Job("readmodel.device_zones", 600.0, refresh, first_delay_s=10.0),
            Job("readmodel.zone_rollup", settings.zone_rollup_interval_s, zone_rollup, first_delay_s=30.0),
            Job("readmodel.mobile_rollup", settings.mobile_rollup_interval_s, mobile_rollup, first_delay_s=20.0),
            Job("readmodel.map", settings.map_refresh_interval_s, map_snapshots, first_delay_s=15.0)]
