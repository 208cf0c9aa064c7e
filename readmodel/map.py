"""The map's latest values (docs/open-data.md#the-map-endpoint): every administrative zone, every
H3 cell with a published hour, the bike cells and the reference stations, each with its last 48
hourly values and their index bands, in one JSON document.

Only what the public API publishes: zone-hours and cell-hours under the same k-anonymity rule as
the zone series (`statements.zone_hour_values`), mobile cells from `mobile.mobile_cells`, station
series from `stations`; H3 cells, never positions.

The document is rendered once per (quantity, scale) by the `readmodel.map` job and stored gzip-
compressed in `map_snapshots` (`refresh_snapshots`), so the endpoint reads one row
(`latest_snapshot`); with no current snapshot (no job ran this hour) it is built on the request.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import xxhash
from civicair.core import tables
from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.settings import Settings
from civicair.readmodel import anonymise, indices, mobile, statements, stations
from civicair.readmodel import zone_series as zone_reads
from civicair.readmodel.cells import public_cell
from civicair.readmodel.params import Interval, TimeRange
from civicair.readmodel.publication import qa_cutoff
from civicair.readmodel.render import rounded
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

MAP_HOURS = 48
VERSION = 1  # bump when the document changes: stored snapshots are then rebuilt on request
MAP_DECIMALS = 1  # values on the map; bands are computed on the published (0.001) value


@dataclass(frozen=True)
class Layer:
    """A map layer: feature ids, their properties (name, kind, url, …), geometry and hourly values."""

    features: list[dict[str, Any]]  # {"id", "geometry", "properties"} without values
    values: list[list[float | None]]  # per feature, MAP_HOURS published values (None: none)


@dataclass(frozen=True)
class MapValues:
    quantity: str
    hours: list[datetime]  # the start of each hour, oldest first
    zones: Layer
    bike: Layer
    stations: Layer


@dataclass(frozen=True)
class Snapshot:
    body_gzip: bytes
    raw_size: int
    etag: str
    hour_end: datetime
    built_at: datetime


def window(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the map: the last MAP_HOURS hours, the current one included."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=MAP_HOURS), end


def _series(rows: Iterable[tuple[Any, datetime, float | None]], start: datetime) -> dict[Any, list[float | None]]:
    out: dict[Any, list[float | None]] = {}
    for key, hour, value in rows:
        i = int((hour - start).total_seconds() // 3600)
        if 0 <= i < MAP_HOURS:
            out.setdefault(key, [None] * MAP_HOURS)[i] = value
    return out


def _zone_layer(conn: Connection, settings: Settings, code: int, start: datetime, end: datetime) -> Layer:
    cutoff = qa_cutoff(settings)
    pairs = [(r.zone_id, r.device_id) for r in conn.execute(statements.published_zone_members(cutoff))]
    cells: dict[str, int] = {}
    for r in zone_reads.eligible_fixed(conn, cutoff):
        cell = public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution)
        if cell:
            pairs.append((cell, r.id))
            cells[cell] = cells.get(cell, 0) + 1
    values: dict[Any, list[float | None]] = {}
    if pairs:
        rows = conn.execute(statements.zone_hour_values(pairs, code, start, end, settings.k_anonymity))
        values = _series(((r.zone_id, r.hour, rounded(r.calibrated) if r.calibrated is not None
                           else rounded(r.s / r.n)) for r in rows), start)
    members: dict[str, int] = {}
    for zone_id, _ in pairs:
        members[zone_id] = members.get(zone_id, 0) + 1
    features, series = [], []
    for z in zone_reads.zone_list(conn, settings):
        if z["kind"] == "h3":
            continue  # below, only the cells with a published hour
        geometry = conn.execute(statements.zone_geometry(z["id"])).scalar()
        if geometry is None:
            continue
        features.append({"id": z["id"], "geometry": geometry,
                         "properties": {"id": z["id"], "kind": "admin", "name": z["name"],
                                        "n_devices": members.get(z["id"], 0), "url": f"/zones/{z['id']}"}})
        series.append(values.get(z["id"], [None] * MAP_HOURS))
    for cell in sorted(cells):
        if cell in values:
            features.append({"id": cell, "geometry": anonymise.cell_polygon(cell),
                             "properties": {"id": cell, "kind": "h3", "name": f"H3 {cell}",
                                            "n_devices": cells[cell], "url": f"/zones/{cell}"}})
            series.append(values[cell])
    return Layer(features, series)


def _bike_layer(conn: Connection, settings: Settings, quantity: str, start: datetime, end: datetime) -> Layer:
    rows = mobile.mobile_cells(conn, settings, quantity, TimeRange(datetime_from=start, datetime_to=end))
    values = _series(((r["h3_cell"], r["period"]["datetime_from"], rounded(r["value"])) for r in rows), start)
    features = [{"id": cell, "geometry": anonymise.cell_polygon(cell),
                 "properties": {"id": cell, "kind": "bike", "name": f"H3 {cell}", "url": None}}
                for cell in sorted(values)]
    return Layer(features, [values[f["id"]] for f in features])


def _station_layer(conn: Connection, settings: Settings, quantity: str, start: datetime, end: datetime) -> Layer:
    features, series = [], []
    for st in stations.stations(conn, settings):
        if st["coordinates"] is None:
            continue
        rows = stations.station_series(conn, settings, st["code"], quantity,
                                       TimeRange(datetime_from=start, datetime_to=end), Interval.HOUR)
        c = st["coordinates"]
        features.append({"id": st["code"], "geometry": {"type": "Point", "coordinates": [c["longitude"], c["latitude"]]},
                         "properties": {"id": st["code"], "kind": "station", "name": st["name"],
                                        "network": st["network"], "attribution": st["attribution"],
                                        "url": f"/stations/{st['code']}"}})
        series.append(_series(((0, r["period"]["datetime_from"], rounded(r["value"])) for r in rows),
                              start).get(0, [None] * MAP_HOURS))
    return Layer(features, series)


def map_values(conn: Connection, settings: Settings, quantity: str, now: datetime | None = None) -> MapValues:
    """Every layer's published values over the map's window ending in the hour of `now`."""
    info = QUANTITY_BY_NAME[quantity]
    start, end = window(now or datetime.now(UTC))
    return MapValues(
        quantity=quantity, hours=[start + timedelta(hours=i) for i in range(MAP_HOURS)],
        zones=_zone_layer(conn, settings, info.code, start, end),
        bike=_bike_layer(conn, settings, quantity, start, end),
        stations=_station_layer(conn, settings, quantity, start, end))


def _collection(layer: Layer, scale: indices.Scale, quantity: str) -> dict[str, Any]:
    features = []
    for f, vals in zip(layer.features, layer.values, strict=True):
        props = {**f["properties"], "values": [None if v is None else round(v, MAP_DECIMALS) for v in vals],
                 "bands": [indices.band(scale, quantity, v) for v in vals]}
        features.append({"type": "Feature", "id": f["id"], "geometry": f["geometry"], "properties": props})
    return {"type": "FeatureCollection", "features": features}


def render(values: MapValues, scale_id: str, settings: Settings, built_at: datetime) -> bytes:
    """The map document (JSON) of `values` on the scale `scale_id`."""
    scale = indices.scale_of(scale_id)
    info = QUANTITY_BY_NAME[values.quantity]
    meta = {"quantity": values.quantity, "unit": info.unit, "scale": scale.id, "scale_name": scale.name_en,
            "hours": values.hours, "hour_end": values.hours[-1] + timedelta(hours=1), "built_at": built_at,
            "k_anonymity": settings.k_anonymity, "h3_resolution": settings.h3_resolution,
            "licence": settings.licence_name, "licence_url": settings.licence_url,
            "attribution": settings.attribution, "version": VERSION,
            "note": "zone and cell hours with fewer than k distinct devices are not published (null)"}
    return orjson.dumps({"meta": meta, "zones": _collection(values.zones, scale, values.quantity),
                         "bike": _collection(values.bike, scale, values.quantity),
                         "stations": _collection(values.stations, scale, values.quantity)})


def _snapshot(body: bytes, hour_end: datetime, built_at: datetime) -> Snapshot:
    return Snapshot(gzip.compress(body, 6), len(body), 'W/"' + xxhash.xxh3_128_hexdigest(body) + '"', hour_end,
                    built_at)


def refresh_snapshots(conn: Connection, settings: Settings, now: datetime | None = None,
                      quantities: Iterable[str] = indices.QUANTITIES) -> int:
    """Render and store every (quantity, scale) snapshot; returns how many were written."""
    now = now or datetime.now(UTC)
    n = 0
    for quantity in quantities:
        values = map_values(conn, settings, quantity, now)
        hour_end = values.hours[-1] + timedelta(hours=1)
        for scale_id in indices.SCALES:
            snap = _snapshot(render(values, scale_id, settings, now), hour_end, now)
            row = {"quantity": QUANTITY_BY_NAME[quantity].code, "scale": scale_id, "hour_end": hour_end,
                   "built_at": now, "version": VERSION, "etag": snap.etag, "raw_size": snap.raw_size,
                   "body": snap.body_gzip}
            stmt = insert(tables.map_snapshots).values(row)
            conn.execute(stmt.on_conflict_do_update(index_elements=["quantity", "scale"],
                                                    set_={k: stmt.excluded[k] for k in row if k not in ("quantity", "scale")}))
            n += 1
    return n


def latest_snapshot(conn: Connection, settings: Settings, quantity: str, scale_id: str,
                    now: datetime | None = None) -> Snapshot:
    """The stored snapshot when it covers the current hour, else one built now (not stored)."""
    now = now or datetime.now(UTC)
    indices.scale_of(scale_id)
    _, end = window(now)
    row = conn.execute(statements.map_snapshot(QUANTITY_BY_NAME[quantity].code, scale_id)).first()
    if row is not None and row.version == VERSION and row.hour_end >= end:
        return Snapshot(bytes(row.body), row.raw_size, row.etag, row.hour_end, row.built_at)
    values = map_values(conn, settings, quantity, now)
    return _snapshot(render(values, scale_id, settings, now), end, now)

