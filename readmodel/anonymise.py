"""Privacy rules for open data (docs/privacy.md#rules-at-a-glance). Pure: no I/O, no settings, no clock.

- Fixed devices are shown at an H3 cell (`snap_to_cell`), never at their exact position.
- Mobile points of one device: split into whole trips (a gap > `TRIP_GAP` starts a new trip;
  `split_trips`), then per trip (`trip_cell_hours`): implausible moves dropped
  (`plausible_points`), points within `END_BUFFER_M` of the trip's ends and inside the owner's
  privacy zones dropped, an hour of the trip in more than `max_cells_per_hour` cells dropped, and
  the rest summed per (quantity, hour, H3 cell). The k-anonymous public cell-hours are aggregated
  from these rows in SQL (`statements.mobile_cells_page`).
- The pseudonym itself is `core.security.pseudonym`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import h3

TRIP_GAP = timedelta(minutes=10)
END_BUFFER_M = 200.0
GPS_TOLERANCE_M = 50.0  # a move this long is plausible whatever the time between the points
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class PrivacyZone:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Point:
    """One located time of a mobile device: its position and the unflagged values measured then
    (quantity code → value; empty for a position alone: flagged values, no value at all)."""

    time: datetime
    lat: float
    lon: float
    values: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TripCellHour:
    """The kept values of one quantity of one trip in one (hour, H3 cell)."""

    quantity: int
    hour: datetime
    cell: str
    n: int
    sum: float
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


def _reachable(a: Point, b: Point, max_speed_mps: float, tolerance_m: float) -> bool:
    seconds = abs((b.time - a.time).total_seconds())
    return haversine_m(a.lat, a.lon, b.lat, b.lon) <= max_speed_mps * seconds + tolerance_m


def plausible_points(trip: Sequence[Point], max_speed_mps: float,
                     tolerance_m: float = GPS_TOLERANCE_M) -> list[Point]:
    """The points of a trip a vehicle could have followed: each reachable from the previous kept
    one at `max_speed_mps` (plus `tolerance_m` of GPS noise). The first kept point is the first
    one its successor can be reached from, so a bad first fix does not discard the trip; a point
    left alone at the end of a trip is kept only when reachable. A dense grid of points pushed at
    once, or a "track" faster than any bike, keeps almost nothing."""
    kept: list[Point] = []
    for i, p in enumerate(trip):
        if kept:
            if _reachable(kept[-1], p, max_speed_mps, tolerance_m):
                kept.append(p)
        elif i + 1 < len(trip) and _reachable(p, trip[i + 1], max_speed_mps, tolerance_m):
            kept.append(p)
    return kept


def filter_trip(trip: Sequence[Point], zones: Sequence[PrivacyZone] = (), buffer_m: float = END_BUFFER_M,
                ends: Sequence[Point] = ()) -> list[Point]:
    """Drop points within `buffer_m` of the trip's first or last point (and of the other `ends`
    given), or inside a privacy zone."""
    if not trip:
        return []
    anchors = [trip[0], trip[-1], *ends]
    return [
        p for p in trip
        if all(haversine_m(p.lat, p.lon, a.lat, a.lon) > buffer_m for a in anchors)
        and not in_privacy_zone(p, zones)
    ]


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def trip_cell_hours(trip: Sequence[Point], zones: Sequence[PrivacyZone], resolution: int, *,
                    max_speed_mps: float, max_cells_per_hour: int,
                    buffer_m: float = END_BUFFER_M) -> list[TripCellHour]:
    """One whole trip → its publishable (quantity, hour, cell) sums. Buffers lie around the raw
    trip's ends and around the plausible part's ends, so neither a bad fix at the start nor a
    dropped tail moves them off the places the trip really began and ended."""
    plausible = plausible_points(trip, max_speed_mps)
    if not plausible:
        return []
    kept = filter_trip(plausible, zones, buffer_m, ends=(trip[0], trip[-1]))
    by_hour: dict[datetime, list[tuple[str, Point]]] = {}
    for p in kept:
        if p.values:
            by_hour.setdefault(hour_of(p.time), []).append((snap_to_cell(p.lat, p.lon, resolution), p))
    out: list[TripCellHour] = []
    for hour, located in sorted(by_hour.items()):
        if len({cell for cell, _ in located}) > max_cells_per_hour:
            continue  # implausibly many places in one hour: the whole hour of this trip is left out
        groups: dict[tuple[int, str], list[float]] = {}
        for cell, p in located:
            for code, value in p.values.items():
                groups.setdefault((code, cell), []).append(value)
        out.extend(TripCellHour(code, hour, cell, len(v), math.fsum(v), min(v), max(v))
                   for (code, cell), v in sorted(groups.items()))
    return out


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
