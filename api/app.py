"""The FastAPI application factory. Resources (database engines) are created by the caller
(`civicair up` / `civicair api` / tests) and handed in; the app never creates them at import."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from civicair.api import middleware, problems
from civicair.api.catalog import install_links as install_catalogue_links
from civicair.api.catalog import router as catalog_router
from civicair.api.deps import close_read_pool
from civicair.api.operator.endpoints import router as operator_router
from civicair.api.partner.endpoints import router as partner_router
from civicair.api.public.endpoints import router as public_router
from civicair.api.public.map import router as map_router
from civicair.api.push import router as push_router
from civicair.api.volunteer.endpoints import router as volunteer_router
from civicair.core.db import Database, libpq_url
from civicair.core.settings import Settings
from civicair.ingest.group_commit import GroupCommitter
from civicair.ingest.store import Quota
from fastapi import FastAPI, Request, Response
from fastapi.middleware.gzip import GZipMiddleware

log = logging.getLogger(__name__)

DESCRIPTION = """
Open air-quality data from citizen sensors, aggregated, anonymised and calibrated against the
official reference stations. Data under the licence named in every response.

* **public**: devices (pseudonymised), zone series, mobile cells, reference stations.
* **partner**: calibration reports for the air-quality agency (`X-API-Key`).
* **operator**: the publication workflow of devices (`X-API-Key` with the `operator` scope).
* **volunteer**: sensor owners, with their device token (`Authorization: Bearer`).
"""


def broker_reachable(mqtt_url: str | None, timeout: float = 1.0) -> bool:
    if not mqtt_url:
        return False
    parts = urlsplit(mqtt_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=timeout):
            return True
    except OSError:
        return False


def prepare_to_serve() -> None:
    """Call once the API process is set up, before serving.

    - `gc.freeze()`: every object allocated so far (modules, the app, pools) leaves the cyclic
      garbage collector's reach. Requests that hold many containers at once promote them and
      trigger full collections, which scanned the whole ~160k-object heap (113 ms each).
    - glibc only: keep large blocks in the heap (`M_MMAP_THRESHOLD` 32 MiB, trim at 256 MiB).
      By default each ~0.5 MB response buffer (libpq result, bytes, body) is a fresh mmap, paid
      in page faults and zeroing on every request: 0.8 ms of CPU per zone-series page here.
    """
    import ctypes
    import ctypes.util
    import gc
    import sys

    gc.collect()
    gc.freeze()
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
            libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        except (OSError, AttributeError):  # not glibc (musl): nothing to tune
            pass


def create_app(
    settings: Settings,
    db: Database,
    *,
    mqtt_url: str | None = None,
    broker_status: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await close_read_pool(app.state)
        app.state.push_committer.close()

    app = FastAPI(
        lifespan=lifespan,
        title="civicair",
        version="0.1.0",
        description=DESCRIPTION,
        license_info={"name": settings.licence_name, "url": settings.licence_url},
        docs_url=None,  # /docs is served offline by civicair.web (Swagger UI from fastapi-offline)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.read_pool_lock = asyncio.Lock()  # api.deps.read_pool
    app.state.mqtt_url = mqtt_url or settings.mqtt_url
    app.state.started_at = time.time()
    # the broker's state, for /health and the operator console (web/operator.py)
    app.state.broker_status = broker_status or (
        lambda: {"status": "ok" if broker_reachable(app.state.mqtt_url) else "down"})
    app.state.scheduler = None  # the `up` process sets its scheduler here (civicair/runtime.py)
    app.state.push_committer = GroupCommitter(  # the HTTP push writes (ingest/group_commit.py)
        libpq_url(db.url), clock_future_s=settings.clock_future_s, clock_past_s=settings.clock_past_s,
        quota=Quota.from_settings(settings))
    problems.install(app)
    middleware.install(app, settings)  # before GZip: compression stays outermost
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.get("/health", tags=["operations"], summary="Database and broker status")
    def health(request: Request) -> dict[str, Any]:
        result: dict[str, Any] = {"status": "ok"}
        try:
            with db.engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            result["database"] = {"status": "ok"}
        except sa.exc.SQLAlchemyError as exc:  # the error text stays in the log, never public
            log.warning("health: database unavailable: %s", (str(exc).splitlines() or [""])[0])
            result["database"] = {"status": "down"}
            result["status"] = "degraded"
        result["broker"] = app.state.broker_status()
        if result["broker"].get("status") != "ok":
            result["status"] = "degraded"
        return result

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        from civicair.ingest.metrics import render

        body, content_type = render()
        return Response(body, media_type=content_type)

    app.include_router(public_router)
    app.include_router(map_router)
    app.include_router(partner_router)
    app.include_router(operator_router)
    app.include_router(volunteer_router)
    app.include_router(push_router)
    app.include_router(catalog_router)
    install_catalogue_links(app, settings)
    return app
