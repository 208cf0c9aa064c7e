"""Partner endpoints (air-quality agency), authenticated by X-API-Key with scopes or by a signed-in
browser session (docs/calibration.md#partner-reports).

Calibration (scope `calibration`): devices with status and stars, one device's report (JSON or
HTML, for every state a device can be in), one station's co-located devices. Devices are
identified by their pseudonym only. Browsers sign in in the web's partner area (`/partner/sign-in`,
web/partner.py), whose session these endpoints accept too; the old browser URLs of this API
(`/v1/partner/sign-in`, `/v1/partner/`) send there, and a report page opened without a session
sends to the sign-in form and back to the area's page of that report."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from civicair.api.deps import (
    PARTNER_SESSION,
    Partner,
    ReadConn,
    SettingsDep,
    partner_page,
    require_partner,
)
from civicair.api.sessions import optional_session, session_csrf
from civicair.calibration.report import render_html, render_station_html
from civicair.calibration.reporting import (
    device_list,
    device_report,
    devices_at_station,
    station_report,
)
from civicair.core.errors import InvalidParameter
from civicair.core.sessions import Session
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

router = APIRouter(prefix="/v1/partner", tags=["partner"])
CalibrationPartner = Annotated[Partner, Depends(require_partner("calibration"))]
CalibrationPage = Annotated[Partner | None, Depends(partner_page("calibration"))]
PartnerSession = Annotated[Session | None, Depends(optional_session(PARTNER_SESSION))]
STATUSES = ("reliable", "suspect", "unreliable", "insufficient_data")
AREA = "/partner/"  # the web's partner area (web/partner.py): sign-in, device list, report pages
SIGN_IN = "/partner/sign-in"
SIGN_OUT = "/partner/sign-out"


def _report_url(pseudonym: str, quantity: str) -> str:
    return f"/v1/partner/calibration/devices/{quote(pseudonym)}/report.html?quantity={quote(quantity)}"


def _area_report(pseudonym: str, quantity: str) -> str:
    return f"{AREA}devices/{quote(pseudonym, safe='')}?{urlencode({'quantity': quantity})}"


@router.get("/whoami", summary="The partner behind this API key or browser session")
def whoami(partner: Annotated[Partner, Depends(require_partner(None))]) -> dict[str, Any]:
    return {"name": partner.name, "scopes": sorted(partner.scopes), "via": partner.via}


# --- browser pages: in the web's partner area ------------------------------------------------
@router.get("/sign-in", summary="Browser sign-in (moved to the partner area /partner/sign-in)",
            status_code=303, response_class=RedirectResponse)
def sign_in_form() -> RedirectResponse:
    return RedirectResponse(SIGN_IN, status_code=303)


@router.get("/", summary="Signed-in start page (moved to the partner area /partner/)", status_code=303,
            response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse(AREA, status_code=303)


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
    logout = ({"action": SIGN_OUT, "csrf_token": session_csrf(settings, session), "home": AREA}
              if session else None)
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
    if partner is None:  # a browser: sign in, then the area's page of this report
        next_url = _area_report(pseudonym, quantity)
        return RedirectResponse(f"{SIGN_IN}?{urlencode({'next': next_url})}", status_code=303)
    return _html(request, settings, session, device_report(conn, pseudonym, quantity))


@router.get("/calibration/stations/{code}", summary="One station's co-located devices")
def calibration_station(code: str, partner: CalibrationPartner, conn: ReadConn, settings: SettingsDep,
                        quantity: str = Query("pm25"), format: Literal["json", "html"] = Query("json")) -> Any:
    report = station_report(conn, code, settings.colocation_distance_m, quantity)
    if format == "html":
        return HTMLResponse(render_station_html(report, lambda p: _report_url(p, quantity)))
    return report
