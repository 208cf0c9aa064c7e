"""Partner endpoints (air-quality agency), authenticated by X-API-Key with scopes.

Calibration (scope `calibration`): devices with status and stars, one device's calibration
history and report (JSON or HTML), one station's co-located devices and report. Devices are
identified by their pseudonym only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from civicair.api.deps import Partner, ReadConn, SettingsDep, require_partner
from civicair.calibration import repository as repo
from civicair.calibration.report import render_html
from civicair.calibration.reporting import device_report, station_report
from civicair.core.errors import InvalidParameter
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

router = APIRouter(prefix="/v1/partner", tags=["partner"])
CalibrationPartner = Annotated[Partner, Depends(require_partner("calibration"))]
STATUSES = ("reliable", "suspect", "unreliable", "insufficient_data")


@router.get("/whoami", summary="The partner behind this API key")
def whoami(partner: Annotated[Partner, Depends(require_partner("read"))]) -> dict[str, Any]:
    return {"name": partner.name, "scopes": sorted(partner.scopes)}


@router.get("/calibration/devices", summary="Devices with reliability status and stars")
def calibration_devices(
    partner: CalibrationPartner, conn: ReadConn, settings: SettingsDep,
    status: str | None = Query(None, description=f"one of {', '.join(STATUSES)}"),
    station: str | None = Query(None, description="only devices co-located with this station"),
    sensor_type: str | None = Query(None, description="e.g. SDS011"),
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", f"must be one of {', '.join(STATUSES)}")
    ids = None
    if station is not None:
        rep = station_report(conn, station, settings.colocation_distance_m)
        wanted = {d["pseudonym"] for d in rep["devices"]}
        ids = [d.id for d in repo.fixed_devices(conn) if d.pseudonym in wanted]
    rows = repo.partner_devices(conn, status=status, sensor_type=sensor_type, device_ids=ids)
    active: dict[int, list[dict[str, Any]]] = {}
    for c in repo.active_calibrations(conn):
        active.setdefault(c.device_id, []).append({"quantity": c.quantity, "method": c.method,
                                                   "station": c.station_code, "class": c.sensor_class,
                                                   "uncertainty_pct": c.uncertainty_pct})
    results = [{"device": r.pseudonym, "kind": r.kind, "sensor_type": r.sensor_models[0] if r.sensor_models else None,
                "status": r.status, "stars": r.stars, "h3_cell": r.h3_cell, "last_seen": r.last_seen,
                "models": active.get(r.id, [])} for r in rows]
    return {"meta": {"found": len(results), "licence": settings.licence_name, "attribution": settings.attribution},
            "results": results}


@router.get("/calibration/devices/{pseudonym}", summary="One device's calibration history and report")
def calibration_device(
    pseudonym: str, partner: CalibrationPartner, conn: ReadConn,
    quantity: str = Query("pm25"), format: Literal["json", "html"] = Query("json"),
):
    report = device_report(conn, pseudonym, quantity)
    if format == "html":
        return HTMLResponse(render_html(report, f"civicair calibration report — device {pseudonym}"))
    return report


@router.get("/calibration/devices/{pseudonym}/report.html", response_class=HTMLResponse,
            summary="One device's report as a self-contained HTML page")
def calibration_device_html(pseudonym: str, partner: CalibrationPartner, conn: ReadConn,
                            quantity: str = Query("pm25")) -> HTMLResponse:
    report = device_report(conn, pseudonym, quantity)
    return HTMLResponse(render_html(report, f"civicair calibration report — device {pseudonym}"))


@router.get("/calibration/stations/{code}", summary="One station's co-located devices and report")
def calibration_station(
    code: str, partner: CalibrationPartner, conn: ReadConn, settings: SettingsDep,
    quantity: str = Query("pm25"), format: Literal["json", "html"] = Query("json"),
):
    report = station_report(conn, code, settings.colocation_distance_m, quantity)
    if format == "html":
        return HTMLResponse(render_html(report, f"civicair station report — {code}"))
    return report
