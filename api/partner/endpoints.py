"""Partner endpoints (air-quality agency), authenticated by X-API-Key with scopes or by a signed-in
browser session (docs/calibration.md#partner-reports).

Calibration (scope `calibration`): devices with status and stars, one device's report (JSON or
HTML, for every state a device can be in), one station's co-located devices. Devices are
identified by their pseudonym only. Browser sign-in: `/v1/partner/sign-in` exchanges the API key
for a session cookie; the HTML pages redirect there when nobody is signed in."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from civicair.api.deps import (
    PARTNER_SESSION,
    Partner,
    ReadConn,
    SettingsDep,
    partner_from_key,
    partner_page,
    require_partner,
)
from civicair.api.sessions import (
    check_form,
    end_session,
    form_csrf,
    optional_session,
    remember_form_nonce,
    session_csrf,
    start_session,
)
from civicair.calibration.report import render_html, render_station_html
from civicair.calibration.reporting import (
    device_list,
    device_report,
    devices_at_station,
    station_report,
)
from civicair.core.errors import InvalidParameter
from civicair.core.sessions import Session
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

router = APIRouter(prefix="/v1/partner", tags=["partner"])
CalibrationPartner = Annotated[Partner, Depends(require_partner("calibration"))]
CalibrationPage = Annotated[Partner | None, Depends(partner_page("calibration"))]
PartnerSession = Annotated[Session | None, Depends(optional_session(PARTNER_SESSION))]
STATUSES = ("reliable", "suspect", "unreliable", "insufficient_data")
SIGN_IN = "/v1/partner/sign-in"
HOME = "/v1/partner/"


@lru_cache(maxsize=1)
def _pages() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("civicair.api.partner", "templates"), autoescape=select_autoescape())


def _report_url(pseudonym: str, quantity: str) -> str:
    return f"/v1/partner/calibration/devices/{quote(pseudonym)}/report.html?quantity={quote(quantity)}"


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{SIGN_IN}?{urlencode({'next': target})}", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of this API's partner pages: never another site (no open redirect)."""
    if value and value.startswith("/v1/partner/") and not value.startswith("//") and "\\" not in value:
        return value
    return HOME


@router.get("/whoami", summary="The partner behind this API key or browser session")
def whoami(partner: Annotated[Partner, Depends(require_partner(None))]) -> dict[str, Any]:
    return {"name": partner.name, "scopes": sorted(partner.scopes), "via": partner.via}


# --- browser sign-in ---------------------------------------------------------------------------
def _sign_in_page(request: Request, settings: Any, next: str | None, error: str | None, status: int) -> HTMLResponse:
    token, nonce = form_csrf(request, settings)
    response = HTMLResponse(_pages().get_template("sign_in.html").render(
        action=SIGN_IN, csrf_token=token, next=_safe_next(next), hours=round(settings.session_ttl_s / 3600, 1),
        error=error), status_code=status)
    remember_form_nonce(response, settings, nonce)
    return response


@router.get("/sign-in", response_class=HTMLResponse, summary="Sign-in form (API key → session cookie)")
def sign_in_form(request: Request, settings: SettingsDep, next: str | None = Query(None)) -> HTMLResponse:
    return _sign_in_page(request, settings, next, None, 200)


@router.post("/sign-in", summary="Exchange an API key for a signed session cookie")
def sign_in(request: Request, conn: ReadConn, settings: SettingsDep, api_key: Annotated[str, Form()] = "",
            csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = HOME) -> Response:
    check_form(request, settings, csrf_token)
    partner = partner_from_key(conn, api_key.strip()) if api_key.strip() else None
    if partner is None:
        return _sign_in_page(request, settings, next, "Unknown or revoked API key.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(response, settings, str(partner.id), PARTNER_SESSION)
    return response


@router.post("/sign-out", summary="End the browser session")
def sign_out(request: Request, settings: SettingsDep, session: PartnerSession,
             csrf_token: Annotated[str, Form()] = "") -> Response:
    if session is not None:
        check_form(request, settings, csrf_token, session)
    response = RedirectResponse(SIGN_IN, status_code=303)
    end_session(response, settings)
    return response


@router.get("/", response_class=HTMLResponse, summary="Signed-in start page: the devices and their reports")
def home(request: Request, partner: CalibrationPage, conn: ReadConn, settings: SettingsDep,
         session: PartnerSession) -> Response:
    if partner is None:
        return _to_sign_in(request)
    token = session_csrf(settings, session) if session is not None else ""
    return HTMLResponse(_pages().get_template("home.html").render(
        devices=device_list(conn), report=_report_url, sign_out="/v1/partner/sign-out", csrf_token=token,
        partner=partner.name))


# --- calibration --------------------------------------------------------------------------------
@router.get("/calibration/devices", summary="Devices with reliability status, stars and models per pollutant")
def calibration_devices(
    partner: CalibrationPartner, conn: ReadConn, settings: SettingsDep,
    status: str | None = Query(None, description=f"one of {', '.join(STATUSES)}"),
    station: str | None = Query(None, description="only devices co-located with this station"),
    sensor_type: str | None = Query(None, description="e.g. SDS011"),
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", f"must be one of {', '.join(STATUSES)}")
    ids = None if station is None else devices_at_station(conn, station, settings.colocation_distance_m)
    results = device_list(conn, status=status, sensor_type_filter=sensor_type, device_ids=ids)
    return {"meta": {"found": len(results), "licence": settings.licence_name, "attribution": settings.attribution},
            "results": results}


def _html(request: Request, settings: Any, session: Session | None, report: dict[str, Any]) -> HTMLResponse:
    logout = {"action": "/v1/partner/sign-out", "csrf_token": session_csrf(settings, session)} if session else None
    return HTMLResponse(render_html(report, history=report.get("status_history"), logout=logout))


@router.get("/calibration/devices/{pseudonym}", summary="One device's calibration report (JSON or HTML)")
def calibration_device(request: Request, pseudonym: str, partner: CalibrationPartner, conn: ReadConn,
                       settings: SettingsDep, session: PartnerSession, quantity: str = Query("pm25"),
                       format: Literal["json", "html"] = Query("json")) -> Any:
    report = device_report(conn, pseudonym, quantity)
    return _html(request, settings, session, report) if format == "html" else report


@router.get("/calibration/devices/{pseudonym}/report.html", response_class=HTMLResponse,
            summary="One device's report as a page (signs the browser in first when needed)")
def calibration_device_html(request: Request, pseudonym: str, partner: CalibrationPage, conn: ReadConn,
                            settings: SettingsDep, session: PartnerSession,
                            quantity: str = Query("pm25")) -> Response:
    if partner is None:
        return _to_sign_in(request)
    return _html(request, settings, session, device_report(conn, pseudonym, quantity))


@router.get("/calibration/stations/{code}", summary="One station's co-located devices")
def calibration_station(code: str, partner: CalibrationPartner, conn: ReadConn, settings: SettingsDep,
                        quantity: str = Query("pm25"), format: Literal["json", "html"] = Query("json")) -> Any:
    report = station_report(conn, code, settings.colocation_distance_m, quantity)
    if format == "html":
        return HTMLResponse(render_station_html(report, lambda p: _report_url(p, quantity)))
    return report
