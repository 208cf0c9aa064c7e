"""SQL of the export package (read-only). Only data that holds no personal information is read
here directly; everything built from volunteers' readings goes through the API's privacy-reviewed
queries (civicair.readmodel), see open_export.providers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.domain import QUANTITY_BY_CODE
from sqlalchemy.engine import Connection


def reference_hourly(conn: Connection, start: datetime, end: datetime, licence: str) -> Iterator[dict[str, Any]]:
    """Official reference measurements (hour start in [start, end)) with their station's metadata;
    `licence`: the network's licence, for stations that do not name their own."""
    s, r = tables.reference_stations, tables.reference_readings
    rows = conn.execute(
        sa.select(s.c.code, s.c.name, s.c.network, s.c.lat, s.c.lon, s.c.licence,
                  r.c.quantity, r.c.time, r.c.value)
        .select_from(r.join(s, s.c.code == r.c.station_code))
        .where(r.c.time >= start, r.c.time < end)
        .where(sa.or_(r.c.validity.is_(None), r.c.validity > 0))
        .order_by(s.c.code, r.c.quantity, r.c.time)
    )
    for row in rows:
        q = QUANTITY_BY_CODE.get(row.quantity)
        yield {
            "station_code": row.code, "station_name": row.name, "network": row.network,
            "lat": row.lat, "lon": row.lon,
            "quantity": q.name if q else str(row.quantity), "unit": q.unit if q else None,
            "datetime_from": row.time, "datetime_to": row.time + timedelta(hours=1),
            "value": row.value, "licence": row.licence or licence,
        }


def invalidated_days(conn: Connection) -> list[tuple[int, date]]:
    """The export invalidation log (id, UTC day), oldest first (migration 0013)."""
    t = tables.export_invalidations
    return [(int(r.id), r.day) for r in conn.execute(sa.select(t.c.id, t.c.day).order_by(t.c.id))]


def forget_invalidations(conn: Connection, ids: Sequence[int]) -> int:
    """Delete the log rows an export run has handled (by id: rows logged meanwhile stay)."""
    if not ids:
        return 0
    t = tables.export_invalidations
    return int(conn.execute(sa.delete(t).where(t.c.id.in_(list(ids)))).rowcount)
