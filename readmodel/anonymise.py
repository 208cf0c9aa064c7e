"""Privacy rules for open data (docs/privacy.md#rules-at-a-glance). Pure: no I/O, no settings, no clock.

- Fixed devices are shown at an H3 cell (`snap_to_cell`), never at their exact position.
- Mobile points: split per device into trips (a gap > `TRIP_GAP` starts a new trip), drop the
  points within `END_BUFFER_M` of each trip's first and last point and inside the owner's
  privacy zones (`filter_mobile_points`); aggregate to (H3 cell, hour) (`aggregate_cells`) and
  publish only cell-hours with at least k distinct devices (`suppress_small_cells`).
- The pseudonym itself is `core.security.pseudonym`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3

TRIP_GAP = timedelta(minutes=10)
END_BUFFER_M = 200.0
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class PrivacyZone:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Point:
    device_id: int
    time: datetime
    lat: float
    lon: float
    value: float | None  # None: a position without a publishable value (other quantity, flagged)


@dataclass(frozen=True, slots=True)
class CellHour:
    cell: str
    hour: datetime
    n_devices: int
    n: int
    mean: float
    min: float
    max: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def snap_to_cell(lat: float, lon: float, resolution: int) -> str:
    return str(h3.latlng_to_cell(lat, lon, resolution))


def cell_centre(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return round(lat, 6), round(lon, 6)


def cell_polygon(cell: str) -> dict[str, Any]:
    """GeoJSON Polygon of an H3 cell (lon, lat order, closed ring)."""
    ring = [[round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def parse_privacy_zones(raw: Any) -> tuple[PrivacyZone, ...]:
    """`devices.privacy_zones` JSON → zones; malformed entries are ignored (and so never shrink
    the protection: a device with a malformed zone is treated as having that zone nowhere)."""
    out = []
    for z in raw or ():
        try:
            out.append(PrivacyZone(float(z["lat"]), float(z["lon"]), float(z.get("radius_m", 0))))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def split_trips(points: Sequence[Point], gap: timedelta = TRIP_GAP) -> list[list[Point]]:
    """Points of ONE device, sorted by time → trips (a gap > `gap` starts a new trip)."""
    trips: list[list[Point]] = []
    for p in points:
        if trips and p.time - trips[-1][-1].time <= gap:
            trips[-1].append(p)
        else:
            trips.append([p])
    return trips


def in_privacy_zone(p: Point, zones: Iterable[PrivacyZone]) -> bool:
    return any(haversine_m(p.lat, p.lon, z.lat, z.lon) <= z.radius_m for z in zones)


def filter_trip(trip: Sequence[Point], zones: Sequence[PrivacyZone] = (),
                buffer_m: float = END_BUFFER_M) -> list[Point]:
    """Drop points within `buffer_m` of the trip's start or end, or inside a privacy zone."""
    if not trip:
        return []
    first, last = trip[0], trip[-1]
    return [
        p for p in trip
        if haversine_m(p.lat, p.lon, first.lat, first.lon) > buffer_m
        and haversine_m(p.lat, p.lon, last.lat, last.lon) > buffer_m
        and not in_privacy_zone(p, zones)
    ]


def filter_mobile_points(points: Iterable[Point],
                         zones_by_device: Mapping[int, Sequence[PrivacyZone]]) -> list[Point]:
    """All devices' points → the publishable ones (with a value), per the rules above."""
    by_device: dict[int, list[Point]] = {}
    for p in points:
        by_device.setdefault(p.device_id, []).append(p)
    kept: list[Point] = []
    for device_id, pts in by_device.items():
        pts.sort(key=lambda p: p.time)
        zones = zones_by_device.get(device_id, ())
        for trip in split_trips(pts):
            kept.extend(p for p in filter_trip(trip, zones) if p.value is not None)
    return kept


def aggregate_cells(points: Iterable[Point], resolution: int) -> list[CellHour]:
    """(H3 cell, hour) aggregates; `n_devices` counts distinct devices."""
    groups: dict[tuple[str, datetime], list[Point]] = {}
    for p in points:
        key = (snap_to_cell(p.lat, p.lon, resolution), p.time.replace(minute=0, second=0, microsecond=0))
        groups.setdefault(key, []).append(p)
    out = []
    for (cell, hour), pts in sorted(groups.items()):
        values = [p.value for p in pts if p.value is not None]
        out.append(CellHour(cell, hour, len({p.device_id for p in pts}), len(values),
                            sum(values) / len(values), min(values), max(values)))
    return out


def suppress_small_cells(cells: Iterable[CellHour], k: int) -> list[CellHour]:
    """Only the cell-hours with at least k distinct devices."""
    return [c for c in cells if c.n_devices >= k]


def point_in_polygon(lat: float, lon: float, geometry: Mapping[str, Any]) -> bool:
    """GeoJSON Polygon / MultiPolygon containment (even-odd rule, holes respected)."""
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry.get("coordinates") or []]
    elif kind == "MultiPolygon":
        polygons = geometry.get("coordinates") or []
    else:
        return False
    for rings in polygons:
        if rings and _in_ring(lon, lat, rings[0]) and not any(_in_ring(lon, lat, hole) for hole in rings[1:]):
            return True
    return False


def _in_ring(x: float, y: float, ring: Sequence[Sequence[float]]) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % n][0], ring[(i + 1) % n][1]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside
