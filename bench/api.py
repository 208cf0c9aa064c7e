"""`civicair bench api`: the open-data API serving one zone's hourly series over one year.

Data: a scratch database (created next to CIVICAIR_DATABASE_URL and dropped afterwards, or an
embedded PostgreSQL in a temporary folder) holding 200 fixed devices in 50 administrative zones
(4 per zone) and one year of `hourly` rows per device (1.75 M rows, generated with SQL), then
the zone series materialised as the api worker keeps them (`readmodel/zone_rollup.py`).
Server: uvicorn in its own process (`--workers` processes) on loopback. Client: `--concurrency`
keep-alive connections in this process (asyncio + httptools, see `_Client`).

Latency (p50/p95) is measured with one client (sequential requests); requests/s with
`--concurrency` connections, in `--rounds` rounds (the median is reported, every round listed);
both for:
- uncached: every request has a distinct URL (zone and `datetime_to` vary), so the response cache
  never answers; the whole path (zone membership, stored-row validity, rows from PostgreSQL,
  JSON envelope, ETag) is measured;
- cached: the same URL repeatedly (in-process response cache hit).
Two baselines are measured in the same run, so the figures read across machines of different
speeds: the uncached requests with nothing materialised (live aggregation, the code before
`readmodel/zone_rollup.py`), and HTTP alone (a bare ASGI app in the same uvicorn setup serving a body
of the same size): ratios to both are printed.
Each request asks for `GET /v1/zones/{id}/series?quantity=pm25&datetime_from=<1 year ago>&
datetime_to=<end>&limit=1000` (the first page of the year: 1000 hourly rows) with
`Accept-Encoding: identity`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

N_DEVICES = 200
N_ZONES = 50
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)

LOAD_HOURLY = """
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any,
                    calibrated_mean)
select d.id, 2, h, 30, 30 * v, 30 * v * v + 30, v - 2, v + 2, v, 0, 0, v * 0.9
from devices d,
     generate_series(:start, :end - interval '1 hour', interval '1 hour') as h,
     lateral (select 10 + 5 * sin(extract(epoch from h) / 86400.0 * 6.283 + d.id) + (d.id % 7) as v) as x
"""


def _zone_box(i: int) -> tuple[float, float, float, float]:
    row, col = divmod(i, 10)
    lat0, lon0 = 48.45 + row * 0.04, 7.55 + col * 0.04
    return lat0, lat0 + 0.04, lon0, lon0 + 0.04


def load(url: str, days: int = 365) -> float:
    """Load the benchmark data; returns the seconds the zone series materialisation took."""
    import sqlalchemy as sa
    from civicair.core import tables
    from civicair.core.db import create_engine
    from civicair.core.migrate import upgrade
    from civicair.core.security import pseudonym
    from civicair.core.settings import Settings
    from civicair.readmodel.zone_rollup import refresh
    from civicair.readmodel.zones import refresh_device_zones, upsert_zones
    from pydantic import SecretStr

    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            zones, devices = [], []
            for z in range(N_ZONES):
                la0, la1, lo0, lo1 = _zone_box(z)
                zones.append({"id": f"Z{z:02d}", "name": f"bench zone {z}", "kind": "admin", "properties": {},
                              "geometry": {"type": "Polygon", "coordinates": [[[lo0, la0], [lo1, la0], [lo1, la1],
                                                                               [lo0, la1], [lo0, la0]]]}})
                for k in range(N_DEVICES // N_ZONES):
                    uid = f"bench-{z}-{k}"
                    devices.append({"uid": uid, "pseudonym": pseudonym("bench", uid), "name": uid, "kind": "fixed",
                                    "transport": "mqtt", "consent_public": True, "status": "reliable", "publication": "approved",
                                    "lat": la0 + 0.005 + 0.007 * k, "lon": lo0 + 0.005 + 0.007 * k})
            upsert_zones(conn, zones)
            conn.execute(sa.insert(tables.devices), devices)
            conn.execute(sa.text(LOAD_HOURLY), {"start": YEAR_END - timedelta(days=days), "end": YEAR_END})
            refresh_device_zones(conn)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze hourly"))
        with engine.begin() as conn:  # what the api worker's zone_rollup job keeps up to date
            result = refresh(conn, Settings(database_url=SecretStr(url)), now=YEAR_END + timedelta(hours=3))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze"))
    finally:
        engine.dispose()
    return result.seconds


def _serve(url: str, port: int) -> None:
    """One API server process. `--workers` of them listen on the same port with SO_REUSEPORT
    (as `CIVICAIR_API_REUSE_PORT=true` does for `civicair api`), so the kernel spreads the
    client's connections over them: uvicorn's own `--workers` share one socket, and whichever
    process woke first accepted all 16 keep-alive connections, leaving the other core idle."""
    os.environ.update({"CIVICAIR_DATABASE_URL": url, "CIVICAIR_RATE_LIMIT_PER_MINUTE": "100000000",
                       "CIVICAIR_LOG_LEVEL": "warning"})
    import uvicorn

    from civicair.runtime import reuse_port_socket

    config = uvicorn.Config("civicair.bench.api:app_factory", factory=True, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[reuse_port_socket("127.0.0.1", port)])


def _serve_static(body: bytes, port: int) -> None:
    """The transport baseline: the same uvicorn setup answering every request with `body` from a
    bare ASGI app (no framework, no database). Its requests/s is the ceiling of HTTP on this
    machine for a response of that size; the API's figure is reported as a ratio to it."""
    import uvicorn

    from civicair.runtime import reuse_port_socket

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[reuse_port_socket("127.0.0.1", port)])


