"""Offline API docs: Swagger UI from the assets fastapi-offline ships (no CDN), started by a
script file (no inline script), with `lang` set and colours fixed for contrast (static/docs)."""

from __future__ import annotations

from civicair.web.render import ENV, csp
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.api_route("/docs", methods=["GET", "HEAD"])
def docs_page(request: Request) -> HTMLResponse:
    html = ENV.get_template("docs.html").render(title=request.app.title, openapi_url=request.app.openapi_url)
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = csp(request.app.state.settings)
    return response
