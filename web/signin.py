"""Signing in to the partner and operator areas (docs/privacy.md#browser-sessions): a partner API key
is exchanged once for the signed session cookie of `api.sessions`; the session names the key, so
revoking the key (or taking the scope away) ends its sessions at once. Each area has its session
kind and the scope its key needs: `partner` (scope `calibration`), `operator` (scope `operator`).

Every form carries a CSRF token (the pre-sign-in nonce for the sign-in form, the session's token
after) and every POST handler calls `check_form`. The sign-in form follows `next` only to a path
of its own area (no open redirect)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from civicair.api.deps import Partner, has_scope, partner_from_key
from civicair.api.sessions import (
    check_form,
    end_session,
    form_csrf,
    read_session,
    remember_form_nonce,
    session_csrf,
    start_session,
)
from civicair.calibration.repository import partner_key
from civicair.core.sessions import Session
from civicair.core.settings import Settings
from civicair.web.render import page
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Area:
    kind: str  # session kind
    scope: str  # the scope the partner key needs
    prefix: str  # "/partner"

    @property
    def home(self) -> str:
        return self.prefix + "/"

    @property
    def sign_in(self) -> str:
        return self.prefix + "/sign-in"

    @property
    def sign_out(self) -> str:
        return self.prefix + "/sign-out"

    def safe_next(self, value: str | None) -> str:
        if (value and value.startswith(self.prefix + "/") and not value.startswith("//") and "\\" not in value
                and "\r" not in value and "\n" not in value):
            return value
        return self.home


@dataclass(frozen=True)
class SignedIn:
    partner: Partner
    session: Session
    csrf_token: str  # of every form of the signed-in pages
    area: Area


def signed_in(request: Request, conn: Connection, area: Area) -> SignedIn | None:
    """The signed-in user of this area, or None (no session, expired, another kind, key revoked
    or without the scope any more)."""
    settings: Settings = request.app.state.settings
    session = read_session(request, settings, area.kind)
    if session is None or not session.subject.isdigit():
        return None
    row = partner_key(conn, key_id=int(session.subject))
    if row is None:
        return None
    partner = Partner(id=row.id, name=row.name, scopes=frozenset(row.scopes), via="session")
    if not has_scope(partner, area.scope):
        return None
    return SignedIn(partner, session, session_csrf(settings, session), area)


def to_sign_in(request: Request, area: Area) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{area.sign_in}?{urlencode({'next': target})}", status_code=303)


def sign_in_page(request: Request, area: Area, *, next: str | None, error: str | None = None,
                 status: int = 200) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    token, nonce = form_csrf(request, settings)
    response = page(request, f"{area.kind}/sign_in.html", status=status, area=area, csrf_token=token,
                    next=area.safe_next(next), hours=round(settings.session_ttl_s / 3600, 1), error=error)
    remember_form_nonce(response, settings, nonce)
    response.headers["Cache-Control"] = "no-store"
    return response


def sign_in(request: Request, conn: Connection, area: Area, *, api_key: str, csrf_token: str,
            next: str | None) -> Response:
    settings: Settings = request.app.state.settings
    check_form(request, settings, csrf_token)
    partner = partner_from_key(conn, api_key.strip()) if api_key.strip() else None
    if partner is None:
        return sign_in_page(request, area, next=next, error="signin.unknown", status=401)
    if not has_scope(partner, area.scope):
        return sign_in_page(request, area, next=next, error="signin.scope", status=403)
    response = RedirectResponse(area.safe_next(next), status_code=303)
    start_session(response, settings, str(partner.id), area.kind)
    return response


def sign_out(request: Request, area: Area, csrf_token: str) -> Response:
    """Ends the session; the form's token is checked when a session of this area is there."""
    settings: Settings = request.app.state.settings
    session = read_session(request, settings, area.kind)
    if session is not None:
        check_form(request, settings, csrf_token, session)
    response = RedirectResponse(area.sign_in, status_code=303)
    end_session(response, settings)
    return response


def signed_page(request: Request, user: SignedIn, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of a signed-in area: never cached by a shared cache, never framed."""
    response = page(request, template, status=status, user=user, area=user.area, csrf_token=user.csrf_token,
                    **context)
    response.headers["Cache-Control"] = "private, no-store"
    return response
