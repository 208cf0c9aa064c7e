"""`civicair bench mobile`: /v1/mobile/cells for a week over ~1M mobile points (issue 19 item 17).

Data: a scratch database (created next to CIVICAIR_DATABASE_URL and dropped afterwards, or an
embedded PostgreSQL in a temporary folder) holding `--bikes` approved mobile devices, 5 per route
on 20 loops around the city, each riding 8 trips of 30 minutes a day for 7 days with a point
every 10 s (100 bikes: 1,008,000 points), generated with SQL; `hourly` from them; then the mobile
rollup as the scheduler keeps it (`readmodel/mobile_rollup.py`, timed: its rate is reported).

Server: uvicorn in its own process (the production app). Client: keep-alive connections of the
`bench api` harness. Each request asks for `GET /v1/mobile/cells?quantity=pm25&datetime_from=
<week start>&datetime_to=<week end + i s>&limit=1000` (distinct URLs: the response cache never
answers, the answer is the same whole hours).

Measured: p50/p95 with one client and with `--concurrency` clients; the server's RSS (response
cache off) after a warm-up and after each phase, the concurrent one twice (memory stays flat: the
rows are aggregated in SQL, one page leaves it). Baselines in the
same run: the previous Python path (every located reading of the week loaded into this process,
trips cut at the request's window, then filtered and aggregated in Python), timed in-process with
its peak memory; and HTTP alone (a bare ASGI app serving a body of the same size).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import time
import tracemalloc
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from civicair.bench.scratch import scratch_database

WEEK_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
ROUTES = 20
TRIP_HOURS = (7, 8, 9, 12, 13, 17, 18, 19)
STEPS = 180  # 30 minutes at 10 s

LOAD_POINTS = """
insert into readings (device_id, time, quantity, value, flags, lat, lon, received_at)
select d.id, t, 2, round((12 + 6 * sin(extract(epoch from t) / 5400.0) + (d.id % 7))::numeric, 1), 0,
       48.58 + (r % 5 - 2) * 0.012 + 0.009 * sin(2 * pi() * step / :steps),
       7.75 + (r / 5 - 2) * 0.018 + 0.013 * cos(2 * pi() * step / :steps), :received
from (select id, id % :routes as r, id / :routes as slot from devices where kind = 'mobile') d
cross join generate_series(0, 6) as day
cross join unnest(cast(:hours as int[])) as hour
cross join generate_series(0, :steps - 1) as step
cross join lateral (select :start + make_interval(days => day, hours => hour, mins => slot % 5,
                                                  secs => step * 10) as t) as x
"""

BUILD_HOURLY = """
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any)
select device_id, quantity, date_trunc('hour', time, 'UTC'), count(*), sum(value), sum(value * value),
       min(value), max(value), avg(value), 0, 0
