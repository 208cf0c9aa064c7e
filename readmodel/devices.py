"""Public devices and their series (docs/privacy.md#fixed-devices): consenting, established
devices by pseudonym, a fixed device's public H3 cell, never its exact position or identity; a
mobile device's first and last seen only as UTC days (docs/privacy.md#mobile-data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.errors import DeviceNotFound
from civicair.core.settings import Settings
from civicair.readmodel import anonymise, statements
from civicair.readmodel.cells import public_cell
from civicair.readmodel.params import (
    EXPECTED_HOURS,
    Interval,
    QuantityFilter,
    TimeRange,
    page_window,
    quantity_info,
)
from civicair.readmodel.publication import qa_cutoff
from civicair.readmodel.render import SeriesPage, series_row
from sqlalchemy.engine import Connection


def _day(t: datetime | None) -> datetime | None:
    return t.replace(hour=0, minute=0, second=0, microsecond=0) if t is not None else None


def _device_row(r: Any, settings: Settings) -> dict[str, Any]:
    cell = public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution) if r.kind == "fixed" else None
    centre = anonymise.cell_centre(cell) if cell else None
    return {
        "pseudonym": r.pseudonym,
        "kind": r.kind,
        "sensor_type": r.sensor_models[0] if r.sensor_models else None,
        "sensor_models": list(r.sensor_models or []),
        "h3_cell": cell,
        "coordinates": {"latitude": centre[0], "longitude": centre[1]} if centre else None,
        "status": r.status,
        "stars": r.stars,
        # a bike's times of day would give its riding schedule: only the UTC day is public
        "first_seen": r.first_seen if r.kind == "fixed" else _day(r.first_seen),
        "last_seen": r.last_seen if r.kind == "fixed" else _day(r.last_seen),
        "quantities": list(r.quantities or []),
        "has_series": r.kind == "fixed",
    }


def device_list(conn: Connection, settings: Settings, after: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    """Public (consenting, established) devices by pseudonym, after the pseudonym `after`."""
    d = tables.devices
    stmt = statements.public_devices(qa_cutoff(settings)).order_by(d.c.pseudonym)
    if after:
        stmt = stmt.where(d.c.pseudonym > after)
    if limit:
        stmt = stmt.limit(limit)
    return [_device_row(r, settings) for r in conn.execute(stmt)]


def public_device_rows(conn: Connection, settings: Settings) -> list[tuple[int, dict[str, Any]]]:
    """(internal id, public row) of every consenting device, by pseudonym. The internal id stays
    in the read model (readmodel/things.py joins zone members with it); only the row is public."""
    stmt = statements.public_devices(qa_cutoff(settings)).order_by(tables.devices.c.pseudonym)
    return [(int(r.id), _device_row(r, settings)) for r in conn.execute(stmt)]


def device_series_count(conn: Connection, settings: Settings, pseudonym: str, quantity: str | QuantityFilter,
                        time_range: TimeRange) -> int:
    """How many hourly rows `device_series` publishes over the range, counted in SQL (the covering
    `hourly_series` index), with the same fallback to raw readings when the rollup has none."""
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    device_id = device_id_of(conn, settings, pseudonym)
    n = 0
    for source in (tables.hourly, statements.hourly_from_readings(device_id, info.code, start, end)):
        n = int(conn.execute(statements.device_series_count(source, device_id, info.code, start, end)).scalar() or 0)
        if n:
            break
    return n


def device_series_extent(conn: Connection, settings: Settings, pseudonym: str,
                         quantity: str | QuantityFilter) -> tuple[datetime, datetime] | None:
    """The first and last hour a public fixed device has data of (the rollup, else readings)."""
    info = quantity_info(quantity)
    try:
        device_id = device_id_of(conn, settings, pseudonym)
    except DeviceNotFound:
        return None
    row = conn.execute(statements.hourly_extent([device_id], info.code)).one()
    if row[0] is None:
        row = conn.execute(statements.readings_extent(device_id, info.code)).one()
    return (row[0], row[1]) if row[0] is not None else None


def device_id_of(conn: Connection, settings: Settings, pseudonym: str) -> int:
    """The internal id of a public (consenting, established) fixed device, for statements of the
    read model only; DeviceNotFound otherwise."""
    d = tables.devices
    dev = conn.execute(sa.select(d.c.id).where(
        d.c.pseudonym == pseudonym, d.c.kind == "fixed", statements.public_device(),
        statements.established(qa_cutoff(settings)))).first()
    if dev is None:
        raise DeviceNotFound(f"no public fixed device {pseudonym[:40]!r}")
    return int(dev.id)


def device_detail(conn: Connection, settings: Settings, pseudonym: str) -> dict[str, Any]:
    r = conn.execute(statements.public_devices(qa_cutoff(settings))
                     .where(tables.devices.c.pseudonym == pseudonym)).first()
    if r is None:
        raise DeviceNotFound(f"no public device {pseudonym[:40]!r}")
    return _device_row(r, settings)


def device_series_page(conn: Connection, settings: Settings, pseudonym: str,
                       quantity: str | QuantityFilter, time_range: TimeRange,
                       interval: Interval | str = Interval.HOUR, after: datetime | None = None,
                       limit: int | None = None) -> SeriesPage:
    """One page of a fixed public device's series (mobile devices have none)."""
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    try:
        device_id = device_id_of(conn, settings, pseudonym)
    except DeviceNotFound:
        raise DeviceNotFound(f"no public fixed device {pseudonym[:40]!r} "
                             "(mobile devices have no per-device series)") from None
    start, end, nxt = page_window(start, end, after, limit, interval)
    rows: list[dict[str, Any]] = []
    for source in (tables.hourly, statements.hourly_from_readings(device_id, info.code, start, end)):
        # The rollup normally holds every hour; readings not rolled up yet (a fresh device, the
        # rollup job behind) are aggregated on the fly so the series is never silently empty.
        stmt = statements.device_series(source, device_id, info.code, start, end, interval, after)
        rows = [series_row(r, interval, info.unit, EXPECTED_HOURS[interval]) for r in conn.execute(stmt).all()]
        if rows:
            break
    return SeriesPage(rows, 0, nxt)


def device_series(conn: Connection, settings: Settings, pseudonym: str, quantity: str | QuantityFilter,
                  time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                  after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return device_series_page(conn, settings, pseudonym, quantity, time_range, interval, after, limit).results
