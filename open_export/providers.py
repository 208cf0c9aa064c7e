"""Row providers: one function per dataset, `rows(conn, settings, start, end) -> iterable of dicts`
keyed by the dataset's column names.

Datasets built from volunteers' readings (zones, devices, mobile cells) are served by the public
read model (civicair.readmodel: k-anonymity suppression, mobile privacy
filters, consent, exclusion of unreliable devices); this module only adapts their results to
the export columns and never re-implements those rules. A dataset whose query is not available
has no provider: it is skipped by the export and left out of the catalogue. Reference stations
are official, non-personal data read directly (open_export.repository).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.settings import Settings
from civicair.open_export import repository
from civicair.readmodel import devices as public_devices
from civicair.readmodel import mobile, params, zone_series
from sqlalchemy.engine import Connection

Provider = Callable[[Connection, Settings, datetime, datetime], Iterable[Mapping[str, Any]]]


def reference_stations(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterable[dict]:
    return repository.reference_hourly(conn, start, end, settings.reference_licence_name)


def _series_columns(row: Mapping[str, Any], quantity: str) -> dict[str, Any]:
    """An API series row (readmodel.render shape) flattened to the export columns."""
    summary = row.get("summary") or {}
    return {
        "quantity": quantity, "unit": row.get("unit"),
        "datetime_from": row["period"]["datetime_from"], "datetime_to": row["period"]["datetime_to"],
        "value": row.get("value"), "calibrated": row.get("calibrated"), "raw_mean": row.get("raw_mean"),
        "min": summary.get("min"), "max": summary.get("max"),
        "n_devices": row.get("n_devices"), "n_readings": row.get("n_readings"),
    }


def _zone_rows(interval: str) -> Provider:
    def rows(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        span = params.TimeRange(datetime_from=start, datetime_to=end)
        for zone in zone_series.zone_list(conn, settings):
            for q in QUANTITY_BY_NAME:
                for row in zone_series.zone_series(conn, settings, zone["id"], q, span, interval):
                    yield {"zone_id": zone["id"], **_series_columns(row, q)}

    return rows


def device_hourly(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    span = params.TimeRange(datetime_from=start, datetime_to=end)
    for dev in public_devices.device_list(conn, settings):
        if not dev.get("has_series"):
            continue
        for q in dev.get("quantities") or ():
            for row in public_devices.device_series(conn, settings, dev["pseudonym"], q, span, "hour"):
                yield {"device": dev["pseudonym"], "h3_cell": dev.get("h3_cell"), **_series_columns(row, q)}


def mobile_cells(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    span = params.TimeRange(datetime_from=start, datetime_to=end)
    for q in QUANTITY_BY_NAME:
        for row in mobile.mobile_cells(conn, settings, q, span):
            yield {"h3_cell": row["h3_cell"], **_series_columns(row, q)}


def devices(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Public devices already seen before the end of the period (a snapshot of their public fields)."""
    for dev in public_devices.device_list(conn, settings):
        if dev.get("first_seen") is None or dev["first_seen"] >= end:
            continue
        centre = dev.get("coordinates") or {}
        yield {"device": dev["pseudonym"], "kind": dev["kind"], "sensor_type": dev.get("sensor_type"),
               "h3_cell": dev.get("h3_cell"), "latitude": centre.get("latitude"),
               "longitude": centre.get("longitude"), "status": dev.get("status"), "stars": dev.get("stars"),
               "first_seen": dev.get("first_seen"), "last_seen": dev.get("last_seen")}


def default_providers() -> dict[str, Provider]:
    """Providers available in this build, by dataset id."""
    return {
        "zone-hourly": _zone_rows("hour"),
        "zone-daily": _zone_rows("day"),
        "device-hourly": device_hourly,
        "mobile-cells": mobile_cells,
        "devices": devices,
        "reference-stations": reference_stations,
    }
