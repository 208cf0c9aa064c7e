"""A known fixture for export tests, inserted with SQL: fixed devices in one admin zone, mobile
devices on one route, reference station readings. What the privacy rules must suppress is
designed in (see the comments) so the tests can check it never reaches a file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import h3
import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.engine import Engine

from tests.seed import add_device, add_readings, build_hourly, reading, refresh_mobile

DAY = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, tzinfo=UTC)
PM25, PM10, NO2 = 2, 3, 4
ZONE = "67482"
ZONE_GEOMETRY = {"type": "Polygon", "coordinates": [[[7.68, 48.50], [7.84, 48.50], [7.84, 48.64], [7.68, 48.64], [7.68, 48.50]]]}


@dataclass
class Fixture:
    public_fixed: dict[str, str]  # label → pseudonym (consenting fixed devices: A, B, C, E)
    hidden: dict[str, str]  # label → pseudonym of devices that must never appear (D: no consent)
    mobile: dict[str, str]
    secrets: tuple[str, ...]  # private strings that must never appear in a file
    positions: set[tuple[float, float]]  # exact private (lat, lon) of fixed devices, to 4 decimals
    route_ends: tuple[str, ...]  # H3 cells of the trips' start and end points (within 200 m)


def _hour_of(t0: datetime) -> Any:
    def _h(hour: int, minute: int = 0) -> datetime:
        return t0 + timedelta(hours=hour, minutes=minute)

    return _h


def seed(engine: Engine, day: date = DAY, more_days: Sequence[date] = ()) -> Fixture:
    """The fixture's devices, stations and zone, and the readings of `day` (the same pattern again
    on each of `more_days`: a history the freshness tests walk through)."""
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.zones).values(id=ZONE, name="Strasbourg", kind="admin", geometry=ZONE_GEOMETRY))
        fixed: dict[str, tuple[int, str]] = {}
        # A, B, C: consenting reliable fixed devices ~1 km apart (distinct H3 cells: every H3 zone
        # has one device, so all H3 zone-hours are suppressed); D: no consent; E: unreliable.
        for i, (label, consent, status) in enumerate(
            [("A", True, "reliable"), ("B", True, "reliable"), ("C", True, "reliable"),
             ("D", False, "reliable"), ("E", True, "unreliable")]
        ):
            fixed[label] = add_device(conn, f"fx-{label}", lat=48.5734 + 0.01 * i, lon=7.7521 + 0.01 * i,
                                      consent=consent, status=status, name=f"secret-name-{label}",
                                      dev_eui=f"70b3d57ba000{i:04x}", owner_email=f"owner{label}@example.org")
            conn.execute(sa.insert(tables.device_zones).values(device_id=fixed[label][0], zone_id=ZONE))
        # Mobile: 3 consenting devices ride the same 4.4 km route at 10:00 (published in the
        # middle, not within 200 m of the ends); at 12:00 two consenting devices plus one without
        # consent ride it again → fewer than k eligible devices → suppressed.
        mobile: dict[str, tuple[int, str]] = {}
        for label, consent in (("M1", True), ("M2", True), ("M3", True), ("M4", False)):
            mobile[label] = add_device(conn, f"mb-{label}", kind="mobile", consent=consent,
                                       name=f"secret-bike-{label}")
        rows = []
        starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (day, *more_days)]
        for t0 in starts:
            _h = _hour_of(t0)
            # 10:00 → A, B, C report: the zone-hour has 3 devices and is published.
            for label, value in (("A", 10.0), ("B", 12.0), ("C", 14.0)):
                rows += [reading(fixed[label][0], _h(10, 5), PM25, value), reading(fixed[label][0], _h(10, 35), PM25, value + 0.5)]
            # 11:00 → A, B (+ D no consent, + E unreliable): 2 eligible devices → suppressed.
            for label in ("A", "B", "D", "E"):
                rows.append(reading(fixed[label][0], _h(11, 10), PM25, 30.0))
            # the previous and next day: outside the exported period
            rows.append(reading(fixed["A"][0], _h(-1), PM25, 99.0))
            rows.append(reading(fixed["A"][0], _h(24), PM25, 99.0))
            # a flagged value inside the published hour is excluded from the means
            rows.append(reading(fixed["A"][0], _h(10, 50), PM25, 900.0, flags=1))

            for label, hour in (("M1", 10), ("M2", 10), ("M3", 10), ("M1", 12), ("M2", 12), ("M4", 12)):
                dev = mobile[label][0]
                rows += [reading(dev, _h(hour) + timedelta(seconds=12 * i), PM25, 20.0 + i % 5,
                                 lat=48.58, lon=round(7.70 + 0.001 * i, 6)) for i in range(60)]
        add_readings(conn, rows)
        build_hourly(conn)
        refresh_mobile(conn)
        first_seen = min(starts) - timedelta(days=30)
        conn.execute(sa.update(tables.devices).values(first_seen=first_seen, last_seen=max(starts) + timedelta(hours=12)))

        conn.execute(sa.insert(tables.reference_stations).values(
            code="FR01011", name="Metz-Centre", network="ATMO GRAND EST", lat=49.1193, lon=6.1757,
            licence="Licence Ouverte 2.0", pollutants=["no2"]))
        for t0 in starts:
            _h = _hour_of(t0)
            conn.execute(sa.insert(tables.reference_readings), [
                {"station_code": "FR01011", "quantity": NO2, "time": _h(10), "value": 21.5, "validity": 1, "source": "e2"},
                {"station_code": "FR01011", "quantity": NO2, "time": _h(11), "value": 19.0, "validity": -1, "source": "e2"},
                {"station_code": "FR01011", "quantity": NO2, "time": _h(25), "value": 5.0, "validity": 1, "source": "e2"},
            ])
    ends = tuple(h3.latlng_to_cell(48.58, lon, 9) for lon in (7.70, 7.759))
    return Fixture(
        public_fixed={k: fixed[k][1] for k in ("A", "B", "C", "E")},
        hidden={"D": fixed["D"][1], "M4": mobile["M4"][1]},
        mobile={k: v[1] for k, v in mobile.items() if k != "M4"},
        secrets=("secret-name", "secret-bike", "@example.org", "70b3d57ba000", "fx-", "mb-"),
        positions={(round(48.5734 + 0.01 * i, 4), round(7.7521 + 0.01 * i, 4)) for i in range(5)},
        route_ends=ends,
    )


def recent_days(today: date) -> list[date]:
    """Three finished days and today: a history whose files the catalogue lists at the real time."""
    return [today - timedelta(days=n) for n in (3, 2, 1, 0)]


def seed_and_export_recent(engine: Engine, settings: Any, today: date) -> Fixture:
    """The fixture on `recent_days(today)`, exported as the scheduled job would have: each day,
    and the current month (through yesterday)."""
    from civicair.open_export.service import run_export

    days = recent_days(today)
    fx = seed(engine, days[0], days[1:])
    for d in days:
        run_export(settings, engine, kind="day", day=d)
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    for month in sorted({d.replace(day=1) for d in days}):
        run_export(settings, engine, kind="month", day=month, until=start)
    return fx
