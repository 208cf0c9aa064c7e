"""Fixtures of the HTTP tests (a plugin of the root conftest): a server factory with custom settings,
and a seeded small city."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.settings import Settings, listening_at

from tests.conftest import wait_until
from tests.seed import add_device, add_readings, build_hourly, reading, refresh_mobile

T0 = datetime(2026, 1, 12, 0, 0, tzinfo=UTC)
M_PER_DEG_LAT = 111_195.0


@contextmanager
def serve_app(settings: Settings, db: Database) -> Iterator[str]:
    import uvicorn
    from civicair.core.broker import free_port

    from civicair.runtime import build_app

    port = free_port()
    settings = listening_at(settings, "127.0.0.1", port)  # a derived public URL follows the port
    server = uvicorn.Server(uvicorn.Config(build_app(settings, db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, message="uvicorn start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def serve(settings: Settings, db: Database) -> Iterator[Callable[..., str]]:
    """serve(**setting_overrides) → base URL of a real uvicorn server with those settings."""
    with ExitStack() as stack:
        def start(**overrides: Any) -> str:
            return stack.enter_context(serve_app(settings.model_copy(update=overrides), db))

        yield start


@dataclass
class City:
    """What the seeded city contains, including the private values that must never leak."""

    fixed: dict[str, int] = field(default_factory=dict)  # label → device id
    pseudonyms: dict[str, str] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)  # DevEUIs, names, emails, uids, owners
    coordinates: list[tuple[float, float]] = field(default_factory=list)
    zone_id: str = "67482"
    cell: str = ""


ZONE = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "67482", "properties": {"name": "Strasbourg (test box)"},
     "geometry": {"type": "Polygon", "coordinates": [[[7.70, 48.55], [7.80, 48.55], [7.80, 48.60],
                                                      [7.70, 48.60], [7.70, 48.55]]]}}]}


def seed_city(db: Database, unique: str) -> City:
    """Fixed devices F1..F4 (consenting, reliable, in zone 67482; F1-F3 in one H3 cell), F5
    unreliable, F6 without consent, F7 consenting but not established (pending, in F1's cell, it
    reports every hour); hours 0-3: F1-F4 report; hour 4: only F1, F2 (a zone-hour below k=3,
    which F7 must not lift); hour 5: F1-F3 + F5. Mobile: bikes B1-B4 ride the same 1.6 km route
    at hour 8, B4 with a privacy zone on its middle; B5 alone at hour 10 with B6 and B7, which
    are not established (fresh: pending). Station FR01011 with 6 hours. Nothing of F6, F7, B6, B7
    may appear anywhere public (their pseudonyms are in `private`)."""
    import h3
    from civicair.readmodel.zones import parse_zones, refresh_device_zones, upsert_zones

    city = City()
    base_lat, base_lon = 48.573412, 7.752113
    cell = h3.latlng_to_cell(base_lat, base_lon, 9)
    city.cell = cell
    spots = {
        "F1": (base_lat + 0.000123, base_lon + 0.000217),
        "F2": (base_lat - 0.000171, base_lon + 0.000093),
        "F3": (base_lat + 0.000057, base_lon - 0.000189),
        "F4": (48.561537, 7.771349),
        "F5": (48.566621, 7.733187),
        "F6": (48.579913, 7.741826),
        "F7": (base_lat + 0.000201, base_lon - 0.000077),
    }
    assert all(h3.latlng_to_cell(*spots[k], 9) == cell for k in ("F1", "F2", "F3", "F7"))
    with db.engine.begin() as conn:
        for i, (label, (lat, lon)) in enumerate(spots.items()):
            uid = f"ca-{unique}-{label.lower()}"
            dev_eui = f"70b3d57ed00{i:05x}"
            email = f"volunteer.{label.lower()}.{unique}@example.org"
            name = f"Balcon rue des Orfèvres {label} {unique}"
            owner = f"Jeanne Dupont-{label}{unique}"
            did, pseudo = add_device(
                conn, uid, lat=lat, lon=lon, dev_eui=dev_eui, owner_email=email, name=name, owner_name=owner,
                consent=label != "F6", status="unreliable" if label == "F5" else "reliable",
                h3_cell=h3.latlng_to_cell(lat, lon, 12),  # a finer cell than public: must be coarsened
                publication="pending" if label == "F7" else "approved")
            city.fixed[label], city.pseudonyms[label] = did, pseudo
            city.private += [uid, dev_eui, email, name, owner] + ([pseudo] if label in ("F6", "F7") else [])
            city.coordinates.append((lat, lon))
        rows = []
        for hour in range(6):
            reporters = {0: "F1 F2 F3 F4", 1: "F1 F2 F3 F4", 2: "F1 F2 F3 F4", 3: "F1 F2 F3 F4",
                         4: "F1 F2", 5: "F1 F2 F3 F5"}[hour].split()
            reporters += ["F6", "F7"]
            for j, label in enumerate(reporters):
                for minute in (5, 25, 45):
                    value = 10.0 + hour + j + minute / 100
                    rows.append(reading(city.fixed[label], T0 + timedelta(hours=hour, minutes=minute), 2, value))
            # one flagged reading per hour on F1
            rows.append(reading(city.fixed["F1"], T0 + timedelta(hours=hour, minutes=50), 2, 5000.0, flags=1))
        add_readings(conn, rows)

        # Mobile: a 1.6 km northward route from the Place Kléber area, one point per 12 s.
        start_lat, start_lon = 48.583321, 7.745987
        mobile_rows = []
        for b in range(1, 8):
            label = f"B{b}"
            zones = [{"lat": start_lat + 800 / M_PER_DEG_LAT, "lon": start_lon, "radius_m": 150}] if b == 4 else None
            uid = f"ca-{unique}-{label.lower()}"
            email = f"cyclist.{label.lower()}.{unique}@example.org"
            name = f"Vélo cargo {label} {unique}"
            did, pseudo = add_device(conn, uid, kind="mobile", dev_eui=f"70b3d57ed01{b:05x}", owner_email=email,
                                     name=name, privacy_zones=zones, publication="pending" if b > 5 else "approved")
            city.private += [uid, f"70b3d57ed01{b:05x}", email, name] + ([pseudo] if b > 5 else [])
            city.pseudonyms[label] = pseudo
            t_start = T0 + timedelta(hours=10 if b >= 5 else 8, minutes=b)
            for i in range(41):
                lat = start_lat + i * 40 / M_PER_DEG_LAT + b * 0.000011
                lon = start_lon + b * 0.000013
                t = t_start + timedelta(seconds=12 * i)
                mobile_rows.append(reading(did, t, 2, 20.0 + b + i / 10, lat=round(lat, 7), lon=round(lon, 7)))
                city.coordinates.append((lat, lon))
        add_readings(conn, mobile_rows)
        build_hourly(conn)
        conn.execute(sa.insert(tables.reference_stations).values(
            code="FR01011", name="Metz-Centre", network="ATMO GRAND EST", lat=49.1196, lon=6.1816,
            station_type="urban background", pollutants=["pm25"], licence="Licence Ouverte 2.0 (LCSQA)",
            attribution="ATMO Grand Est / LCSQA"))
        conn.execute(sa.insert(tables.reference_readings), [
            {"station_code": "FR01011", "quantity": 2, "time": T0 + timedelta(hours=h), "value": 8.0 + h,
             "validity": 1 if h != 3 else -1, "source": "e2"} for h in range(6)])
        upsert_zones(conn, parse_zones(ZONE))
        refresh_device_zones(conn)
        refresh_mobile(conn)
    return city


@pytest.fixture
def city(db: Database, unique: str) -> City:
    return seed_city(db, unique)
