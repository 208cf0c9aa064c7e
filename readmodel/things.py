"""What the SensorThings API publishes, in the read model's terms (docs/sensorthings.md#mapping):
the public things — fixed consenting devices by pseudonym, zones, reference stations — with
their registry ids, the quantities each publishes an hourly series of, and their public
geometry; and, per (thing, quantity), windows of the published hourly rows, their counts and
extent, and the same rows as an SQL relation for filters on values.

Everything comes from the read model's public functions (device_list's rows, zone_list,
stations, the zone series pages), so nothing here is more precise than the public API, and the
privacy rules (consent, eligibility, k) stay where they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.settings import Settings
from civicair.readmodel import (
    anonymise,
    devices,
    registry,
    statements,
    stations,
    zone_rollup,
    zone_series,
)
from civicair.readmodel.params import Interval, TimeRange
from civicair.readmodel.render import parse_rows
from sqlalchemy.engine import Connection

HOUR = timedelta(hours=1)
ZONE_PROCEDURE = "civicair zone aggregate"
STATION_PROCEDURE = "reference analyser"


@dataclass(frozen=True)
class PublicThing:
    id: int  # registry id
    kind: str  # device | zone | station
    key: str  # pseudonym | zone id | station code
    name: str
    public: dict[str, Any]  # the public API's row of it
    quantities: tuple[int, ...]  # codes of the hourly series it publishes
    sensors: dict[int, str] = field(default_factory=dict)  # quantity code → sensor model or procedure
    point: tuple[float, float] | None = None  # (lat, lon): a device's cell centre, a station
    area: dict[str, Any] | None = None  # GeoJSON: a device's cell, a zone's polygon, a station's point


_MEASURES = {  # sensor model → quantities it measures (which model a device's datastream comes from)
    "SDS011": ("pm25", "pm10"), "PMS5003": ("pm1", "pm25", "pm10"), "PMS7003": ("pm1", "pm25", "pm10"),
    "SPS30": ("pm1", "pm25", "pm10"), "SEN5X": ("pm1", "pm25", "pm10", "temperature", "humidity"),
    "HPMA115": ("pm25", "pm10"), "NEXTPM": ("pm1", "pm25", "pm10"),
    "BME280": ("temperature", "humidity", "pressure"), "BMP280": ("temperature", "pressure"),
    "DHT22": ("temperature", "humidity"), "SHT31": ("temperature", "humidity"), "SHT3X": ("temperature", "humidity"),
    "SCD30": ("temperature", "humidity"), "MICS6814": ("no2",), "NO2-B43F": ("no2",),
}


def sensor_for(models: list[str], quantity: str) -> str:
    """The model of a device that measures `quantity` (its first model when none is known to)."""
    for model in models:
        if quantity in _MEASURES.get(model.upper(), ()):
            return model
    return models[0] if models else "unknown"


def _keys(conn: Connection, settings: Settings) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    device_rows = [(i, r) for i, r in devices.public_device_rows(conn, settings) if r["kind"] == "fixed"]
    return device_rows, zone_series.zone_list(conn, settings), stations.stations(conn, settings)


def registry_keys(conn: Connection, settings: Settings) -> list[tuple[str, str]]:
    """Every (kind, key) the registry must hold an id for: public things and sensor models."""
    device_rows, zones, station_rows = _keys(conn, settings)
    keys = [("device", r["pseudonym"]) for _, r in device_rows]
    keys += [("zone", z["id"]) for z in zones] + [("station", s["code"]) for s in station_rows]
    models = {m for _, r in device_rows for m in r["sensor_models"]} | {ZONE_PROCEDURE, STATION_PROCEDURE}
    return keys + [("sensor", m) for m in sorted(models)]


def sync_registry(conn: Connection, settings: Settings) -> int:
    """Register the ids of what is public now (the `readmodel.sta_ids` job)."""
    return registry.sync(conn, registry_keys(conn, settings))


def public_things(conn: Connection, settings: Settings) -> tuple[list[PublicThing], dict[str, int]]:
    """The public things that have an id (by id), and the sensor ids by model or procedure."""
    ids = registry.ids(conn)
    device_rows, zones, station_rows = _keys(conn, settings)
    quantities_of = {i: r["quantities"] for i, r in device_rows}
    out: list[PublicThing] = []
    for _, r in device_rows:
        if (thing_id := ids.get(("device", r["pseudonym"]))) is None:
            continue
        names = [q for q in r["quantities"] if q in QUANTITY_BY_NAME]
        c = r["coordinates"]
        out.append(PublicThing(
            thing_id, "device", r["pseudonym"], f"civicair sensor {r['pseudonym']}", r,
            tuple(sorted(QUANTITY_BY_NAME[q].code for q in names)),
            {QUANTITY_BY_NAME[q].code: sensor_for(r["sensor_models"], q) for q in names},
            (c["latitude"], c["longitude"]) if c else None,
            anonymise.cell_polygon(r["h3_cell"]) if r["h3_cell"] else None))
    members = zone_rollup.memberships(conn, settings)  # zones with at least k eligible devices
    geometries: dict[str, Any] = {r.id: r.geometry for r in conn.execute(statements.zone_geometries())}
    for z in zones:
        if (thing_id := ids.get(("zone", z["id"]))) is None:
            continue
        # a quantity fewer than k of the zone's devices measure has every hour suppressed: no series
        measuring = Counter(q for i in members.get(z["id"], ()) for q in quantities_of.get(i, ()))
        codes = tuple(sorted(QUANTITY_BY_NAME[q].code for q, n in measuring.items()
                             if q in QUANTITY_BY_NAME and n >= settings.k_anonymity))
        area = anonymise.cell_polygon(z["id"]) if z["kind"] == "h3" else geometries.get(z["id"])
        out.append(PublicThing(thing_id, "zone", z["id"], z["name"], z, codes, dict.fromkeys(codes, ZONE_PROCEDURE),
                               None, area))
    for s in station_rows:
        if (thing_id := ids.get(("station", s["code"]))) is None:
            continue
        codes = tuple(sorted(QUANTITY_BY_NAME[p].code for p in s["pollutants"] if p in QUANTITY_BY_NAME))
        c = s["coordinates"]
        point = (c["latitude"], c["longitude"]) if c else None
        out.append(PublicThing(thing_id, "station", s["code"], s["name"], s, codes,
                               dict.fromkeys(codes, STATION_PROCEDURE), point,
                               {"type": "Point", "coordinates": [point[1], point[0]]} if point else None))
    sensors = {key: i for (kind, key), i in ids.items() if kind == "sensor"}
    return sorted(out, key=lambda t: t.id), sensors


# --- the hourly series of a (thing, quantity) ------------------------------------------------------

def _range(lo: datetime, hi: datetime) -> TimeRange:
    return TimeRange(datetime_from=lo, datetime_to=hi)


def window(conn: Connection, settings: Settings, thing: PublicThing, code: int, lo: datetime,
           hi: datetime) -> list[dict[str, Any]]:
    """The published hourly rows of [lo, hi) (at most `max_range_days` long), ascending, in the
    public API's shape (the zone rows from the same stored or live path as `/v1/zones/…/series`)."""
    name = QUANTITY_BY_CODE[code].name
    if thing.kind == "zone":
        page = zone_series.zone_series_json(conn, settings, thing.key, name, _range(lo, hi), Interval.HOUR)
        return parse_rows(page.docs)
    if thing.kind == "device":
        return devices.device_series(conn, settings, thing.key, name, _range(lo, hi), Interval.HOUR)
    return stations.station_series(conn, settings, thing.key, name, _range(lo, hi), Interval.HOUR)


