"""The partner area (docs/calibration.md#partner-reports): an air-quality agency signs in with its
partner key (scope `calibration`) and reads the calibration package's reports in the browser.

`/partner/sign-in` · `/partner/` the devices, filtered by status, pollutant, calibration state,
sensor type and co-located station · `/partner/devices/{pseudonym}?quantity=` one device's report
(the calibration package's page, for every state a device can be in) · `/partner/stations/{code}`
the devices co-located with a station · `/partner/sign-out`. Devices by pseudonym only, as in the
partner API; the pages add no rule of their own (calibration/reporting.py computes them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from civicair.calibration import repository as calibration_repo
from civicair.calibration.report import STATES, render_html
from civicair.calibration.reporting import (
    device_list,
    device_report,
    devices_at_station,
    station_report,
)
from civicair.core.errors import NotFound
from civicair.core.settings import Settings
from civicair.web import signin
from civicair.web.render import csp
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

router = APIRouter(prefix="/partner", include_in_schema=False)
AREA = signin.Area(kind="partner", scope="calibration", prefix="/partner")
STATUSES = ("reliable", "suspect", "unreliable", "insufficient_data")
POLLUTANTS = ("pm25", "pm10", "pm1", "no2", "o3")


@contextmanager
def _read(request: Request) -> Iterator[Connection]:
    with request.app.state.db.read_engine.connect() as conn:
        yield conn


def report_url(pseudonym: str, quantity: str) -> str:
    return f"/partner/devices/{quote(pseudonym, safe='')}?{urlencode({'quantity': quantity})}"


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return signin.sign_in_page(request, AREA, next=next)


@router.post("/sign-in")
def sign_in(request: Request, api_key: Annotated[str, Form(max_length=200)] = "",
            csrf_token: Annotated[str, Form(max_length=400)] = "",
            next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    with _read(request) as conn:
        return signin.sign_in(request, conn, AREA, api_key=api_key, csrf_token=csrf_token, next=next)


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[str, Form(max_length=400)] = "") -> Response:
    return signin.sign_out(request, AREA, csrf_token)


def _choice(value: str | None, allowed: tuple[str, ...] | list[str]) -> str | None:
    return value if value in allowed else None


def filter_devices(devices: list[dict[str, Any]], quantity: str | None, state: str | None) -> list[dict[str, Any]]:
    """Devices with a model of `quantity` (in `state`, when given); `state` alone: any of its
    pollutants in that state ("none": a device without any model counts as not calibrated)."""
    out = []
    for d in devices:
        models = [m for m in d["models"] if quantity is None or m["quantity"] == quantity]
        if state is not None:
            keep = any(m["state"] == state for m in models) or (state == "none" and not d["models"])
        else:
            keep = bool(models) or quantity is None
        if keep:
            out.append(d)
    return out


@router.get("/")
def home(request: Request, status: str | None = None, quantity: str | None = None, state: str | None = None,
         station: str | None = None, sensor_type: str | None = None) -> Response:
    settings: Settings = request.app.state.settings
    with _read(request) as conn:
        user = signin.signed_in(request, conn, AREA)
        if user is None:
            return signin.to_sign_in(request, AREA)
        stations = [s.code for s in calibration_repo.stations(conn)]
        everything = device_list(conn)
        sensor_types = sorted({d["sensor_type"] for d in everything if d["sensor_type"]})
        chosen = {"status": _choice(status, STATUSES), "quantity": _choice(quantity, POLLUTANTS),
                  "state": _choice(state, STATES), "station": _choice(station, stations),
                  "sensor_type": _choice(sensor_type, sensor_types)}
        ids = (devices_at_station(conn, chosen["station"], settings.colocation_distance_m)
               if chosen["station"] else None)
        devices = everything if not any(chosen.values()) else device_list(
            conn, status=chosen["status"], sensor_type_filter=chosen["sensor_type"], device_ids=ids)
    shown = filter_devices(devices, chosen["quantity"], chosen["state"])
    return signin.signed_page(request, user, "partner/devices.html", devices=shown, total=len(everything),
                              chosen=chosen, statuses=STATUSES, pollutants=POLLUTANTS, states=STATES,
                              stations=stations, sensor_types=sensor_types, report_url=report_url)


def _secure(response: HTMLResponse, settings: Settings) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = csp(settings)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/devices/{pseudonym}")
def device(request: Request, pseudonym: str, quantity: str = "pm25") -> Response:
    """The calibration package's report page (English, as the partner API serves it), with the
    area's sign-out form."""
    settings: Settings = request.app.state.settings
    with _read(request) as conn:
        user = signin.signed_in(request, conn, AREA)
        if user is None:
            return signin.to_sign_in(request, AREA)
        try:
            report = device_report(conn, pseudonym[:64], quantity if quantity in POLLUTANTS else "pm25")
        except NotFound:
            return signin.signed_page(request, user, "partner/missing.html", status=404, what=pseudonym[:64])
    html = render_html(report, history=report.get("status_history"),
                       logout={"action": AREA.sign_out, "csrf_token": user.csrf_token, "home": AREA.home})
    return _secure(HTMLResponse(html), settings)


@router.get("/stations/{code}")
def station(request: Request, code: str, quantity: str = "pm25") -> Response:
    settings: Settings = request.app.state.settings
    quantity = quantity if quantity in POLLUTANTS else "pm25"
    with _read(request) as conn:
        user = signin.signed_in(request, conn, AREA)
        if user is None:
            return signin.to_sign_in(request, AREA)
        try:
            report = station_report(conn, code[:64], settings.colocation_distance_m, quantity)
        except NotFound:
            return signin.signed_page(request, user, "partner/missing.html", status=404, what=code[:64])
    return signin.signed_page(request, user, "partner/station.html", report=report, quantity=quantity,
                              pollutants=POLLUTANTS, report_url=report_url)
