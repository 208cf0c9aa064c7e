"""Mobile (bike) cells (docs/privacy.md#mobile-data): (H3 cell, hour) aggregates of the
privacy-filtered points of whole trips (the mobile rollup, `mobile_rollup.py`), published only
with at least k distinct established devices, aggregated in SQL (`statements.mobile_cells_page`).

Whole cell-hours only: a request's range is widened to whole hours (from the hour holding
`datetime_from` to the end of the hour holding the last instant before `datetime_to`), so no
answer depends on where inside an hour a range starts or ends.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3
from civicair.core.errors import InvalidParameter
from civicair.core.settings import Settings
from civicair.readmodel import anonymise, statements
from civicair.readmodel.params import QuantityFilter, TimeRange, as_utc, quantity_info
from civicair.readmodel.publication import qa_cutoff
from sqlalchemy.engine import Connection

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class MobilePage:
    results: list[dict[str, Any]]
    datetime_from: datetime  # the whole-hour range answered
    datetime_to: datetime
    cursor: str | None  # of the next page, None at the end


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole hours."""
    lo = anonymise.hour_of(start)
    hi = anonymise.hour_of(end - timedelta(microseconds=1)) + HOUR
    return lo, hi


def cell_id(cell: int) -> str:
    return h3.int_to_str(cell)


def encode_cursor(hour: datetime, cell: int) -> str:
    return base64.urlsafe_b64encode(f"{hour.isoformat()}|{cell}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        hour, _, cell = raw.partition("|")
        if not (cell.isascii() and cell.isdigit()) or len(cell) > 20:
            raise ValueError(cell)
        return as_utc(datetime.fromisoformat(hour)), int(cell)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("cursor", "not a cursor returned by this API") from None


def mobile_cells_page(conn: Connection, settings: Settings, quantity: str | QuantityFilter,
                      time_range: TimeRange, *, cursor: str | None = None, limit: int | None = None) -> MobilePage:
    """One page of public cell-hours in (hour, cell) order; `limit=None`: the whole range."""
    info = quantity_info(quantity)
    lo, hi = whole_hours(*time_range.resolve(settings.max_range_days))
    after = decode_cursor(cursor) if cursor else None
    stmt = statements.mobile_cells_page(qa_cutoff(settings), settings.k_anonymity, info.code, lo, hi, after, limit)
    savepoint = conn.begin_nested()
    try:  # the planner settings end with the savepoint
        conn.execute(statements.streaming_plan())
        rows = conn.execute(stmt).all()
    finally:
        savepoint.rollback()
    nxt = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        nxt = encode_cursor(rows[-1].hour, rows[-1].cell)
    results = []
    for r in rows:
        cell = cell_id(r.cell)
        n = int(r.n)
        mean = r.s / n
        results.append({
            "h3_cell": cell,
            "period": {"datetime_from": r.hour, "datetime_to": r.hour + HOUR, "interval": "hour"},
            "value": mean, "unit": info.unit, "n_devices": int(r.n_devices), "n_readings": n,
            "summary": {"min": r.min, "max": r.max, "mean": mean},
            "coordinates": dict(zip(("latitude", "longitude"), anonymise.cell_centre(cell), strict=True)),
        })
    return MobilePage(results, lo, hi, nxt)


def mobile_cells(conn: Connection, settings: Settings, quantity: str | QuantityFilter,
                 time_range: TimeRange) -> list[dict[str, Any]]:
    """Every public cell-hour of the range (the export files)."""
    return mobile_cells_page(conn, settings, quantity, time_range).results