def count(conn: Connection, settings: Settings, thing: PublicThing, code: int, lo: datetime, hi: datetime) -> int:
    """How many rows `window` would give, without rendering them: the stored chunks' counts for a
    zone, an index count for a device."""
    name = QUANTITY_BY_CODE[code].name
    if thing.kind == "zone":
        return zone_series.zone_series_json(conn, settings, thing.key, name, _range(lo, hi), Interval.HOUR).count
    if thing.kind == "device":
        return devices.device_series_count(conn, settings, thing.key, name, _range(lo, hi))
    return len(window(conn, settings, thing, code, lo, hi))


def extent(conn: Connection, settings: Settings, thing: PublicThing, code: int) -> tuple[datetime, datetime] | None:
    """[lo, hi) holding every published hour of the series (from the underlying data's first
    and last hour; for a zone some hours at its edges may be suppressed), or None when empty."""
    if code not in thing.quantities:
        return None
    if thing.kind == "device":
        span = devices.device_series_extent(conn, settings, thing.key, QUANTITY_BY_CODE[code].name)
    elif thing.kind == "zone":
        ids = zone_series.zone_device_ids(conn, settings, thing.key)
        if len(ids) < settings.k_anonymity:
            return None
        first, last = conn.execute(statements.hourly_extent(ids, code)).one()
        span = (first, last) if first is not None else None
    else:
        first, last = conn.execute(statements.station_extent(thing.key, code)).one()
        span = (first, last) if first is not None else None
    if span is None or span[0] is None:
        return None
    return span[0], span[1] + HOUR


def hour_values(conn: Connection, settings: Settings, thing: PublicThing, code: int, lo: datetime,
                hi: datetime) -> sa.Select[Any]:
    """The published hours of [lo, hi) as an SQL relation (`statements._hour_values` columns):
    for a zone the live aggregation, the path every stored row was rendered from."""
    if thing.kind == "zone":
        ids = zone_series.zone_device_ids(conn, settings, thing.key)
        return statements.zone_published_hours([(thing.key, i) for i in ids], code, lo, hi, settings.k_anonymity)
    if thing.kind == "device":
        device_id = devices.device_id_of(conn, settings, thing.key)
        return statements.device_published_hours(device_id, code, lo, hi)
    return statements.station_published_hours(thing.key, code, lo, hi)
