"""Privacy rules (pure): trips, end buffers, privacy zones, k-anonymity, H3 snapping, polygons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import h3
from civicair.readmodel.anonymise import (
    CellHour,
    Point,
    PrivacyZone,
    aggregate_cells,
    cell_polygon,
    filter_mobile_points,
    filter_trip,
    haversine_m,
    parse_privacy_zones,
    point_in_polygon,
    snap_to_cell,
    split_trips,
    suppress_small_cells,
)
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
M_PER_DEG_LAT = 111_195.0


def track(device: int, n: int, step_m: float = 50.0, start: datetime = T0, lat0: float = 48.58,
          lon0: float = 7.75, every: timedelta = timedelta(seconds=12)) -> list[Point]:
    """A straight northward track, one point every `every`, `step_m` apart."""
    return [Point(device, start + i * every, lat0 + i * step_m / M_PER_DEG_LAT, lon0, float(i)) for i in range(n)]


def test_haversine_matches_a_degree_of_latitude() -> None:
    assert math.isclose(haversine_m(48.0, 7.0, 49.0, 7.0), M_PER_DEG_LAT, rel_tol=1e-3)


def test_gap_over_ten_minutes_starts_a_new_trip() -> None:
    a = track(1, 3)
    b = track(1, 3, start=a[-1].time + timedelta(minutes=10, seconds=1))
    c = track(1, 2, start=b[-1].time + timedelta(minutes=10))  # exactly 10 min: same trip as b
    trips = split_trips(a + b + c)
    assert [len(t) for t in trips] == [3, 5]


def test_points_within_200_m_of_trip_start_and_end_are_dropped() -> None:
    trip = track(1, 21, step_m=60.0)  # 0 .. 1200 m
    kept = filter_trip(trip)
    distances = [round(haversine_m(p.lat, p.lon, trip[0].lat, trip[0].lon)) for p in kept]
    assert distances == list(range(240, 961, 60))


def test_points_inside_a_privacy_zone_are_dropped() -> None:
    trip = track(1, 41, step_m=50.0)  # 0 .. 2000 m
    middle = trip[20]
    zone = PrivacyZone(middle.lat, middle.lon, 120.0)
    kept = filter_trip(trip, [zone])
    assert all(haversine_m(p.lat, p.lon, middle.lat, middle.lon) > 120.0 for p in kept)
    assert len(filter_trip(trip)) - len(kept) == 5  # 1000 m ± 100 m: 900..1100 → 5 points


def test_short_trip_publishes_nothing() -> None:
    assert filter_trip(track(1, 8, step_m=50.0)) == []  # 350 m trip: every point within 200 m of an end


def test_filter_mobile_points_splits_per_device_and_keeps_only_values() -> None:
    a = track(1, 21)
    b = [Point(p.device_id + 1, p.time, p.lat, p.lon, None if i % 2 else p.value) for i, p in enumerate(track(1, 21))]
    kept = filter_mobile_points(b + a, {})
    assert {p.device_id for p in kept} == {1, 2}
    assert all(p.value is not None for p in kept)
    assert len([p for p in kept if p.device_id == 1]) == len(filter_trip(a))
    assert len([p for p in kept if p.device_id == 2]) < len(filter_trip(a))


def test_malformed_privacy_zones_are_ignored() -> None:
    zones = parse_privacy_zones([{"lat": 48.5, "lon": 7.7, "radius_m": 300}, {"lat": "x"}, None, {"lon": 1}])
    assert zones == (PrivacyZone(48.5, 7.7, 300.0),)
    assert parse_privacy_zones(None) == ()


def test_cells_count_distinct_devices_and_suppress_below_k() -> None:
    pts = [Point(d, T0 + timedelta(minutes=m), 48.58, 7.75, 10.0 * d) for d in (1, 2, 3) for m in (1, 2)]
    pts += [Point(4, T0 + timedelta(minutes=5), 48.70, 7.75, 1.0)]
    cells = aggregate_cells(pts, 9)
    by_cell = {c.cell: c for c in cells}
    main = by_cell[snap_to_cell(48.58, 7.75, 9)]
    assert (main.n_devices, main.n, main.mean, main.min, main.max) == (3, 6, 20.0, 10.0, 30.0)
    assert [c.cell for c in suppress_small_cells(cells, 3)] == [main.cell]
    assert len(suppress_small_cells(cells, 1)) == 2


def test_hours_are_separate_cells() -> None:
    pts = [Point(d, T0 + timedelta(minutes=59 + d), 48.58, 7.75, 1.0) for d in (0, 1, 2)]
    cells = aggregate_cells(pts, 9)
    assert [(c.hour.hour, c.n_devices) for c in cells] == [(8, 1), (9, 2)]
    assert suppress_small_cells(cells, 3) == []


@given(st.floats(-80, 80), st.floats(-179, 179))
def test_snapped_cell_contains_the_point_and_has_the_resolution(lat: float, lon: float) -> None:
    cell = snap_to_cell(lat, lon, 9)
    assert h3.get_resolution(cell) == 9
    assert h3.latlng_to_cell(lat, lon, 9) == cell


def test_cell_polygon_is_a_closed_ring_around_the_centre() -> None:
    cell = snap_to_cell(48.58, 7.75, 9)
    poly = cell_polygon(cell)
    ring = poly["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 7
    lat, lon = h3.cell_to_latlng(cell)
    assert point_in_polygon(lat, lon, poly)
    assert not point_in_polygon(lat + 0.01, lon, poly)


def test_point_in_polygon_respects_holes_and_multipolygons() -> None:
    square = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    poly = {"type": "Polygon", "coordinates": [square, hole]}
    assert point_in_polygon(2, 2, poly)
    assert not point_in_polygon(5, 5, poly)
    assert not point_in_polygon(11, 5, poly)
    multi = {"type": "MultiPolygon", "coordinates": [[square], [[[20, 20], [30, 20], [30, 30], [20, 20]]]]}
    assert point_in_polygon(21, 25, multi)  # lat 21, lon 25
    assert not point_in_polygon(5, 5, {"type": "Point", "coordinates": [5, 5]})


def test_cellhour_is_frozen() -> None:
    c = CellHour("x", T0, 3, 1, 1.0, 1.0, 1.0)
    try:
        c.n_devices = 5  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("CellHour must be immutable")
