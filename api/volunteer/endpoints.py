"""Volunteer endpoints: open registration (JSON or form-encoded; confirmed by e-mail when an SMTP
server is configured), then everything else authenticated by the device token
(`Authorization: Bearer <token>`): own status, credential rotation, flash bundle, erase."""

from __future__ import annotations

import json
from typing import Annotated, Any

from civicair.api.deps import DeviceDep, ReadConn, SettingsDep, write_conn
from civicair.firmware_tools import service, signup
from civicair.firmware_tools.schemas import (
    Credentials,
    DeviceStatus,
    PrivacyZones,
    RegistrationRequest,
    RegistrationResult,
    SignupAccepted,
    SignupConfirmation,
)
from civicair.open_export.erasure import erase_device_files
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.engine import Connection

router = APIRouter(prefix="/v1/volunteer", tags=["volunteer"])

# Commit before the response is sent (FastAPI's default "request" scope ends a yield dependency
# only after the response went out): credentials are never shown for a registration or rotation
# that did not commit, and an erase is complete when the client hears 200.
WriteConn = Annotated[Connection, Depends(write_conn, scope="function")]


@router.get("/me", summary="The device behind this token")
def me(device: DeviceDep) -> dict[str, Any]:
    return {"uid": device.uid, "pseudonym": device.pseudonym}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` (the enums) written in place, for openapi_extra."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


_REGISTRATION = _inlined(RegistrationRequest.model_json_schema())
REGISTRATION_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _REGISTRATION},
    "application/x-www-form-urlencoded": {"schema": _REGISTRATION}}}}


async def registration_body(request: Request) -> RegistrationRequest:
    """The registration as JSON or as an HTML form posts it (form-encoded, `sensors` repeated or
    comma-separated), validated by the same model: a bad field is named in the 422 either way."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        data: Any = signup.registration_fields(form.multi_items())
    else:
        try:
            data = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise RequestValidationError([{"loc": ("body",), "msg": f"not JSON: {exc}", "type": "json_invalid"}]) from None
    try:
        return RegistrationRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/devices", status_code=status.HTTP_201_CREATED, summary="Register a sensor",
             openapi_extra=REGISTRATION_BODY, response_model=None,
             responses={201: {"model": RegistrationResult, "description": "Registered (no e-mail check configured)"},
                        202: {"model": SignupAccepted, "description": "Confirmation link mailed"}})
def register_device(request: Request, conn: WriteConn, settings: SettingsDep, tasks: BackgroundTasks,
                    body: Annotated[RegistrationRequest, Depends(registration_body)]) -> JSONResponse:
    """JSON or form-encoded. With an SMTP server configured (`CIVICAIR_SMTP_URL`), answers 202 and
    mails a confirmation link to `email`; the device is created, and its credentials shown once,
    when the link is opened (`POST /v1/volunteer/confirm`). The answer is the same whether or not
    a mail is sent (at most `CIVICAIR_SIGNUP_EMAIL_LIMIT` per address and window). Without one,
    creates the device now and returns its credentials. **The credentials are shown only once**:
    only their hashes are stored. A client network may register at most
    `CIVICAIR_REGISTRATION_LIMIT` devices per `CIVICAIR_REGISTRATION_WINDOW_S` (429 beyond)."""
    if settings.smtp_url is not None:
        message = signup.start_signup(conn, settings, body, client_address(request))
        if message is not None:
            tasks.add_task(signup.send_confirmation, settings, message)
        return JSONResponse(status_code=202, content=SignupAccepted().model_dump())
    service.check_registration_rate(conn, settings, client_address(request))
    result = service.register_device(conn, settings, body)
    return JSONResponse(status_code=201, content=result.model_dump(mode="json"))


@router.post("/confirm", status_code=status.HTTP_201_CREATED, summary="Confirm a sign-up (the mailed link)",
             response_model=RegistrationResult, responses={404: {"description": "Unknown, expired or used link"}})
def confirm(body: SignupConfirmation, conn: WriteConn, settings: SettingsDep) -> RegistrationResult:
    """Creates the device of the sign-up whose link carried `token` and returns its credentials,
    once: the link does not work again."""
    return signup.confirm(conn, settings, body.token)[1]


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
