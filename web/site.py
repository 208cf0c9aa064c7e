"""Mounting the public web into the app (`install`, called by `civicair.runtime.build_app`):
the pages, the bundle (`/static/dist`, content-hashed files cached for a year), the hand-written
/docs assets and Swagger UI's (`/static-offline-docs`, from fastapi-offline: /docs works without
Node.js and without network)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import fastapi_offline
from civicair.core.settings import Settings
from civicair.web import docs, mysensor, operator, pages, partner, volunteer
from civicair.web.assets import DIST, DIST_URL, Assets
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class CacheHeaders:
    """Cache-Control on static files: a year for content-hashed names, an hour for the others
    (widget.js keeps its name: communes embed its URL)."""

    def __init__(self, app: ASGIApp, stable: tuple[str, ...] = ("widget.js", "manifest.json")) -> None:
        self.app = app
        self.stable = stable

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        long = not path.endswith(self.stable)

        async def send_cached(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                value = b"public, max-age=31536000, immutable" if long else b"public, max-age=3600"
                message["headers"] = [*message.get("headers", []), (b"cache-control", value),
                                      (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_cached)


def install(app: FastAPI, settings: Settings, *, dist: Path = DIST) -> None:
    assets = Assets(dist)
    app.state.web_assets = assets
    app.mount(DIST_URL, CacheHeaders(StaticFiles(directory=dist, check_dir=False)), name="web-dist")
    app.mount("/static/docs", CacheHeaders(StaticFiles(directory=STATIC / "docs"), stable=(".js", ".css")),
              name="web-docs")
    app.mount("/static-offline-docs", CacheHeaders(StaticFiles(directory=SWAGGER_STATIC),
                                                   stable=(".js", ".css", ".png")), name="swagger-ui")
    app.include_router(docs.router)
    app.include_router(pages.router)
    app.include_router(volunteer.router)  # issue 17v: sign-up, credentials once, bundle, flashing
    app.include_router(mysensor.router)  # the volunteer's signed-in pages (issue 17s)
    app.include_router(partner.router)  # signed-in areas (issue 17)
    app.include_router(operator.router)
