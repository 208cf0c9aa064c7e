"""Scheduled jobs of the api package (collected by core.runtime)."""

from __future__ import annotations

from api.zones import refresh_device_zones
from core.db import Database
from core.jobs import Job
from core.settings import Settings


def jobs(settings: Settings, db: Database) -> list[Job]:
    def refresh() -> None:
        with db.engine.begin() as conn:
            refresh_device_zones(conn)

    return [Job("api.device_zones", 600.0, refresh, first_delay_s=10.0)]
