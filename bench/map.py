"""`civicair bench map`: the map's latest-values endpoint (`GET /v1/map/latest`) for 10,000 devices.

Data: a scratch database (next to CIVICAIR_DATABASE_URL, or an embedded PostgreSQL) with
`--devices` fixed devices (70 % in the 6 × 6 km centre, the rest over the metropolitan area), 33
administrative zones, and 48 hours of calibrated `hourly` rows per device; the map snapshots
rendered by the job production runs (`readmodel.map.refresh_snapshots`, timed). Server: the API in
its own process (uvicorn, as `civicair api`); client: one keep-alive connection, sequential
requests (bench/api.py's client, `Accept-Encoding: identity`, so the endpoint also decompresses).
Same-run baseline: a bare ASGI app in the same uvicorn setup serving a body of the same size
(HTTP alone); the endpoint's p95 is printed with its ratio to it. Also timed: building the
document on a request when no snapshot covers the hour (no job ran)."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from civicair.bench.api import _drive, _pct, _run, _serve, _serve_static, _stop, _wait_up
from civicair.bench.scratch import scratch_database

LOAD_HOURLY = """
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any,
                    calibrated_mean)
select d.id, 2, h, 30, 30 * v, 30 * v * v + 30, v - 2, v + 2, v, 0, 0, v * 0.9
from devices d,
     generate_series(:start, :end - interval '1 hour', interval '1 hour') as h,
     lateral (select 8 + 6 * sin(extract(epoch from h) / 86400.0 * 6.283 + d.id) + (d.id % 9) as v) as x
