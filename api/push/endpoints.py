"""`POST /v1/push/sensor-community` and `POST /v1/push` (docs/formats.md#http-push), device-token auth.
The body limit (413) is the application's, for every body (api/middleware.py)."""

from __future__ import annotations

from typing import Any

from civicair.api import problems
from civicair.api.deps import DeviceDep, ReadConn
from civicair.api.push import service
from civicair.core.domain import Uplink
from civicair.core.errors import Forbidden
from civicair.gateway.formats.push import (
    decode_civicair_push,
    decode_sensor_community_push,
    push_topic,
)
from civicair.gateway.repository import device_id_by_chip
from civicair.ingest.store import Outcome
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/v1/push", tags=["push"])

SC_EXAMPLE = {
    "software_version": "NRZ-2024-135",
    "sensordatavalues": [{"value_type": "P1", "value": "12.34"}, {"value_type": "P2", "value": "5.10"}],
}
DIRECT_EXAMPLE = {"time": "2026-01-01T12:00:00Z", "readings": {"pm25": 12.1, "pm10": 20.3}}


def _json_body(example: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}, "example": example}}}}


async def _answer(request: Request, device, source: str, topic: str, body: bytes,
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
    "/sensor-community", status_code=201, openapi_extra=_json_body(SC_EXAMPLE),
    summary="sensor.community (airrohr) push: X-Sensor/X-Pin form or the 'custom API' form",
)
async def push_sensor_community(request: Request, device: DeviceDep, conn: ReadConn) -> JSONResponse:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    topic = push_topic(request.url.path, headers)

    def decode() -> list[Uplink]:
        up, chip = decode_sensor_community_push(device.uid, body, headers)
        if chip is not None:
            owner = device_id_by_chip(conn, chip)
            if owner is not None and owner != device.id:
                raise Forbidden(f"{chip} belongs to another device than this token's")
        return [up]

    uplinks, error = await run_in_threadpool(service.decode_or_error, decode)  # the chip id lookup
    return await _answer(request, device, "sensor_community", topic, body, uplinks, error)


@router.post(
    "", status_code=201, openapi_extra=_json_body(DIRECT_EXAMPLE),
    summary="civicair JSON push: one object or a list (same body as direct MQTT)",
)
async def push_civicair(request: Request, device: DeviceDep) -> JSONResponse:
    body = await request.body()
    uplinks, error = service.decode_or_error(lambda: decode_civicair_push(device.uid, body))
    return await _answer(request, device, "http", request.url.path, body, uplinks, error)
