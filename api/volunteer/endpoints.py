"""Volunteer endpoints: open registration, then everything else authenticated by the device token
(`Authorization: Bearer <token>`): own status, credential rotation, flash bundle, erase."""

from __future__ import annotations

from typing import Annotated, Any

from civicair.api.deps import DeviceDep, ReadConn, SettingsDep, write_conn
from civicair.firmware_tools import service
from civicair.firmware_tools.schemas import (
    Credentials,
    DeviceStatus,
    PrivacyZones,
    RegistrationRequest,
    RegistrationResult,
)
from civicair.open_export.erasure import erase_device_files
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

router = APIRouter(prefix="/v1/volunteer", tags=["volunteer"])

# Commit before the response is sent (FastAPI's default "request" scope ends a yield dependency
# only after the response went out): credentials are never shown for a registration or rotation
# that did not commit, and an erase is complete when the client hears 200.
WriteConn = Annotated[Connection, Depends(write_conn, scope="function")]


@router.get("/me", summary="The device behind this token")
def me(device: DeviceDep) -> dict[str, Any]:
    return {"uid": device.uid, "pseudonym": device.pseudonym}


@router.post("/devices", status_code=status.HTTP_201_CREATED, summary="Register a sensor",
             response_model=RegistrationResult)
def register_device(body: RegistrationRequest, request: Request, conn: WriteConn,
                    settings: SettingsDep) -> RegistrationResult:
    """Creates the device, its public pseudonym and H3 cell, and returns its credentials.
    **The credentials are shown only once**: only their hashes are stored. Its data become public
    after its first QA window (or an operator's approval). A client network may register at most
    `CIVICAIR_REGISTRATION_LIMIT` devices per `CIVICAIR_REGISTRATION_WINDOW_S` (429 beyond)."""
    service.check_registration_rate(conn, settings, request.client.host if request.client else "unknown")
    return service.register_device(conn, settings, body)


@router.get("/device", summary="My device's status", response_model=DeviceStatus)
def device_status(device: DeviceDep, conn: ReadConn, settings: SettingsDep) -> DeviceStatus:
    """Last seen, reliability status and stars, recent quality flags, calibration state."""
    return service.device_status(conn, settings, device.id)


@router.post("/device/rotate", summary="New credentials", response_model=Credentials)
def rotate(device: DeviceDep, conn: WriteConn, settings: SettingsDep) -> Credentials:
    """A new device token (and MQTT password for MQTT devices); the old ones stop working now.
    Run `civicair mosquitto sync` (or wait for its scheduled run) for the broker to see the change."""
    return service.rotate_credentials(conn, settings, device.id)


@router.get("/device/privacy-zones", summary="My bike sensor's privacy zones", response_model=PrivacyZones)
def get_privacy_zones(device: DeviceDep, conn: ReadConn) -> PrivacyZones:
    return PrivacyZones(zones=service.privacy_zones(conn, device.id))


@router.put("/device/privacy-zones", summary="Set my bike sensor's privacy zones", response_model=PrivacyZones)
def put_privacy_zones(body: PrivacyZones, device: DeviceDep, conn: WriteConn) -> PrivacyZones:
    """Circles (`lat`, `lon`, `radius_m` of 50 m to 5 km; at most 10) where the device's points
    are never published, replacing the previous ones (an empty list removes them). Its points
    leave the public cells at once and come back, filtered, within a few minutes."""
    return PrivacyZones(zones=service.set_privacy_zones(conn, device.id, body.zones))


@router.get("/device/bundle.zip", summary="Flash bundle (zip)", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
def bundle(device: DeviceDep, conn: ReadConn, settings: SettingsDep) -> Response:
    """config.json, airrohr settings, ESP32 NVS CSV + flash commands, printable label, README.
    Secrets are stored only as hashes, so the bundle carries placeholders for them: copy the ones
    received at registration (or rotate to get new ones)."""
    from civicair.firmware_tools.bundle import bundle_zip

    row = service.device_by_uid(conn, device.uid)
    data = bundle_zip(service.bundle_files(settings, row), f"civicair-{device.pseudonym}")
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="civicair-{device.pseudonym}.zip"'})


@router.delete("/device", summary="Erase my device (two steps)",
               responses={202: {"description": "Confirmation needed"}, 200: {"description": "Erased"}})
def erase(device: DeviceDep, conn: WriteConn, settings: SettingsDep,
          confirm: str | None = Query(default=None, description="Code returned by the first call")) -> JSONResponse:
    """Step 1 (no `confirm`): returns 202 and a confirmation code valid a few minutes.
    Step 2 (`?confirm=<code>`): deletes the device's raw readings, uplinks, hourly rows, calibrations,
    flags, every quarantined or dead-lettered message naming it, its rows in every published export
    file, and the device row itself with every personal field (name, email, exact position, DevEUI,
    chip id, credentials); its hardware ids are blocked. Zone and mobile aggregates hold no
    per-device data and stay (recomputed without it)."""
    if not confirm:
        code, expires = service.erase_code(settings, device.uid)
        return JSONResponse(status_code=202, content={
            "confirm": code, "expires_at": expires,
            "detail": "This erases all raw data and personal fields of the device and cannot be undone. "
                      "Repeat the request with ?confirm=<code> to proceed."})
    counts = service.erase_device(conn, settings, device.id, confirm,
                                  lambda pseudonym: erase_device_files(conn, settings, pseudonym))
    return JSONResponse(status_code=200, content={"erased": device.pseudonym, "rows_deleted": counts})
