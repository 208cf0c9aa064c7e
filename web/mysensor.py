"""The volunteer's "my sensor" pages (docs/privacy.md#my-sensor): sign in with the device
token → a signed volunteer session cookie (api/sessions.py); the sensor's last readings, status,
stars, flags, calibration and publication state; privacy zones of a bike sensor (a form that a
Leaflet map fills, zones.js); new credentials (shown once); erase in two steps; sign out.

Every value comes from the services the volunteer API uses (firmware_tools.service,
firmware_tools.publication, calibration.reporting): the pages add no rule of their own. Every
form carries a CSRF token and every post checks it. The session names the device and a
fingerprint of its current token: a rotation ends every other session of the device, and an
erased device's session ends with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from civicair.api.sessions import (
    check_form,
    end_session,
    form_csrf,
    read_session,
    remember_form_nonce,
    session_csrf,
    start_session,
)
from civicair.calibration.report import render_html
from civicair.calibration.reporting import device_report
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.errors import DeviceNotFound, Forbidden, InvalidInput
from civicair.core.sessions import Session
from civicair.core.settings import Settings
from civicair.firmware_tools import service
from civicair.firmware_tools.publication import publication_status
from civicair.firmware_tools.schemas import PrivacyZoneIn
from civicair.open_export.erasure import erase_device_files
from civicair.web.render import csp, page
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.engine import Connection

router = APIRouter(prefix="/my-sensor", include_in_schema=False)
VOLUNTEER_SESSION = "volunteer"
HOME, SIGN_IN = "/my-sensor", "/my-sensor/sign-in"
MAX_ZONES = 10
Text = Annotated[str, Form()]
Texts = Annotated[list[str], Form()]


@contextmanager
def _read(request: Request) -> Iterator[Connection]:
    """The primary, not the read replica: right after a rotation or an erasure a lagging replica
    would still know the old token (and sign the volunteer out, or in)."""
    with request.app.state.db.engine.connect() as conn:
        yield conn


@contextmanager
def _write(request: Request) -> Iterator[Connection]:
    """One transaction, committed before the page is sent (credentials are never shown for a
    rotation that did not commit)."""
    with request.app.state.db.engine.begin() as conn:
        yield conn


def token_fingerprint(token_hash: str) -> str:
    """What the session keeps of the device's current token: changes when the token rotates."""
    return hashlib.sha256(f"civicair:session:{token_hash}".encode()).hexdigest()[:24]


def start_volunteer_session(response: Response, settings: Settings, device: Any) -> Session:
    return start_session(response, settings, device.uid, VOLUNTEER_SESSION,
                         data={"key": token_fingerprint(device.token_hash)})


def signed_in(request: Request, conn: Connection) -> tuple[Session, Any] | None:
    """The volunteer session and its device row, if the device still exists and its token has
    not rotated since the session began."""
    session = read_session(request, request.app.state.settings, VOLUNTEER_SESSION)
    if session is None:
        return None
    try:
        row = service.device_by_uid(conn, session.subject)
    except DeviceNotFound:
        return None
    if not row.token_hash or session.data.get("key") != token_fingerprint(row.token_hash):
        return None
    return session, row


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse(SIGN_IN, status_code=303)


def _refused(request: Request, exc: Forbidden) -> Response:
    return _private(page(request, "mysensor/message.html", status=403, title_key="my.refused",
                         text=exc.detail, back=HOME))


def _csrf(request: Request, session: Session | None, token: str) -> None:
    check_form(request, _settings(request), token, session)


def _posted(request: Request, conn: Connection, csrf_token: str) -> tuple[Session, Any] | Response:
    """The session and device behind a posted form, or the answer that ends the request: the
    sign-in page without a session, a refusal without the form's CSRF token."""
    current = signed_in(request, conn)
    if current is None:
        return _to_sign_in()
    try:
        _csrf(request, current[0], csrf_token)
    except Forbidden as exc:
        return _refused(request, exc)
    return current


