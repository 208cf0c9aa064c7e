"""The SensorThings API as an ASGI app (docs/sensorthings.md), mounted at `/sta/v1.1` by
`civicair.runtime.build_app`. Read-only: GET (and HEAD) only. Errors carry the status the
standard gives them and a body with both the problem+json members and FROST-Server's `code` /
`message`, which the clients print."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from civicair.core.db import Database
from civicair.core.errors import CivicairError, NotFound
from civicair.core.settings import Settings
from civicair.sta.catalogue import CatalogueCache
from civicair.sta.service import Result, handle
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

PREFIX = "/sta/v1.1"
log = logging.getLogger(__name__)


def error(status: int, message: str, path: str) -> Response:
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 503: "Service unavailable"}.get(
        status, "Internal error")
    body = {"type": "about:blank", "title": title, "status": status, "detail": message, "instance": path,
            "code": status, "message": message}
    headers = {"Allow": "GET, HEAD"} if status == 405 else ({"Retry-After": "5"} if status == 503 else None)
    return Response(orjson.dumps(body), status, media_type="application/problem+json", headers=headers)


class SensorThingsApp:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.catalogues = CatalogueCache(settings.api_cache_ttl_s, db.read_engine.connect, settings)

    def run(self, path: str, pairs: list[tuple[str, str]]) -> Result:
        # autocommit: each statement its own snapshot, as the public API's zone series reads (no
        # BEGIN / ROLLBACK round trips); the read model's functions are written for that
        with self.db.read_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            catalogue = self.catalogues.get(conn)
            return handle(conn, self.settings, catalogue, path, pairs)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        full = scope.get("path", "")
        path = full[len(PREFIX):] if full.startswith(PREFIX) else full
        response = await self.respond(request, path, full)
        await response(scope, receive, send)

    async def respond(self, request: Request, path: str, full: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            return error(405, f"{request.method} is not supported: this SensorThings service is read-only", full)
        try:
            result = await run_in_threadpool(self.run, path, list(request.query_params.multi_items()))
        except NotFound as exc:
            return error(404, exc.detail, full)
        except CivicairError as exc:
            status = 400 if exc.status in (400, 422) else exc.status
            return error(status, exc.detail, full)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
            log.warning("database unavailable for %s: %s", full, str(exc).splitlines()[0] if str(exc) else exc)
            return error(503, "the database is unreachable or busy; retry later", full)
        except sa.exc.DataError as exc:  # a value PostgreSQL refused (an out-of-range literal)
            return error(400, f"a value in the query is out of range: {str(exc.orig).splitlines()[0]}", full)
        except Exception:  # a bug: logged, answered as the standard's 500 rather than a dropped connection
            log.exception("SensorThings request %s failed", full)
            return error(500, "internal error (logged)", full)
        if result.status == 204:
            return Response(status_code=204)
        if isinstance(result.body, str):
            return Response(result.body.encode(), media_type="text/plain; charset=utf-8")
        return Response(orjson.dumps(result.body), media_type="application/json")


def install(app: Any, settings: Settings, db: Database) -> SensorThingsApp:
    """Mount the service at /sta/v1.1 of `app` (a Starlette / FastAPI application)."""
    sta = SensorThingsApp(settings, db)
    app.router.routes.insert(0, Route(PREFIX, sta, methods=None))
    app.router.routes.insert(1, Mount(PREFIX, app=sta))  # type: ignore[arg-type]
    return sta