from readings group by 1, 2, 3
"""


def load(url: str, bikes: int) -> dict[str, float]:
    """Load the benchmark data and build the mobile rollup; returns the timings."""
    import sqlalchemy as sa
    from civicair.core import tables
    from civicair.core.db import create_engine
    from civicair.core.migrate import upgrade
    from civicair.core.security import pseudonym
    from civicair.core.settings import Settings
    from civicair.readmodel.mobile_rollup import refresh
    from pydantic import SecretStr

    engine = create_engine(url)
    out: dict[str, float] = {}
    try:
        upgrade(engine)
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.insert(tables.devices), [
                {"uid": f"bench-bike-{i}", "pseudonym": pseudonym("bench", f"bench-bike-{i}"), "name": f"bike {i}",
                 "kind": "mobile", "transport": "mqtt", "consent_public": True, "status": "insufficient_data",
                 "publication": "approved"} for i in range(bikes)])
            conn.execute(sa.text(LOAD_POINTS), {"steps": STEPS, "routes": ROUTES, "hours": list(TRIP_HOURS),
                                                "start": WEEK_START, "received": WEEK_START + timedelta(days=8)})
            conn.execute(sa.text(BUILD_HOURLY))
            out["points"] = float(conn.execute(sa.select(sa.func.count()).select_from(tables.readings)).scalar_one())
        out["load_s"] = time.perf_counter() - t
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze"))
        t = time.perf_counter()
        with engine.begin() as conn:  # what the scheduler's readmodel.mobile_rollup job keeps up to date
            result = refresh(conn, Settings(database_url=SecretStr(url)), now=WEEK_START + timedelta(days=9))
        out["rollup_s"] = time.perf_counter() - t
        out["rollup_rows"] = float(result.rows)
        out["trips"] = float(result.trips)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze mobile_cell_hours"))
    finally:
        engine.dispose()
    return out


def python_path(url: str) -> tuple[float, int, int]:
    """The previous `/v1/mobile/cells` computation of a week (seconds, peak traced bytes, cells):
    every located reading of the range into Python, trips cut at the range's edges, buffers and
    k-anonymity in Python — the cost this benchmark's SQL path replaced."""
    import sqlalchemy as sa
    from civicair.core import tables
    from civicair.core.db import create_engine
    from civicair.readmodel import anonymise

    engine = create_engine(url)
    try:
        tracemalloc.start()
        t = time.perf_counter()
        r = tables.readings
        with engine.connect() as conn:
            rows = conn.execute(sa.select(r.c.device_id, r.c.time, r.c.value, r.c.lat, r.c.lon)
                                .where(r.c.time >= WEEK_START, r.c.time < WEEK_START + timedelta(days=7),
                                       r.c.lat.isnot(None)).order_by(r.c.device_id, r.c.time)).all()
        by_device: dict[int, list[anonymise.Point]] = {}
        for row in rows:
            by_device.setdefault(row.device_id, []).append(anonymise.Point(row.time, row.lat, row.lon, {2: row.value}))
        groups: dict[tuple[str, datetime], tuple[set[int], list[float]]] = {}
        for device_id, points in by_device.items():
            for trip in anonymise.split_trips(points):
                for p in anonymise.filter_trip(trip):
                    devices, values = groups.setdefault((anonymise.snap_to_cell(p.lat, p.lon, 9), anonymise.hour_of(p.time)),
                                                        (set(), []))
                    devices.add(device_id)
                    values.append(p.values[2])
        cells = [(key, sum(v) / len(v)) for key, (d, v) in groups.items() if len(d) >= 3]
        seconds = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        engine.dispose()
    return seconds, peak, len(cells)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _path(offset_s: int) -> str:
    start = WEEK_START.isoformat().replace("+00:00", "Z")
    end = (WEEK_START + timedelta(days=7, seconds=-offset_s)).isoformat().replace("+00:00", "Z")
    return f"/v1/mobile/cells?quantity=pm25&datetime_from={start}&datetime_to={end}&limit=1000"


