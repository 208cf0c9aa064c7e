"""Fixtures of the SensorThings tests: the seeded small city plus a year of hourly data of one
zone (generated in SQL with gaps, outages that push hours below k, calibrated and flagged
hours), the stored zone series materialised and the ids registered, served by a real uvicorn
with `build_app` (what `civicair api` serves) on a free port."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from civicair.core.db import Database
from civicair.core.settings import Settings

from tests.city import City, seed_city
from tests.conftest import truncate_all, wait_until
from tests.seed import add_device

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_ZONE = "67999"
YEAR_BOX = (7.60, 48.40, 7.65, 48.43)  # west, south, east, north

# Four devices; a device skips an hour when a hash of (device, hour) says so (~8 %); devices 1
# and 2 are both out for three days in March (those hours have 2 devices: below k = 3, so
# suppressed); device 3 is calibrated from July; device 4 has a flagged hour every 100 hours.
YEAR_HOURLY = """
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any,
                    calibrated_mean)
select d.id, 2, h, case when d.k = 4 and (extract(epoch from h)::bigint / 3600) % 100 = 0 then 0 else 20 end,
       20 * v, 20 * v * v + 20 * (1 + d.k), v - 1 - d.k, v + 1 + d.k, v,
       case when d.k = 4 and (extract(epoch from h)::bigint / 3600) % 100 = 0 then 20 else 0 end,
       case when d.k = 4 and (extract(epoch from h)::bigint / 3600) % 100 = 0 then 1 else 0 end,
       case when d.k = 3 and h >= '2025-07-01' then round((v * 0.87 + 1.3)::numeric, 4)::float end
from (select id, row_number() over (order by id) as k from devices where uid like 'year-%') d,
     generate_series(:start, :end - interval '1 hour', interval '1 hour') as h,
     lateral (select 8 + 6 * sin(extract(epoch from h) / 86400.0 * 6.283 + d.k)
                     + 3 * cos(extract(epoch from h) / 604800.0 * 6.283) + d.k * 0.37 as v) as x
where abs(hashtext(d.id::text || h::text)) % 100 >= 8
  and not (d.k in (1, 2) and h >= '2025-03-10' and h < '2025-03-13')
"""

# Ten days of temperature from the first device's BME280 (another quantity, another sensor model).
TEMPERATURE = """
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any)
select d.id, 6, h, 10, 10 * v, 10 * v * v + 1, v - 0.3, v + 0.2, v, 0, 0
from devices d, generate_series(:start, :end - interval '1 hour', interval '1 hour') as h,
     lateral (select 2 + 4 * sin(extract(epoch from h) / 86400.0 * 6.283) as v) as x
where d.uid = 'year-0'
"""


@dataclass
class StaCity:
    city: City
    base: str  # the server's root URL
    sta: str  # its SensorThings service root
    year_zone: str = YEAR_ZONE


def seed_year(db: Database) -> None:
    from civicair.readmodel.zones import refresh_device_zones, upsert_zones

    w, s, e, n = YEAR_BOX
    with db.engine.begin() as conn:
        upsert_zones(conn, [{"id": YEAR_ZONE, "name": "Year test zone", "kind": "admin", "properties": {},
                             "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}])
        for k in range(4):
            add_device(conn, f"year-{k}", lat=s + 0.005 + 0.006 * k, lon=w + 0.007 + 0.009 * k,
                       dev_eui=f"70b3d57ed0ff{k:04x}", owner_email=f"year{k}@example.org",
                       name=f"Year device {k}", owner_name=f"Owner Year{k}",
                       sensor_models=["SPS30", "BME280"] if k == 0 else ["SDS011"])
        conn.execute(sa.text(YEAR_HOURLY), {"start": YEAR_START, "end": YEAR_END})
        conn.execute(sa.text(TEMPERATURE), {"start": YEAR_START, "end": YEAR_START + timedelta(days=10)})
        refresh_device_zones(conn)
        # first/last seen, as ingest keeps them (HistoricalLocations come from first_seen)
        conn.execute(sa.text("update devices d set first_seen = s.a, last_seen = s.b from (select device_id, "
                             "min(time) a, max(time) b from readings group by 1) s where s.device_id = d.id"))
        conn.execute(sa.text("update devices d set first_seen = s.a, last_seen = s.b + interval '1 hour' from "
                             "(select device_id, min(hour) a, max(hour) b from hourly group by 1) s "
                             "where s.device_id = d.id and d.first_seen is null"))


def prepare(db: Database, settings: Settings) -> None:
    """What the scheduled jobs keep up to date: the stored zone series and the registry."""
    from civicair.readmodel.things import sync_registry
    from civicair.readmodel.zone_rollup import refresh

    with db.engine.begin() as conn:
        refresh(conn, settings, now=YEAR_END + timedelta(days=30))
        sync_registry(conn, settings)


@contextmanager
def serve_sta(settings: Settings, db: Database, catalogue_ttl_s: float = 0.0) -> Iterator[tuple[str, Settings]]:
    """A real uvicorn serving `build_app` on a free port, `public_base_url` set to it (the
    catalogue rebuilt on every request unless `catalogue_ttl_s`)."""
    import uvicorn
    from civicair.core.broker import free_port

    from civicair.runtime import build_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"public_base_url": base, "api_cache_ttl_s": catalogue_ttl_s,
                                           "rate_limit_per_minute": 1_000_000})
    server = uvicorn.Server(uvicorn.Config(build_app(settings, db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, message="uvicorn start")
    try:
        yield base, settings
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def sta_city(_session_db: Database, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaCity]:
    """Seeded once per module (the tests only read): the database is emptied first, as the `db`
    fixture does for each test."""
    db = _session_db
    truncate_all(db.engine)
    settings = Settings(database_url=db.url, mqtt_url=mqtt_url, data_dir=tmp_path_factory.mktemp("sta"),
                        pseudonym_secret="test-secret", _env_file=None)  # type: ignore[call-arg]
    city = seed_city(db, uuid.uuid4().hex[:10])
    seed_year(db)
    city.private += [f"year-{k}" for k in range(4)] + [f"Year device {k}" for k in range(4)]
    city.private += [f"year{k}@example.org" for k in range(4)] + [f"70b3d57ed0ff{k:04x}" for k in range(4)]
    with serve_sta(settings, db) as (base, served):
        prepare(db, served)
        yield StaCity(city, base, f"{base}/sta/v1.1")
    truncate_all(db.engine)
