"""Rendering a page: the Jinja2 environment (autoescaped), the language of the request, the
security headers (a CSP without inline scripts; only the embed page may be framed elsewhere)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from civicair.core.settings import Settings
from civicair.web import i18n
from civicair.web.assets import Assets
from fastapi import Request
from fastapi.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def tiles_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}" if parts.scheme and parts.netloc else ""


def csp(settings: Settings, *, framed_anywhere: bool = False) -> str:
    tiles = tiles_origin(settings.map_tiles_url)
    return ("default-src 'self'; "
            f"img-src 'self' data: {tiles}; ".replace("  ", " ") +
            "script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; "
            f"frame-ancestors {'*' if framed_anywhere else chr(39) + 'self' + chr(39)}")


def language(request: Request) -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                       request.headers.get("accept-language"))


def when(value: datetime | str | None, lang: str) -> str:
    """A UTC time as the pages print it."""
    if value is None:
        return "—"
    t = datetime.fromisoformat(value) if isinstance(value, str) else value
    return t.strftime("%d/%m/%Y %H:%M UTC" if lang == "fr" else "%Y-%m-%d %H:%M UTC")


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def page(request: Request, template: str, *, status: int = 200, embed: bool = False, **context: Any) -> HTMLResponse:
    """The rendered page. `?lang=` switches the language and keeps it in a cookie (never on the
    embed page: the widget sets no cookie)."""
    settings: Settings = request.app.state.settings
    assets: Assets = request.app.state.web_assets
    lang = language(request)
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    other = "en" if lang == "fr" else "fr"

    def t(key: str, **fields: object) -> str:
        return i18n.message(lang, key, **fields)

    html = ENV.get_template(template).render(
        request=request, settings=settings, lang=lang, t=t, asset=assets.url, when=lambda v: when(v, lang),
        number=number, other_lang=other, messages=i18n.MESSAGES,
        switch_url=request.url.path + "?" + urlencode({**query, "lang": other}), **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = csp(settings, framed_anywhere=embed)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    if not embed and request.query_params.get("lang") in i18n.LANGS:
        response.set_cookie(i18n.COOKIE, lang, max_age=i18n.COOKIE_MAX_AGE_S, samesite="lax", httponly=True)
    return response
