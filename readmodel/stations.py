"""Reference stations and their series: official, non-personal data, published with the station
network's own licence and attribution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import h3
from civicair.core.errors import StationNotFound
from civicair.core.settings import Settings
from civicair.readmodel import statements
from civicair.readmodel.anonymise import point_in_polygon, snap_to_cell
from civicair.readmodel.params import Interval, QuantityFilter, TimeRange, is_h3_cell, quantity_info
from civicair.readmodel.render import station_row
from sqlalchemy.engine import Connection


def stations(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    return [
        {"code": r.code, "name": r.name, "network": r.network, "station_type": r.station_type,
         "coordinates": {"latitude": r.lat, "longitude": r.lon} if r.lat is not None else None,
         "pollutants": list(r.pollutants or []),
         "licence": r.licence or settings.reference_licence_name, "attribution": r.attribution or r.network}
        for r in conn.execute(statements.stations())
    ]


def station(conn: Connection, settings: Settings, code: str) -> dict[str, Any]:
    for row in stations(conn, settings):
        if row["code"] == code:
            return row
    raise StationNotFound(f"no reference station {code[:40]!r}")


def station_series(conn: Connection, settings: Settings, code: str, quantity: str | QuantityFilter,
                   time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                   after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    if conn.execute(statements.station_exists(code)).first() is None:
        raise StationNotFound(f"no reference station {code[:40]!r}")
    stmt = statements.station_series(code, info.code, start, end, interval, after, limit)
    out = [station_row(r, interval, info.unit) for r in conn.execute(stmt)]
    return out[:limit] if limit is not None else out


def stations_in_zone(conn: Connection, settings: Settings, zone_id: str) -> list[dict[str, Any]]:
    """The reference stations lying in a zone: an administrative zone's polygon, or an H3 cell at
    any resolution (a sensor page passes the sensor's public cell). Only public positions are
    compared: what it says about a sensor is no finer than its cell."""
    located = [s for s in stations(conn, settings) if s["coordinates"]]
    if is_h3_cell(zone_id):
        res = h3.get_resolution(zone_id)
        return [s for s in located
                if snap_to_cell(s["coordinates"]["latitude"], s["coordinates"]["longitude"], res) == zone_id]
    geometry = conn.execute(statements.zone_geometry(zone_id)).scalar()
    if not geometry:
        return []
    return [s for s in located
            if point_in_polygon(s["coordinates"]["latitude"], s["coordinates"]["longitude"], geometry)]
