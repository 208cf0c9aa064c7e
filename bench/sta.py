"""`civicair bench sta`: a year of one zone datastream's hourly Observations paged with `$top=1000`
through the SensorThings API, as frost-sta-client and istsos4-client page it.

Data: the `bench api` data set (200 devices in 50 zones, a year of `hourly` rows each,
`bench/api.py: load`), the zone series materialised and the SensorThings ids registered, as the
scheduled jobs keep them. Server: uvicorn in its own process serving `civicair.runtime.build_app`
(what `civicair api` serves), with its default settings (the SensorThings catalogue is rebuilt
every `api_cache_ttl_s`; /sta responses are not cached). Client: one keep-alive connection, sequential
requests (latency). Measured, per page of 1000 observations:

- first: `GET /sta/v1.1/Datastreams({zone})/Observations?$top=1000`, over the 50 zones;
- walk: every page of the year by following `@iot.nextLink` (9 pages a zone);
- deep, by nextLink: the page whose nextLink points into the last month (hour ~8000);
- deep, by `$skip=8000` (no cursor: resolved from row counts);
- baseline, in the same run: the public API's page of the same hours
  (`/v1/zones/{id}/series?limit=1000`, the first 1000 hours of the year; every URL distinct, so
  the response cache never answers).

Targets (docs/targets.md): p95 per page ≤ 50 ms; deep pages no slower than the first.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import time
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import typer
from civicair.bench.api import N_ZONES, YEAR_END, _pct, _stop, _wait_up, load
from civicair.bench.scratch import scratch_database


def app_factory() -> Any:
    """The application `civicair api` serves (settings from the environment)."""
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
                       "CIVICAIR_LOG_LEVEL": "warning", "CIVICAIR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
    import uvicorn

    config = uvicorn.Config("civicair.bench.sta:app_factory", factory=True, host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)
    uvicorn.Server(config).run()


def _register(url: str) -> None:
    import sqlalchemy as sa
    from civicair.core.settings import Settings
    from civicair.readmodel.things import sync_registry
    from pydantic import SecretStr

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            sync_registry(conn, Settings(database_url=SecretStr(url), _env_file=None))  # type: ignore[call-arg]
    finally:
        engine.dispose()


def _timed(client: Any, url: str) -> tuple[float, Any]:
    t = time.perf_counter()
    r = client.get(url)
    ms = (time.perf_counter() - t) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} → {r.status_code}: {r.text[:200]}")
    return ms, r.json()


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": round(_pct(values, 0.95), 2),
            "n": len(values)}


def bench_sta(
    days: int = typer.Option(365, help="Days of hourly data per device."),
    zones: int = typer.Option(N_ZONES, help="Zones whose year is walked (each adds 9 pages)."),
    repeat: int = typer.Option(3, help="Passes over the zones (the first warms the server up)."),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object."),
) -> None:
    """Page a year of a zone datastream's Observations ($top=1000): p50/p95 per page, deep pages."""
    import httpx
    from civicair.core.broker import free_port
    from civicair.core.console import console, settings_or_exit

    settings = settings_or_exit()
    scratch = ExitStack()  # the scratch database, dropped (or its embedded server stopped) at the end
    url, _ = scratch.enter_context(scratch_database(settings, "sta"))
    procs: list[Any] = []
    first: list[float] = []
    walk: list[float] = []
    deep_link: list[float] = []
    deep_skip: list[float] = []
    baseline: list[float] = []
    try:
        t = time.perf_counter()
        load(url, days)
        _register(url)
        console.print(f"loaded {days} days of hourly rows for {N_ZONES} zones in {time.perf_counter() - t:.1f} s")
        port = free_port()
        procs.append(mp.get_context("spawn").Process(target=_serve, args=(url, port)))
        procs[-1].start()
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/sta/v1.1", httpx)
        with httpx.Client(base_url=base, timeout=60, headers={"Accept-Encoding": "identity"}) as client:
            things = client.get("/sta/v1.1/Things", params={"$filter": "properties/kind eq 'zone' and "
                                                            "properties/zone_kind eq 'admin'", "$top": "1000"}).json()
            datastreams = [t["@iot.id"] * 16 + 2 for t in things["value"]][:zones]
            start = (YEAR_END - timedelta(days=days)).isoformat().replace("+00:00", "Z")
            end = (YEAR_END - timedelta(days=days) + timedelta(hours=1000)).isoformat().replace("+00:00", "Z")
            rows = 0
            for run in range(repeat):
                measured = run > 0
                for ds in datastreams:
                    ms, page = _timed(client, f"{base}/sta/v1.1/Datastreams({ds})/Observations?$top=1000")
                    pages = [page]
                    if measured:
                        first.append(ms)
                    while "@iot.nextLink" in pages[-1]:
                        ms, page = _timed(client, pages[-1]["@iot.nextLink"])
                        pages.append(page)
                        if measured:
                            walk.append(ms)
                    rows = sum(len(p["value"]) for p in pages)
                    into_last_month = pages[-3]["@iot.nextLink"] if len(pages) >= 3 else pages[0]["@iot.nextLink"]
                    ms, _ = _timed(client, into_last_month)
                    if measured:
                        deep_link.append(ms)
                    ms, _ = _timed(client, f"{base}/sta/v1.1/Datastreams({ds})/Observations?$top=1000&$skip=8000")
                    if measured:
                        deep_skip.append(ms)
                    zone = next(t for t in things["value"] if t["@iot.id"] * 16 + 2 == ds)["properties"]["zone_id"]
                    ms, _ = _timed(client, f"{base}/v1/zones/{zone}/series?quantity=pm25&limit=1000&"
                                           f"datetime_from={start}&datetime_to={end[:-1]}.{run:06d}Z")
                    if measured:
                        baseline.append(ms)
    finally:
        _stop(procs)
        scratch.close()
    pages_all = first + walk
    result: dict[str, Any] = {
        "rows_per_year": rows, "datastreams": len(datastreams), "passes": repeat - 1,
        "first": _summary(first), "every_page": _summary(pages_all), "deep_nextlink": _summary(deep_link),
        "deep_skip": _summary(deep_skip), "baseline_public_api": _summary(baseline),
        "deep_nextlink_to_first_p95": round(_pct(deep_link, 0.95) / _pct(first, 0.95), 2),
        "deep_skip_to_first_p95": round(_pct(deep_skip, 0.95) / _pct(first, 0.95), 2),
        "first_to_baseline_p95": round(_pct(first, 0.95) / _pct(baseline, 0.95), 2),
        "target_p95_ms": 50,
    }
    met = result["every_page"]["p95_ms"] <= 50
    console.print(f"SensorThings, {len(datastreams)} zone datastreams × {rows} observations a year, $top=1000, "
                  f"{repeat - 1} measured passes:")
    for label, key in (("first page", "first"), ("every page (nextLink walk)", "every_page"),
                       ("deep page by nextLink (last month)", "deep_nextlink"), ("deep page by $skip=8000", "deep_skip"),
                       ("baseline: public API page of 1000 h", "baseline_public_api")):
        s = result[key]
        console.print(f"  {label:<38} p50 {s['p50_ms']:6.2f} ms   p95 {s['p95_ms']:6.2f} ms   (n={s['n']})",
                      highlight=False)
    console.print(f"deep/first p95: nextLink {result['deep_nextlink_to_first_p95']}, $skip "
                  f"{result['deep_skip_to_first_p95']}; first/baseline p95 {result['first_to_baseline_p95']}; "
                  f"target p95 ≤ 50 ms per page: {'met' if met else 'NOT met'}", highlight=False)
    if as_json:
        print(json.dumps(result))