# --- sign in / out ------------------------------------------------------------------------------
def _sign_in_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    settings = _settings(request)
    token, nonce = form_csrf(request, settings)
    response = page(request, "mysensor/sign_in.html", status=status, csrf_token=token, error=error,
                    hours=round(settings.session_ttl_s / 3600, 1))
    remember_form_nonce(response, settings, nonce)
    return _private(response)


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
def sign_in(request: Request, device_token: Text = "", csrf_token: Text = "") -> Response:
    try:
        _csrf(request, None, csrf_token)
    except Forbidden as exc:
        return _refused(request, exc)
    with _read(request) as conn:
        row = service.device_by_token(conn, device_token.strip())
    if row is None:
        return _sign_in_page(request, "my.sign_in.unknown", 401)
    response = RedirectResponse(HOME, status_code=303)
    start_volunteer_session(response, _settings(request), row)
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Text = "") -> Response:
    with _read(request) as conn:
        current = signed_in(request, conn)
    if current is not None:
        try:
            _csrf(request, current[0], csrf_token)
        except Forbidden as exc:
            return _refused(request, exc)
    response = RedirectResponse(SIGN_IN, status_code=303)
    end_session(response, _settings(request))
    return response


# --- the sensor ---------------------------------------------------------------------------------
def _readings(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        q = QUANTITY_BY_CODE.get(r.quantity)
        out.append({"time": r.time, "received_at": r.received_at, "quantity": q.name if q else str(r.quantity),
                    "unit": q.unit if q else "", "value": r.value, "flagged": bool(r.flags)})
    return out


def _quantity(code: Any) -> str:
    q = QUANTITY_BY_CODE.get(code) if isinstance(code, int) else None
    return q.name if q else str(code)


@router.get("")
def home(request: Request) -> Response:
    settings = _settings(request)
    with _read(request) as conn:
        current = signed_in(request, conn)
        if current is None:
            return _to_sign_in()
        session, row = current
        status = service.device_status(conn, settings, row.id)
        publication = publication_status(conn, settings, row.uid)
        readings = _readings(service.latest_readings(conn, row.id))
    return _private(page(request, "mysensor/home.html", device=status, publication=publication, readings=readings,
                         quantity_name=_quantity, csrf_token=session_csrf(settings, session),
                         zones=len(row.privacy_zones or ())))


@router.get("/report")
def report(request: Request, quantity: str = "pm25") -> Response:
    """The device's calibration report: the same document the partner API serves."""
    settings = _settings(request)
    if quantity not in QUANTITY_BY_NAME:
        return page(request, "mysensor/message.html", status=400, title_key="my.bad_input",
                    text=f"unknown quantity {quantity[:40]!r}", back=HOME)
    with _read(request) as conn:
        current = signed_in(request, conn)
        if current is None:
            return _to_sign_in()
        session, row = current
        doc = device_report(conn, row.pseudonym, quantity)
    logout = {"action": "/my-sensor/sign-out", "csrf_token": session_csrf(settings, session)}
    response = HTMLResponse(render_html(doc, history=doc.get("status_history"), logout=logout))
    response.headers["Content-Security-Policy"] = csp(settings)
    response.headers["Referrer-Policy"] = "same-origin"
    return _private(response)


# --- privacy zones (bike sensors) ------------------------------------------------------------------
def parse_zones(lat: list[str], lon: list[str], radius_m: list[str], remove: list[str]) -> list[PrivacyZoneIn]:
    """The zones a posted form describes: row i of the lat/lon/radius fields, rows left empty
    and rows ticked `remove` (their index) skipped. Raises InvalidInput naming the row."""
    zones = []
    for i, (la, lo, ra) in enumerate(zip(lat, lon, radius_m, strict=False)):
        if str(i) in remove or not (la.strip() or lo.strip()):
            continue
        try:
            zones.append(PrivacyZoneIn.model_validate({  # a decimal comma is accepted (French keyboards)
                "lat": la.strip().replace(",", "."), "lon": lo.strip().replace(",", "."),
                "radius_m": (ra.strip() or "200").replace(",", ".")}))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InvalidInput(f"zone {i + 1}: {first['loc'][0]}: {first['msg']}", parameter="zones") from None
    if len(zones) > MAX_ZONES:
        raise InvalidInput(f"at most {MAX_ZONES} privacy zones", parameter="zones")
    return zones


def _zones_page(request: Request, session: Session, row: Any, rows: list[dict[str, str]],
                error: str | None = None, saved: bool = False, status: int = 200) -> Response:
    settings = _settings(request)
    west, south, east, north = settings.export_bbox
    first = next((r for r in rows if r["lat"] and r["lon"]), None)
    # the first zone, else the position given at registration (the owner's own, often home), else
    # the middle of the exported area
    center = [row.lat, row.lon] if row.lat is not None and row.lon is not None else [(south + north) / 2,
                                                                                      (west + east) / 2]
    try:
        center = [float(first["lat"]), float(first["lon"])] if first else center
    except ValueError:  # a mistyped row shown back
        pass
    config = {"tilesUrl": settings.map_tiles_url or None, "tilesAttribution": settings.map_tiles_attribution,
              "center": center, "zoom": 14, "maxZones": MAX_ZONES}
    return _private(page(request, "mysensor/zones.html", status=status, rows=rows, error=error, saved=saved,
                         config=json.dumps(config), csrf_token=session_csrf(settings, session),
                         mobile=row.kind == "mobile", max_zones=MAX_ZONES))


def _rows(zones: list[PrivacyZoneIn]) -> list[dict[str, str]]:
    return [{"lat": f"{z.lat:.6f}", "lon": f"{z.lon:.6f}", "radius_m": f"{z.radius_m:g}"} for z in zones]


@router.get("/zones")
def zones_form(request: Request) -> Response:
    with _read(request) as conn:
        current = signed_in(request, conn)
        if current is None:
            return _to_sign_in()
        session, row = current
        zones = service.privacy_zones(conn, row.id)
    return _zones_page(request, session, row, _rows(zones))


@router.post("/zones")
def zones_save(request: Request, csrf_token: Text = "", lat: Texts = [], lon: Texts = [],  # noqa: B006
               radius_m: Texts = [], remove: Texts = []) -> Response:  # noqa: B006
    with _write(request) as conn:
        posted = _posted(request, conn, csrf_token)
        if isinstance(posted, Response):
            return posted
        session, row = posted
        typed = [{"lat": a, "lon": o, "radius_m": r} for a, o, r in zip(lat, lon, radius_m, strict=False)]
        try:
            zones = service.set_privacy_zones(conn, row.id, parse_zones(lat, lon, radius_m, remove))
        except InvalidInput as exc:  # what was typed comes back, nothing is saved
            return _zones_page(request, session, row, typed, error=exc.detail, status=400)
    return _zones_page(request, session, row, _rows(zones), saved=True)


# --- credentials and erasure ----------------------------------------------------------------------
@router.post("/rotate")
def rotate(request: Request, csrf_token: Text = "") -> Response:
    settings = _settings(request)
    with _write(request) as conn:
        posted = _posted(request, conn, csrf_token)
        if isinstance(posted, Response):
            return posted
        session, row = posted
        creds = service.rotate_credentials(conn, settings, row.id)
        row = service.device_by_uid(conn, row.uid)
    # this browser stays signed in (a session for the new token), every other one is signed out
    cookie = Response()
    fresh = start_volunteer_session(cookie, settings, row)
    response = page(request, "mysensor/credentials.html", creds=creds, device=row,
                    csrf_token=session_csrf(settings, fresh))
    response.headers.append("set-cookie", cookie.headers["set-cookie"])
    return _private(response)


@router.post("/erase")
def erase_request(request: Request, csrf_token: Text = "") -> Response:
    settings = _settings(request)
    with _read(request) as conn:
        posted = _posted(request, conn, csrf_token)
    if isinstance(posted, Response):
        return posted
    session, row = posted
    code, expires = service.erase_code(settings, row.uid)
    return _private(page(request, "mysensor/erase.html", confirm=code, minutes=settings.erase_confirm_ttl_s // 60,
                         device=row, csrf_token=session_csrf(settings, session)))


@router.post("/erase/confirm")
def erase_confirm(request: Request, csrf_token: Text = "", confirm: Text = "") -> Response:
    settings = _settings(request)
    with _write(request) as conn:
        current = signed_in(request, conn)
        if current is None:
            return _to_sign_in()
        session, row = current
        try:
            _csrf(request, session, csrf_token)
            service.erase_device(conn, settings, row.id, confirm,
                                 lambda pseudonym: erase_device_files(conn, settings, pseudonym))
        except Forbidden as exc:
            return _refused(request, exc)
        except InvalidInput as exc:
            return _private(page(request, "mysensor/message.html", status=400, title_key="my.bad_input",
                                 text=exc.detail, back=HOME))
    response = page(request, "mysensor/message.html", title_key="my.erased", text=None, back="/")
    end_session(response, settings)
    return _private(response)