def bench_mobile(
    bikes: int = typer.Option(100, help="Mobile devices (100: ~1M points in the week)."),
    requests: int = typer.Option(400, help="Requests per phase."),
    concurrency: int = typer.Option(4, help="Concurrent client connections of the concurrent phase."),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
) -> None:
    """GET /v1/mobile/cells for a week over ~1M points: p95 latency (target ≤ 100 ms), memory."""
    import httpx
    from civicair.bench.api import _drive, _pct, _run, _serve, _serve_static, _stop, _wait_up
    from civicair.core.broker import free_port
    from civicair.core.console import console, settings_or_exit

    settings = settings_or_exit()
    scratch = ExitStack()  # the scratch database, dropped (or its embedded server stopped) at the end
    url, where = scratch.enter_context(scratch_database(settings, "mobile"))
    procs: list[Any] = []
    try:
        loaded = load(url, bikes)
        console.print(f"loaded {bikes} bikes, {int(loaded['points']):,} points in {loaded['load_s']:.1f} s ({where}); "
                      f"mobile rollup: {int(loaded['trips']):,} trips → {int(loaded['rollup_rows']):,} rows in "
                      f"{loaded['rollup_s']:.1f} s ({loaded['points'] / loaded['rollup_s']:,.0f} points/s)")
        port = free_port()
        # no response cache (its 64 MiB of bodies would be the memory growth measured)
        os.environ["CIVICAIR_API_CACHE_TTL_S"] = "0"
        procs.append(mp.get_context("spawn").Process(target=_serve, args=(url, port)))
        procs[0].start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/v1/quantities", httpx)
        probe = httpx.get(base + _path(0), timeout=60)
        cells, size = len(probe.json()["results"]), len(probe.content)
        # warm-up (connections, plans, the heap's plateau: the API keeps freed memory, see
        # api/app.py prepare_to_serve), not measured
        _drive(_run(base, [_path(i + 1) for i in range(50)], concurrency))
        rss_before = _rss_kib(procs[0].pid)
        lat, _ = _drive(_run(base, [_path(100 + i) for i in range(requests)], 1))
        rss_mid = _rss_kib(procs[0].pid)
        conc, elapsed = _drive(_run(base, [_path(1000 + i) for i in range(requests)], concurrency))
        rss_conc = _rss_kib(procs[0].pid)
        _drive(_run(base, [_path(2000 + i) for i in range(requests)], concurrency))  # again: any leak shows
        rss_after = _rss_kib(procs[0].pid)
        _stop(procs)
        port = free_port()  # baseline: HTTP alone, a bare ASGI app serving a body of the same size
        procs = [mp.get_context("spawn").Process(target=_serve_static, args=(probe.content, port))]
        procs[0].start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/", httpx)
        lat_t, _ = _drive(_run(base, ["/"] * requests, 1))
        _stop(procs)
        procs = []
        py_s, py_peak, py_cells = python_path(url)  # baseline: the previous Python path, once
    finally:
        _stop(procs)
        scratch.close()
    result = {
        "bikes": bikes, "points": int(loaded["points"]), "rollup_s": round(loaded["rollup_s"], 1),
        "rollup_rows": int(loaded["rollup_rows"]), "cells_per_page": cells, "bytes_per_page": size,
        "requests": requests, "p50_ms": round(statistics.median(lat), 2), "p95_ms": round(_pct(lat, 0.95), 2),
        "concurrency": concurrency, "concurrent_p95_ms": round(_pct(conc, 0.95), 2),
        "concurrent_requests_per_s": round(requests / elapsed, 1),
        "rss_before_mib": round(rss_before / 1024, 1), "rss_mid_mib": round(rss_mid / 1024, 1),
        "rss_concurrent_mib": round(rss_conc / 1024, 1), "rss_after_mib": round(rss_after / 1024, 1),
        "transport_p95_ms": round(_pct(lat_t, 0.95), 2),
        "python_path_s": round(py_s, 2), "python_path_peak_mib": round(py_peak / 2**20, 1),
        "python_path_cells": py_cells,
        "speedup_vs_python_path": round(py_s * 1000 / statistics.median(lat), 1),
        "target_p95_ms": 100,
    }
    console.print(f"/v1/mobile/cells, a week: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms (one client, target "
                  f"≤ 100 ms: {'met' if result['p95_ms'] <= 100 else 'NOT met'}); p95 {result['concurrent_p95_ms']} ms, "
                  f"{result['concurrent_requests_per_s']} req/s with {concurrency} clients ({cells} cells, "
                  f"{size // 1024} KiB per page); server RSS after warm-up {result['rss_before_mib']} MiB, after the "
                  f"sequential requests {result['rss_mid_mib']} MiB, after the concurrent ones "
                  f"{result['rss_concurrent_mib']} MiB, after as many again {result['rss_after_mib']} MiB")
    console.print(f"baselines in this run: HTTP alone (same body) p95 {result['transport_p95_ms']} ms; the previous "
                  f"Python path {result['python_path_s']} s per request, {result['python_path_peak_mib']} MiB peak "
                  f"(p50 is {result['speedup_vs_python_path']}x faster)")
    if as_json:
        print(json.dumps(result))
