"""`POST /v1/push/sensor-community` and `POST /v1/push` (docs/formats.md#http-push), device-token auth.

The hot path stays in the event loop: the body (its size limit is the application's, for every
body: api/middleware.py), a pure decode, one statement on the async read pool for the token's
device and the owner of a claimed chip id, and the group commit of the writes
(`ingest/group_commit.py`). No worker-thread hop per request (BENCHMARKS.md, "HTTP push")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from civicair.api import problems
from civicair.api.deps import AuthenticatedDevice, device_token_from_request, read_pool
from civicair.api.push import service
from civicair.api.push.repository import DEVICE_OF_TOKEN
from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.errors import Forbidden, Unauthorized
from civicair.core.security import hash_secret
from civicair.gateway.formats.push import (
    decode_civicair_push,
    decode_sensor_community_push,
    push_topic,
)
from civicair.ingest.store import Outcome
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

router = APIRouter(prefix="/v1/push", tags=["push"])
bearer = HTTPBearer(auto_error=False, description="Device token (or Basic auth with the token as password)")

SC_EXAMPLE = {
    "software_version": "NRZ-2024-135",
    "sensordatavalues": [{"value_type": "P1", "value": "12.34"}, {"value_type": "P2", "value": "5.10"}],
}
DIRECT_EXAMPLE = {"time": "2026-01-01T12:00:00Z", "readings": {"pm25": 12.1, "pm10": 20.3}}


def _openapi(example: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}, "example": example}}},
        "security": [{"HTTPBearer": []}]}


async def _device(request: Request, chip: str | None = None) -> tuple[AuthenticatedDevice, int | None]:
    """The token's device and the owner of `chip` (None: not registered); 401 without a known token."""
    token = device_token_from_request(request)
    if not token:
        raise Unauthorized("missing device token (Authorization: Bearer <token>)")
    pool = await read_pool(request)
    rows = await service.fetch(pool, DEVICE_OF_TOKEN, {"token_hash": hash_secret(token), "chip": chip})
    if not rows:
        raise Unauthorized("unknown device token")
    device_id, uid, pseudonym, chip_owner = rows[0]
    return AuthenticatedDevice(id=device_id, uid=uid, pseudonym=pseudonym), chip_owner


async def _answer(request: Request, device: AuthenticatedDevice, source: str, topic: str, body: bytes,
                  uplinks: list[Uplink] | None, error: str | None) -> JSONResponse:
    """201 when the body was stored (some of its messages may still be dead letters: counted);
    422 when nothing of it could be stored as data, saying whether it was kept as a dead letter."""
    result = await service.store(request.app.state.push_committer, device, source, topic, body, uplinks, error)
    unusable = [i for i, o in enumerate(result.outcomes) if o in (Outcome.DEAD_LETTER, Outcome.REFUSED)]
    if error is not None or len(unusable) == len(result.outcomes):
        why = error or result.errors.get(unusable[0], "")
        kept = ("kept as a dead letter" if Outcome.DEAD_LETTER in result.outcomes
                else "not kept: this device's dead-letter quota is full")
        return problems.problem(422, "Invalid payload", f"{why} ({kept})", request)
    return JSONResponse({"stored": result.readings_written, "messages": len(result.outcomes),
                         **({"dead_letters": len(unusable)} if unusable else {})}, status_code=201)


@router.post(
    "/sensor-community", status_code=201, openapi_extra=_openapi(SC_EXAMPLE),
    summary="sensor.community (airrohr) push: X-Sensor/X-Pin form or the 'custom API' form",
)
async def push_sensor_community(request: Request) -> JSONResponse:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    topic = push_topic(request.url.path, headers)
    decoded, error = service.decode_or_error(lambda: [decode_sensor_community_push("", body, headers)])
    chip = decoded[0][1] if decoded else None
    device, chip_owner = await _device(request, chip)
    if chip is not None and chip_owner is not None and chip_owner != device.id:
        raise Forbidden(f"{chip} belongs to another device than this token's")
    uplinks = [replace(up, device=DeviceRef(RefScheme.CIVICAIR, device.uid)) for up, _ in decoded] if decoded else None
    return await _answer(request, device, "sensor_community", topic, body, uplinks, error)


@router.post(
    "", status_code=201, openapi_extra=_openapi(DIRECT_EXAMPLE),
    summary="civicair JSON push: one object or a list (same body as direct MQTT)",
)
async def push_civicair(request: Request) -> JSONResponse:
    body = await request.body()
    device, _ = await _device(request)
    uplinks, error = service.decode_or_error(lambda: decode_civicair_push(device.uid, body))
    return await _answer(request, device, "http", request.url.path, body, uplinks, error)