"""


def load(url: str, n_devices: int, now: datetime) -> dict[str, float]:
    import h3
    import sqlalchemy as sa
    from civicair.core import tables
    from civicair.core.db import create_engine
    from civicair.core.migrate import upgrade
    from civicair.core.security import pseudonym
    from civicair.core.settings import Settings
    from civicair.readmodel.map import refresh_snapshots
    from civicair.readmodel.zones import refresh_device_zones, upsert_zones
    from pydantic import SecretStr

    rng = random.Random(16)
    engine = create_engine(url)
    out: dict[str, float] = {}
    try:
        upgrade(engine)
        west, south, east, north = 7.62, 48.45, 7.98, 48.68
        with engine.begin() as conn:
            zones = []
            for i in range(33):  # a grid of communes over the area
                r, c = divmod(i, 6)
                la0, lo0 = south + r * (north - south) / 6, west + c * (east - west) / 6
                la1, lo1 = la0 + (north - south) / 6, lo0 + (east - west) / 6
                zones.append({"id": f"Z{i:02d}", "name": f"Commune {i}", "kind": "admin", "properties": {},
                              "geometry": {"type": "Polygon", "coordinates": [[[lo0, la0], [lo1, la0], [lo1, la1],
                                                                               [lo0, la1], [lo0, la0]]]}})
            upsert_zones(conn, zones)
            rows = []
            for i in range(n_devices):
                if rng.random() < 0.7:
                    lat, lon = 48.583 + rng.uniform(-0.027, 0.027), 7.746 + rng.uniform(-0.04, 0.04)
                else:
                    lat, lon = rng.uniform(south, north), rng.uniform(west, east)
                uid = f"bench-map-{i}"
                rows.append({"uid": uid, "pseudonym": pseudonym("bench", uid), "name": uid, "kind": "fixed",
                             "transport": "mqtt", "lat": lat, "lon": lon, "h3_cell": h3.latlng_to_cell(lat, lon, 9),
                             "consent_public": True, "status": "reliable", "publication": "approved"})
            conn.execute(sa.insert(tables.devices), rows)
            end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            conn.execute(sa.text(LOAD_HOURLY), {"start": end - timedelta(hours=48), "end": end})
            refresh_device_zones(conn)
        with engine.connect() as conn:
            conn.execute(sa.text("analyze"))
        settings = Settings(database_url=SecretStr(url), _env_file=None)  # type: ignore[call-arg]
        t = time.perf_counter()
        with engine.begin() as conn:
            refresh_snapshots(conn, settings, now=now, quantities=["pm25"])
        out["snapshot_s"] = time.perf_counter() - t
        with engine.connect() as conn:
            body = conn.exec_driver_sql("select raw_size, octet_length(body) from map_snapshots where quantity = 2 "
                                        "and scale = 'eaqi'").one()
        out["body_bytes"], out["gzip_bytes"] = float(body[0]), float(body[1])
    finally:
        engine.dispose()
    return out


def bench_map(
    devices: int = typer.Option(10_000, help="Fixed devices."),
    requests: int = typer.Option(400, help="Requests per phase (sequential)."),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
) -> None:
    """GET /v1/map/latest for N devices: p50/p95 against HTTP alone (target p95 ≤ 50 ms)."""
    import httpx
    import sqlalchemy as sa
    from civicair.core.broker import free_port
    from civicair.core.console import console, settings_or_exit

    settings = settings_or_exit()
    scratch = ExitStack()  # the scratch database, dropped (or its embedded server stopped) at the end
    url, where = scratch.enter_context(scratch_database(settings, "map"))
    procs: list[Any] = []
    try:
        now = datetime.now(UTC)
        t = time.perf_counter()
        loaded = load(url, devices, now)
        console.print(f"loaded {devices:,} devices × 48 h ({devices * 48:,} hourly rows) in "
                      f"{time.perf_counter() - t:.1f} s ({where}); snapshots (pm25, 2 scales) rendered in "
                      f"{loaded['snapshot_s']:.2f} s; document {loaded['body_bytes'] / 1024:.0f} KiB, "
                      f"{loaded['gzip_bytes'] / 1024:.0f} KiB gzip", highlight=False)
        port = free_port()
        procs.append(mp.get_context("spawn").Process(target=_serve, args=(url, port)))
        procs[-1].start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/v1/quantities", httpx)
        path = "/v1/map/latest?quantity=pm25&scale=eaqi"
        body = httpx.get(base + path, headers={"Accept-Encoding": "identity"}).content
        doc = json.loads(body)
        n_features = len(doc["zones"]["features"])
        n_cells = sum(1 for f in doc["zones"]["features"] if f["properties"].get("kind") == "h3")
        if n_cells == 0:  # the devices are not public: the bench would time an empty map
            raise SystemExit("bench map: the document holds no cell: the bench devices are not published")
        _drive(_run(base, [path] * 30, 1))  # warm-up
        lat, _ = _drive(_run(base, [path] * requests, 1))
        # the same endpoint with no snapshot for the hour: the document is built on the request
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text("delete from map_snapshots"))
        engine.dispose()
        live, _ = _drive(_run(base, [path] * 5, 1))
        _stop(procs)
        procs = []
        # baseline: HTTP alone, a bare ASGI app serving a body of the same size
        sport = free_port()
        procs.append(mp.get_context("spawn").Process(target=_serve_static, args=(body, sport)))
        procs[-1].start()
        sbase = f"http://127.0.0.1:{sport}"
        _wait_up(sbase + "/", httpx)
        _drive(_run(sbase, ["/"] * 30, 1))
        lat_s, _ = _drive(_run(sbase, ["/"] * requests, 1))
    finally:
        _stop(procs)
        scratch.close()
    result = {"devices": devices, "features": n_features, "cells": n_cells, "body_kib": round(len(body) / 1024),
              "p50_ms": round(_pct(lat, 0.5), 2), "p95_ms": round(_pct(lat, 0.95), 2),
              "http_alone_p50_ms": round(_pct(lat_s, 0.5), 2), "http_alone_p95_ms": round(_pct(lat_s, 0.95), 2),
              "snapshot_s": round(loaded["snapshot_s"], 2), "built_on_request_p50_ms": round(_pct(live, 0.5)),
              "requests": requests}
    result["p95_ratio_to_http_alone"] = round(result["p95_ms"] / max(result["http_alone_p95_ms"], 1e-6), 1)
    console.print(f"GET {path}: {n_features} zone/cell features, {result['body_kib']} KiB; p50 {result['p50_ms']} ms, "
                  f"p95 {result['p95_ms']} ms (target ≤ 50 ms: {'met' if result['p95_ms'] <= 50 else 'NOT met'})",
                  highlight=False)
    console.print(f"baseline in this run, HTTP alone (bare ASGI app, same body): p50 {result['http_alone_p50_ms']} ms, "
                  f"p95 {result['http_alone_p95_ms']} ms → the endpoint's p95 is {result['p95_ratio_to_http_alone']}x; "
                  f"without a snapshot (built on the request) p50 {result['built_on_request_p50_ms']} ms",
                  highlight=False)
    if as_json:
        print(json.dumps(result))
