"""Privacy rules (pure): trips, plausible movement, end buffers, privacy zones, per-trip cell-hours,
H3 snapping, polygons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import h3
from civicair.readmodel.anonymise import (
    Point,
    PrivacyZone,
    TripCellHour,
    cell_polygon,
    filter_trip,
    haversine_m,
    parse_privacy_zones,
    plausible_points,
    point_in_polygon,
    snap_to_cell,
    split_trips,
    trip_cell_hours,
)
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)
M_PER_DEG_LAT = 111_195.0


SPEED = 45 / 3.6  # m/s, the default plausible maximum


def track(n: int, step_m: float = 50.0, start: datetime = T0, lat0: float = 48.58,
          lon0: float = 7.75, every: timedelta = timedelta(seconds=12)) -> list[Point]:
    """A straight northward track, one point every `every`, `step_m` apart, PM2.5 = its index."""
    return [Point(start + i * every, lat0 + i * step_m / M_PER_DEG_LAT, lon0, {2: float(i)}) for i in range(n)]


def test_haversine_matches_a_degree_of_latitude() -> None:
    assert math.isclose(haversine_m(48.0, 7.0, 49.0, 7.0), M_PER_DEG_LAT, rel_tol=1e-3)


def test_gap_over_ten_minutes_starts_a_new_trip() -> None:
    a = track(3)
    b = track(3, start=a[-1].time + timedelta(minutes=10, seconds=1))
    c = track(2, start=b[-1].time + timedelta(minutes=10))  # exactly 10 min: same trip as b
    trips = split_trips(a + b + c)
    assert [len(t) for t in trips] == [3, 5]


def test_points_within_200_m_of_trip_start_and_end_are_dropped() -> None:
    trip = track(21, step_m=60.0)  # 0 .. 1200 m
    kept = filter_trip(trip)
    distances = [round(haversine_m(p.lat, p.lon, trip[0].lat, trip[0].lon)) for p in kept]
    assert distances == list(range(240, 961, 60))


def test_points_inside_a_privacy_zone_are_dropped() -> None:
    trip = track(41, step_m=50.0)  # 0 .. 2000 m
    middle = trip[20]
    zone = PrivacyZone(middle.lat, middle.lon, 120.0)
    kept = filter_trip(trip, [zone])
    assert all(haversine_m(p.lat, p.lon, middle.lat, middle.lon) > 120.0 for p in kept)
    assert len(filter_trip(trip)) - len(kept) == 5  # 1000 m ± 100 m: 900..1100 → 5 points


def test_short_trip_publishes_nothing() -> None:
    assert filter_trip(track(8, step_m=50.0)) == []  # 350 m trip: every point within 200 m of an end


def test_malformed_privacy_zones_are_ignored() -> None:
    zones = parse_privacy_zones([{"lat": 48.5, "lon": 7.7, "radius_m": 300}, {"lat": "x"}, None, {"lon": 1}])
    assert zones == (PrivacyZone(48.5, 7.7, 300.0),)
    assert parse_privacy_zones(None) == ()


def test_a_trip_becomes_sums_per_quantity_hour_and_cell_of_its_middle() -> None:
    trip = track(41, step_m=50.0)  # 2 km northward in 8 min
    rows = trip_cell_hours(trip, (), 9, max_speed_mps=SPEED, max_cells_per_hour=120)
    kept = filter_trip(trip)
    assert sum(r.n for r in rows) == len(kept)
    assert math.isclose(sum(r.sum for r in rows), sum(p.values[2] for p in kept))
    assert {r.cell for r in rows} == {snap_to_cell(p.lat, p.lon, 9) for p in kept}
    assert all(r.quantity == 2 and r.hour == T0 and r.min <= r.max for r in rows)


def test_positions_without_values_shape_the_trip_but_publish_nothing() -> None:
    trip = [Point(p.time, p.lat, p.lon, {} if i % 2 else p.values) for i, p in enumerate(track(41))]
    rows = trip_cell_hours(trip, (), 9, max_speed_mps=SPEED, max_cells_per_hour=120)
    assert sum(r.n for r in rows) == len([p for p in filter_trip(trip) if p.values])


def test_hours_of_a_trip_are_separate_rows() -> None:
    trip = track(41, start=T0 - timedelta(minutes=4))  # 08:56 .. 09:04
    rows = trip_cell_hours(trip, (), 9, max_speed_mps=SPEED, max_cells_per_hour=120)
    assert {r.hour.hour for r in rows} == {7, 8}


def test_a_grid_pushed_at_once_is_implausible_and_publishes_nothing() -> None:
    # the sybil of issue 19: a dense grid of points in a few seconds, over the victim's route
    grid = [Point(T0 + timedelta(seconds=i // 10), 48.58 + (i % 10) * 0.003, 7.75 + (i // 10) * 0.004, {2: 1.0})
            for i in range(100)]
    assert len(plausible_points(grid, SPEED)) <= 10
    assert trip_cell_hours(grid, (), 9, max_speed_mps=SPEED, max_cells_per_hour=120) == []


def test_a_track_faster_than_a_bike_keeps_only_its_start() -> None:
    fast = track(30, step_m=500.0)  # 500 m every 12 s: 150 km/h
    assert len(plausible_points(fast, SPEED)) <= 1
    slow = track(30, step_m=100.0)  # 30 km/h
    assert plausible_points(slow, SPEED) == slow


def test_a_bad_first_fix_and_a_glitch_are_dropped_not_the_trip() -> None:
    trip = track(41)
    far = Point(trip[0].time, 48.70, 7.90, {2: 99.0})  # cold-start fix 15 km away
    glitch = Point(trip[20].time + timedelta(seconds=1), 48.40, 7.60, {2: 99.0})
    noisy = [far, *trip[1:21], glitch, *trip[21:]]
    kept = plausible_points(noisy, SPEED)
    assert far not in kept and glitch not in kept and len(kept) == 40


def test_an_hour_in_too_many_cells_is_left_out() -> None:
    trip = track(41, step_m=150.0)  # 6 km in 8 min: within the speed limit, ~20 cells
    rows = trip_cell_hours(trip, (), 9, max_speed_mps=SPEED * 2, max_cells_per_hour=120)
    cells = len({r.cell for r in rows})
    assert cells > 5
    assert trip_cell_hours(trip, (), 9, max_speed_mps=SPEED * 2, max_cells_per_hour=cells - 1) == []


def test_buffers_also_lie_around_the_raw_ends() -> None:
    # the first fix is implausible (dropped), yet points near it are still no trip end to publish
    trip = track(41)
    home = trip[3]  # 150 m from where the ride really began
    bad = Point(T0 - timedelta(seconds=12), 48.70, 7.90, {2: 1.0})
    rows = trip_cell_hours([bad, *trip], (), 9, max_speed_mps=SPEED, max_cells_per_hour=120)
    assert rows and all(r.cell != snap_to_cell(bad.lat, bad.lon, 9) for r in rows)
    assert sum(r.n for r in rows) == len(filter_trip(trip))
    assert home not in filter_trip(trip)


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


def test_trip_cell_hour_is_frozen() -> None:
    c = TripCellHour(2, T0, "x", 1, 1.0, 1.0, 1.0)
    try:
        c.n = 5  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("TripCellHour must be immutable")
