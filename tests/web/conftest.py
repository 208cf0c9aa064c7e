"""Fixtures of the web tests: the demo's sensors and zones with known hourly values, served by
the real app (`civicair.runtime.build_app`) on a free port; Debian's Chromium (session-wide); a
commune's web site on another origin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.demo.simulator import Simulator
from civicair.demo.zones import EXAMPLE_ZONES, import_example_zones

from tests.seed import add_device, add_readings, build_hourly, reading, refresh_mobile
from tests.web.browser import SHOTS, ByteCounter, launch, serve

# Hourly calibrated PM2.5 of the demo's fixed sensors, by sensor index: one value in each EAQI
# band (≤5, ≤15, ≤50, ≤90, ≤140, >140), so cells and zones take every colour.
CYCLE = (3.0, 12.0, 30.0, 70.0, 100.0, 160.0)
HOURS = 48
SLIDER_HOUR = 40  # at this hour every value is tripled (the time-slider test)


@dataclass
class Demo:
    base: str
    settings: Settings
    counter: ByteCounter
    hours: list[datetime]
    device_values: dict[str, float] = field(default_factory=dict)  # uid → latest calibrated value
    zone_values: dict[str, float] = field(default_factory=dict)  # expected zone means (latest hour)
    cell_values: dict[str, float] = field(default_factory=dict)
    zone_names: dict[str, str] = field(default_factory=dict)
    pseudonyms: dict[str, str] = field(default_factory=dict)


def _boxes() -> dict[str, tuple[str, float, float, float, float]]:
    """The example zones (rectangles) as (name, lat_lo, lat_hi, lon_lo, lon_hi), read here
    independently of the read model's point-in-polygon."""
    out = {}
    for f in json.loads(EXAMPLE_ZONES.read_text())["features"]:
        ring = f["geometry"]["coordinates"][0]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        out[str(f["id"])] = (f["properties"]["name"], min(lats), max(lats), min(lons), max(lons))
    return out


def seed_demo(settings: Settings, db: Database, now: datetime | None = None) -> Demo:
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    hours = [now - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    sim = Simulator(settings, db, "mqtt://127.0.0.1:1")  # register() only writes the database
    sim.register()
    demo = Demo("", settings, ByteCounter(None), hours)
    with db.engine.begin() as conn:
        ids = {r.uid: (r.id, r.pseudonym, r.lat, r.lon) for r in conn.execute(
            sa.select(tables.devices.c.uid, tables.devices.c.id, tables.devices.c.pseudonym, tables.devices.c.lat,
                      tables.devices.c.lon))}
        # a sensor without consent in Strasbourg: its huge value must show nowhere
        hidden, _ = add_device(conn, "ca-test-private", lat=48.5800, lon=7.7500, consent=False,
                               h3_cell=h3.latlng_to_cell(48.58, 7.75, 9))
        import_example_zones(conn)
        rows = []
        fixed = sorted(uid for uid in ids if "fixed" in uid)
        for i, uid in enumerate(fixed):
            device_id, pseudo, _, _ = ids[uid]
            v = CYCLE[i % len(CYCLE)]
            demo.device_values[uid] = v
            demo.pseudonyms[uid] = pseudo
            for j, hour in enumerate(hours):
                value = v * 3 if j == SLIDER_HOUR else v
                rows.append(_hourly(device_id, hour, value))
        rows += [_hourly(hidden, hour, 500.0) for hour in hours]
        conn.execute(sa.insert(tables.hourly), rows)
        # two bikes ride 1.6 km north from place Kléber two hours ago (mobile cells)
        t0 = hours[-3]
        bike_rows = []
        for b, uid in enumerate(sorted(u for u in ids if "bike" in u)[:2]):
            for i in range(41):
                lat, lon = 48.5833 + i * 40 / 111_195.0, 7.7460 + b * 0.00002
                bike_rows.append(reading(ids[uid][0], t0 + timedelta(minutes=5 + b, seconds=12 * i), 2,
                                         25.0 + b, lat=round(lat, 7), lon=round(lon, 7)))
        add_readings(conn, bike_rows)
        build_hourly(conn)  # the bikes' hours (the fixed devices' were written above)
        refresh_mobile(conn, settings)  # what the scheduler's mobile rollup does
        sim.write_reference(hours[0], hours[-1] + timedelta(hours=1))
    boxes = _boxes()
    for zone_id, (name, la0, la1, lo0, lo1) in boxes.items():
        demo.zone_names[zone_id] = name
        inside = [demo.device_values[u] for u in demo.device_values
                  if la0 <= ids[u][2] <= la1 and lo0 <= ids[u][3] <= lo1]
        if inside:
            demo.zone_values[zone_id] = sum(inside) / len(inside)
    cells: dict[str, list[float]] = {}
    for uid, v in demo.device_values.items():
        cells.setdefault(h3.latlng_to_cell(ids[uid][2], ids[uid][3], settings.h3_resolution), []).append(v)
    demo.cell_values = {c: sum(vs) / len(vs) for c, vs in cells.items()}
    return demo


def _hourly(device_id: int, hour: datetime, calibrated: float) -> dict[str, Any]:
    raw = calibrated * 1.25 + 1
    return {"device_id": device_id, "quantity": 2, "hour": hour, "n": 4, "sum": 4 * raw, "sum_sq": 4 * raw * raw,
            "min": raw, "max": raw, "mean": raw, "n_flagged": 0, "flags_any": 0, "calibrated_mean": calibrated}


@pytest.fixture
def demo(settings: Settings, db: Database) -> Iterator[Demo]:
    """The demo city with known values, served on a free port (k = 1: every cell-hour published)."""
    from civicair.runtime import build_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    s = settings.model_copy(update={"k_anonymity": 1, "public_base_url": base})
    d = seed_demo(s, db)
    d.base, d.settings = base, s
    d.counter = ByteCounter(build_app(s, db))
    with serve(d.counter, port=port):
        yield d


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API runs an event loop in this thread while
    it is open, which asyncio tests of other modules (and another sync_playwright) cannot share,
    so it must not outlive the module (any test order works)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def commune_site(civicair: str) -> Any:
    """A commune's web site: the widget in an iframe, and the web component on the page itself."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def home(request: Any) -> HTMLResponse:
        return HTMLResponse(f"""<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Commune de Strasbourg</title></head><body><main><h1>Bienvenue sur le site de la commune</h1>
<h2>Dans un cadre</h2>
<iframe id="frame" src="{civicair}/embed/zones/67482?lang=fr" title="Qualité de l'air à Strasbourg"
        width="320" height="320" style="border:0"></iframe>
<h2>Composant web</h2>
<civicair-air id="direct" zone="67447" lang="fr"></civicair-air>
<script src="{civicair}/static/dist/widget.js" defer></script>
</main></body></html>""")

    return Starlette(routes=[Route("/", home)])
