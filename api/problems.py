"""RFC 9457 problem+json rendering for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import sqlalchemy as sa
from civicair.core.errors import CivicairError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem(status: int, title: str, detail: str, request: Request | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(CivicairError)
    async def _domain(request: Request, exc: CivicairError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, request, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
            errors.append({"parameter": ".".join(loc) or "request", "message": err.get("msg", "")})
        detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
        return problem(422, "Invalid parameter", detail, request, errors=errors)

    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable for %s: %s", request.url.path, str(exc).splitlines()[0] if str(exc) else exc)
        return problem(503, "Service unavailable", "the database is unreachable or busy; retry later", request,
                       retry_after=5)

    for error in (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError,
                  psycopg.InterfaceError, PoolTimeout):
        app.add_exception_handler(error, _database_down)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), request)
