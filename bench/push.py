"""`civicair bench push`: HTTP push throughput (sensor.community firmware and civicair JSON).

Data: a scratch database (created next to CIVICAIR_DATABASE_URL and dropped afterwards, or an
embedded PostgreSQL in a temporary folder) with `--devices` HTTP devices, each with a token.
Server: the production ASGI app (`civicair.runtime.build_app`, uvicorn configured by
`civicair.runtime.uvicorn_config`) in `--workers` processes on one port with SO_REUSEPORT, on
loopback. Client: `--concurrency` keep-alive connections in this process (the httptools client of
`bench/api.py`), each request a different device and different values:

- `--format sensor-community`: what the airrohr firmware sends, `POST /v1/push/sensor-community`
  with `X-Sensor`/`X-Pin: 1` and P1/P2 (no timestamp: stored at arrival, 2 readings per push);
- `--format civicair`: `POST /v1/push` with a time and 4 readings.

Every push must be answered 201, and afterwards the database must hold exactly the readings sent
(nothing lost, nothing doubled). The baseline of the same run: a bare ASGI app in the same
uvicorn setup that reads the body and answers 201 with a body of the same size (HTTP alone, no
framework, no database); the ratio to it is printed.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

import typer
from civicair.bench.api import _Client, _drive, _pct, _stop, _wait_up
from civicair.bench.scratch import scratch_database

TOKEN = "bench-push-token-{}"


def _load(url: str, devices: int) -> None:
    import sqlalchemy as sa
    from civicair.core import tables
    from civicair.core.db import create_engine
    from civicair.core.migrate import upgrade
    from civicair.core.security import hash_secret, pseudonym

    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(tables.devices), [
                {"uid": f"push-{i}", "pseudonym": pseudonym("bench", f"push-{i}"), "name": f"push-{i}",
                 "kind": "fixed", "transport": "http", "consent_public": True, "token_hash": hash_secret(TOKEN.format(i)),
                 "chip_id": f"esp8266-{1000 + i}"} for i in range(devices)])
    finally:
        engine.dispose()


def app_factory() -> Any:
    """The production app for a benchmark server process (settings from the environment)."""
    from civicair.api.app import prepare_to_serve
    from civicair.core.db import open_database
    from civicair.core.settings import load_settings

    from civicair.runtime import build_app

    settings = load_settings()
    app = build_app(settings, open_database(settings))
    prepare_to_serve()
    return app


def _serve(url: str, port: int) -> None:
    os.environ.update({"CIVICAIR_DATABASE_URL": url, "CIVICAIR_RATE_LIMIT_PER_MINUTE": "100000000",
                       "CIVICAIR_LOG_LEVEL": "warning", "CIVICAIR_PSEUDONYM_SECRET": "bench-push"})
    import uvicorn
    from civicair.core.settings import load_settings

    from civicair.runtime import reuse_port_socket, uvicorn_config

    config = uvicorn_config(load_settings(), "civicair.bench.push:app_factory", factory=True, access_log=False)
    uvicorn.Server(config).run(sockets=[reuse_port_socket("127.0.0.1", port)])


def _serve_static(body: bytes, port: int) -> None:
    """HTTP alone: read the request body, answer 201 with `body`."""
    import uvicorn

    from civicair.runtime import reuse_port_socket

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[reuse_port_socket("127.0.0.1", port)])


def _cpu_s(procs: list[Any]) -> float:
    """CPU seconds (user + system) used so far by the server processes (all their threads)."""
    import psutil

    total = 0.0
    for proc in procs:
        t = psutil.Process(proc.pid).cpu_times()
        total += t.user + t.system
    return total


def _backends(url: str) -> dict[int, float]:
    """CPU seconds used so far by the PostgreSQL backends of the scratch database, when they run
    on this machine (by pid; a backend that went away is left out)."""
    import psutil
    import sqlalchemy as sa
    from civicair.core.db import create_engine

    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            pids = conn.execute(sa.text("select pid from pg_stat_activity where datname = current_database() "
                                        "and pid <> pg_backend_pid()")).scalars().all()
    finally:
        engine.dispose()
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out[pid] = t.user + t.system
    return out


def _wait_answer(url: str, httpx: Any) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError("baseline server did not start") from None
            time.sleep(0.1)


def _request(fmt: str, i: int, devices: int, t0: float) -> tuple[str, bytes, bytes]:
    """(path, extra headers, body) of push number `i` (distinct device / values / time)."""
    dev = i % devices
    auth = f"Authorization: Bearer {TOKEN.format(dev)}\r\n"
    if fmt == "sensor-community":
        body = json.dumps({"software_version": "NRZ-2024-135", "sensordatavalues": [
            {"value_type": "P1", "value": f"{10 + i % 97 / 10:.2f}"},
            {"value_type": "P2", "value": f"{5 + i % 89 / 10:.2f}"}]}).encode()
        headers = auth + f"X-Sensor: esp8266-{1000 + dev}\r\nX-Pin: 1\r\n"
        return "/v1/push/sensor-community", headers.encode(), body
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 - 3600 + i // devices)) + f".{i % devices:06d}Z"
    body = json.dumps({"time": t, "readings": {"pm25": 5 + i % 89 / 10, "pm10": 10 + i % 97 / 10,
                                               "temperature": 12.5, "humidity": 61}}).encode()
    return "/v1/push", auth.encode(), body


async def _post(client: _Client, host: str, path: str, headers: bytes, body: bytes) -> tuple[int, int]:
    assert client.transport is not None
    client.done, client.size = asyncio.get_running_loop().create_future(), 0
    client.transport.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n".encode() + headers + b"\r\n" + body)
    return await client.done


async def _run(base: str, requests: list[tuple[str, bytes, bytes]], concurrency: int) -> tuple[list[float], float, dict[int, int]]:
    host, port = base.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[str, bytes, bytes]] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def worker() -> None:
        transport, client = await loop.create_connection(_Client, host, int(port))
        try:
            while True:
                try:
                    path, headers, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                status, _ = await _post(client, host, path, headers, body)
                latencies.append((time.perf_counter() - t) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            transport.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start, statuses


def bench_push(
    requests: int = typer.Option(4000, help="Pushes per round."),
    devices: int = typer.Option(200, help="Devices pushing (each with its own token)."),
    concurrency: int = typer.Option(16, help="Concurrent client connections."),
    rounds: int = typer.Option(3, help="Rounds; the median is reported."),
    workers: int = typer.Option(2, help="API server processes."),
    fmt: str = typer.Option("sensor-community", "--format", help="sensor-community | civicair"),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
) -> None:
    """POST pushes with N keep-alive connections: stored pushes/s, p50/p95, nothing lost (target ≥ 500/s)."""
    import httpx
    import sqlalchemy as sa
    from civicair.core.broker import free_port
    from civicair.core.console import console, fail, settings_or_exit
    from civicair.core.db import create_engine

    if fmt not in ("sensor-community", "civicair"):
        fail("--format: sensor-community or civicair")
    settings = settings_or_exit()
    with scratch_database(settings, "push") as (url, where):
        procs: list[Any] = []
        per_push = 2 if fmt == "sensor-community" else 4
        t0 = time.time()
        try:
            _load(url, devices)
            port = free_port()
            procs = [mp.get_context("spawn").Process(target=_serve, args=(url, port)) for _ in range(workers)]
            for proc in procs:
                proc.start()
            base = f"http://127.0.0.1:{port}"
            _wait_up(base + "/v1/quantities", httpx)
            n = 0
            warm = [_request(fmt, i, devices, t0) for i in range(n, n + 200)]
            n += len(warm)
            _, _, statuses = _drive(_run(base, warm, concurrency))  # connections, plans, pools: not timed
            lat_1, _, st = _drive(_run(base, [_request(fmt, i, devices, t0) for i in range(n, n + 300)], 1))
            n += 300
            for k, v in st.items():
                statuses[k] = statuses.get(k, 0) + v
            rps: list[float] = []
            lat_c: list[float] = []
            cpu0, db0 = _cpu_s(procs), _backends(url)
            timed = 0
            for _ in range(rounds):
                batch = [_request(fmt, i, devices, t0) for i in range(n, n + requests)]
                n += requests
                lat, elapsed, st = _drive(_run(base, batch, concurrency))
                for k, v in st.items():
                    statuses[k] = statuses.get(k, 0) + v
                rps.append(requests / elapsed)
                lat_c += lat
                timed += requests
            api_cpu_ms = (_cpu_s(procs) - cpu0) * 1000 / timed
            db1 = _backends(url)
            db_cpu_ms = sum(db1[p] - db0[p] for p in db1 if p in db0) * 1000 / timed
            _stop(procs)
            engine = create_engine(url)
            with engine.connect() as conn:
                stored = conn.execute(sa.text("select count(*) from readings")).scalar_one()
                dead = conn.execute(sa.text("select count(*) from dead_letters")).scalar_one()
            engine.dispose()
            # baseline: HTTP alone, same uvicorn setup, same request bodies, a 201 of the same size
            port = free_port()
            procs = [mp.get_context("spawn").Process(target=_serve_static, args=(b'{"stored":2,"messages":1}', port))
                     for _ in range(workers)]
            for proc in procs:
                proc.start()
            base = f"http://127.0.0.1:{port}"
            _wait_answer(base + "/", httpx)
            rps_t: list[float] = []
            for _ in range(rounds):
                _, elapsed, _ = _drive(_run(base, [_request(fmt, i, devices, t0) for i in range(requests)], concurrency))
                rps_t.append(requests / elapsed)
        finally:
            _stop(procs)
    expected = n * per_push
    result = {
        "format": fmt, "requests": requests, "concurrency": concurrency, "workers": workers, "devices": devices,
        "rounds": rounds,
        "pushes_per_s": round(statistics.median(rps), 1),
        "pushes_per_s_rounds": [round(x, 1) for x in rps],
        "p50_ms": round(statistics.median(lat_c), 2), "p95_ms": round(_pct(lat_c, 0.95), 2),
        "single_client_p50_ms": round(statistics.median(lat_1), 2),
        "api_cpu_ms_per_push": round(api_cpu_ms, 2),
        "db_cpu_ms_per_push": round(db_cpu_ms, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "pushes_sent": n, "readings_expected": expected, "readings_stored": stored, "dead_letters": dead,
        "nothing_lost": stored == expected and statuses == {201: n},
        "transport_pushes_per_s": round(statistics.median(rps_t), 1),
        "transport_pushes_per_s_rounds": [round(x, 1) for x in rps_t],
        "ratio_to_transport": round(statistics.median(rps) / statistics.median(rps_t), 3),
        "target_pushes_per_s": 500,
    }
    console.print(f"{fmt} push: {result['pushes_per_s']} stored pushes/s with {concurrency} connections "
                  f"(rounds {result['pushes_per_s_rounds']}), p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms; "
                  f"one client p50 {result['single_client_p50_ms']} ms; CPU per push: API processes "
                  f"{result['api_cpu_ms_per_push']} ms, PostgreSQL {result['db_cpu_ms_per_push']} ms ({where})")
    console.print(f"nothing lost: {result['nothing_lost']} ({stored} of {expected} readings, statuses "
                  f"{result['statuses']}); baseline in this run: bare ASGI app {result['transport_pushes_per_s']} "
                  f"pushes/s (push is {result['ratio_to_transport']:.1%} of it); target ≥ 500/s: "
                  f"{'met' if result['pushes_per_s'] >= 500 else 'NOT met'}")
    if as_json:
        print(json.dumps(result))