def app_factory() -> Any:
    """The API app for the benchmark server process (settings from the environment)."""
    from civicair.api.app import create_app, prepare_to_serve
    from civicair.core.db import open_database
    from civicair.core.settings import load_settings

    settings = load_settings()
    app = create_app(settings, open_database(settings))
    prepare_to_serve()
    return app


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the load client: requests written by hand, responses
    parsed by httptools (uvicorn's C parser). A load generator must not need more CPU than the
    server it measures, and both share the same 2 cores; httpx needed about 4x this CPU."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, int]] | None = None
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result((self.parser.get_status_code(), self.size))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("connection closed by the server"))

    async def get(self, host: str, path: str) -> tuple[int, int]:
        assert self.transport is not None
        self.done, self.size = asyncio.get_running_loop().create_future(), 0
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n".encode())
        return await self.done


async def _run(base: str, paths: list[str], concurrency: int) -> tuple[list[float], float]:
    """GET every path over `concurrency` keep-alive connections; (latencies in ms, seconds)."""
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)

    async def worker() -> None:
        transport, client = await loop.create_connection(_Client, host, int(port))
        try:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                status, size = await client.get(host, path)
                latencies.append((time.perf_counter() - t) * 1000)
                if status != 200 or size == 0:
                    raise RuntimeError(f"GET {path} → {status} ({size} bytes)")
        finally:
            transport.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def _drive(coro: Any) -> Any:
    """Run the client on uvloop (installed with uvicorn[standard], as the server uses it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


SPAN = {"days": 365}


def _wait_up(url: str, httpx: Any) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("benchmark server did not start")
        time.sleep(0.1)


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(10)


def _path(zone: int, offset_s: int = 0) -> str:
    start = (YEAR_END - timedelta(days=SPAN["days"])).isoformat().replace("+00:00", "Z")
    end = (YEAR_END + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")
    return f"/v1/zones/Z{zone:02d}/series?quantity=pm25&datetime_from={start}&datetime_to={end}&limit=1000"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def bench_api(
    requests: int = typer.Option(2000, help="Requests per phase."),
    days: int = typer.Option(365, help="Days of hourly data per device, and the span requested."),
    concurrency: int = typer.Option(16, help="Concurrent client connections."),
    rounds: int = typer.Option(3, help="Throughput rounds per phase; the median is reported."),
    workers: int = typer.Option(2, help="API server processes (uvicorn workers)."),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
) -> None:
    """GET /v1/zones/{id}/series for one year: p50/p95 latency and requests/s, uncached and cached."""
    import httpx
    import sqlalchemy as sa
    from civicair.core.broker import free_port
    from civicair.core.console import console, settings_or_exit
    from civicair.core.db import create_engine, start_embedded_postgres

    settings = settings_or_exit()
    tmp = tempfile.TemporaryDirectory(prefix="civicair-bench-api-")
    admin = None
    name = f"civicair_bench_api_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if settings.database_url is not None:
        server_url = settings.database_url.get_secret_value()
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
        url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        where = "scratch database next to CIVICAIR_DATABASE_URL"
    else:
        url, _server = start_embedded_postgres(Path(tmp.name))
        where = "embedded PostgreSQL"
    procs: list[Any] = []
    try:
        t = time.perf_counter()
        SPAN["days"] = days
        materialise_s = load(url, days)
        console.print(f"loaded {N_DEVICES} devices × {days} days hourly ({N_DEVICES * 24 * days:,} rows), "
                      f"{N_ZONES} zones in {time.perf_counter() - t:.1f} s ({where}); zone series "
                      f"materialised in {materialise_s:.1f} s")
        port = free_port()
        for _ in range(workers):
            procs.append(mp.get_context("spawn").Process(target=_serve, args=(url, port)))
            procs[-1].start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/v1/quantities", httpx)
        probe_response = httpx.get(base + _path(0))
        probe, body_kib = probe_response.json(), len(probe_response.content) // 1024
        rows = len(probe["results"])
        # warm-up (connections, query plans), not measured
        _drive(_run(base, [_path(i % N_ZONES, -1 - i) for i in range(100)], concurrency))
        n_lat = max(50, requests // 4)
        lat_u, _ = _drive(_run(base, [_path(i % N_ZONES, i + 1) for i in range(n_lat)], 1))
        rounds_u: list[float] = []
        rounds_c: list[float] = []
        conc_u: list[float] = []
        conc_c: list[float] = []
        for r in range(rounds):  # this machine's speed varies by ±20 % from second to second
            offset = n_lat + 1 + r * requests
            lat, elapsed = _drive(_run(base, [_path(i % N_ZONES, offset + i) for i in range(requests)], concurrency))
            conc_u += lat
            rounds_u.append(requests / elapsed)
        lat_c, _ = _drive(_run(base, [_path(0)] * n_lat, 1))
        for _ in range(rounds):
            lat, elapsed = _drive(_run(base, [_path(0)] * requests, concurrency))
            conc_c += lat
            rounds_c.append(requests / elapsed)
        # baseline 1, the same requests with nothing materialised (every row aggregated live, as
        # before readmodel/zone_rollup.py): fewer requests, it is slow
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text("delete from zone_rollup"))
        engine.dispose()
        offset = n_lat + 1 + rounds * requests
        n_live = max(50, requests // 10)
        _, elapsed = _drive(_run(base, [_path(i % N_ZONES, offset + i) for i in range(n_live)], concurrency))
        live_rps = n_live / elapsed
        _stop(procs)
        # baseline 2, HTTP alone: a bare ASGI app serving a body of the same size
        port = free_port()
        procs = [mp.get_context("spawn").Process(target=_serve_static, args=(probe_response.content, port))
                 for _ in range(workers)]
        for proc in procs:
            proc.start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/", httpx)
        rounds_t: list[float] = []
        for _ in range(rounds):
            _, elapsed = _drive(_run(base, ["/"] * requests, concurrency))
            rounds_t.append(requests / elapsed)
    finally:
        _stop(procs)
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
            admin.dispose()
        tmp.cleanup()
    result = {
        "rows_per_response": rows,
        "requests": requests,
        "concurrency": concurrency,
        "workers": workers,
        "p50_ms": round(statistics.median(lat_u), 2),
        "p95_ms": round(_pct(lat_u, 0.95), 2),
        "rounds": rounds,
        "requests_per_s": round(statistics.median(rounds_u), 1),
        "requests_per_s_rounds": [round(x, 1) for x in rounds_u],
        "concurrent_p95_ms": round(_pct(conc_u, 0.95), 2),
        "cached_p50_ms": round(statistics.median(lat_c), 2),
        "cached_p95_ms": round(_pct(lat_c, 0.95), 2),
        "cached_requests_per_s": round(statistics.median(rounds_c), 1),
        "cached_requests_per_s_rounds": [round(x, 1) for x in rounds_c],
        "cached_concurrent_p95_ms": round(_pct(conc_c, 0.95), 2),
        "materialise_s": round(materialise_s, 1),
        "live_requests_per_s": round(live_rps, 1),
        "speedup_vs_live": round(statistics.median(rounds_u) / live_rps, 1),
        "transport_requests_per_s": round(statistics.median(rounds_t), 1),
        "transport_requests_per_s_rounds": [round(x, 1) for x in rounds_t],
        "ratio_to_transport": round(statistics.median(rounds_u) / statistics.median(rounds_t), 3),
        "cached_ratio_to_transport": round(statistics.median(rounds_c) / statistics.median(rounds_t), 3),
        "target_p95_ms": 50,
        "target_requests_per_s": 500,
    }
    console.print(f"uncached: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms (one client); "
                  f"{result['requests_per_s']} req/s, p95 {result['concurrent_p95_ms']} ms with {concurrency} "
                  f"concurrent ({rows} hourly rows, {body_kib} KiB per response)")
    console.print(f"cached:   p50 {result['cached_p50_ms']} ms, p95 {result['cached_p95_ms']} ms (one client); "
                  f"{result['cached_requests_per_s']} req/s, p95 {result['cached_concurrent_p95_ms']} ms concurrent")
    console.print(f"baselines in this run: nothing materialised (all live) {result['live_requests_per_s']} req/s "
                  f"(uncached is {result['speedup_vs_live']}x that); bare ASGI app serving the same "
                  f"{body_kib} KiB {result['transport_requests_per_s']} req/s (uncached is "
                  f"{result['ratio_to_transport']:.0%} of it, cached {result['cached_ratio_to_transport']:.0%})")
    if as_json:
        print(json.dumps(result))
