"""A zone's current index and its last 24 hours (the embeddable widget, docs/open-data.md#the-widget):
the zone series as the API publishes it (same k-anonymity), with each hour's band on a scale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.settings import Settings
from civicair.readmodel import indices, statements
from civicair.readmodel import zone_series as zone_reads
from civicair.readmodel.params import Interval, TimeRange, is_h3_cell
from sqlalchemy.engine import Connection

HOURS = 24


def zone_name(conn: Connection, zone_id: str) -> str | None:
    """The zone's name (an H3 cell is named after its id); None for an unknown admin zone."""
    if is_h3_cell(zone_id):
        return f"H3 {zone_id}"
    for r in conn.execute(statements.zone_rows()):
        if r.id == zone_id:
            return str(r.name)
    return None


def zone_index(conn: Connection, settings: Settings, zone_id: str, quantity: str, scale_id: str,
               now: datetime | None = None) -> dict[str, Any]:
    """{zone, name, quantity, unit, scale, current: the latest published hour (or None), hours: 24}."""
    scale = indices.scale_of(scale_id)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=HOURS)
    rows = zone_reads.zone_series(conn, settings, zone_id, quantity, TimeRange(datetime_from=start, datetime_to=end),
                                  Interval.HOUR)
    by_hour = {r["period"]["datetime_from"]: r["value"] for r in rows}
    hours: list[dict[str, Any]] = []
    for i in range(HOURS):
        t = start + timedelta(hours=i)
        value = by_hour.get(t)
        b = indices.band(scale, quantity, value)
        hours.append({"datetime_from": t, "value": value, "band": b})
    current = next((h for h in reversed(hours) if h["value"] is not None), None)
    band = indices.band_info(scale, current["band"] if current else 0)
    return {"zone": zone_id, "name": zone_name(conn, zone_id) or zone_id, "quantity": quantity,
            "unit": QUANTITY_BY_NAME[quantity].unit, "scale": scale.id,
            "scale_name": {"en": scale.name_en, "fr": scale.name_fr},
            "current": None if current is None else {
                **current, "colour": band.colour, "text": band.text,
                "label": {"en": band.label_en, "fr": band.label_fr}},
            "hours": [{**h, "colour": indices.band_info(scale, h["band"]).colour} for h in hours],
            "suppressed_or_missing": sum(h["value"] is None for h in hours)}
