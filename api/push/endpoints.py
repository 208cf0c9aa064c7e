"""`POST /v1/push/sensor-community` and `POST /v1/push` (docs/formats.md#http-push), device-token auth."""

from __future__ import annotations

from typing import Annotated, Any

from civicair.api import problems
from civicair.api.deps import DeviceDep, ReadConn, SettingsDep
from civicair.api.push import service
from civicair.core.errors import InvalidPayload
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/v1/push", tags=["push"])


async def limited_body(request: Request, settings: SettingsDep) -> bytes:
    return await service.read_body(request, settings.http_max_body_bytes)


Body = Annotated[bytes, Depends(limited_body)]

SC_EXAMPLE = {
    "software_version": "NRZ-2024-135",
    "sensordatavalues": [{"value_type": "P1", "value": "12.34"}, {"value_type": "P2", "value": "5.10"}],
}
DIRECT_EXAMPLE = {"time": "2026-01-01T12:00:00Z", "readings": {"pm25": 12.1, "pm10": 20.3}}


def _json_body(example: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}, "example": example}}}}


async def _store(request: Request, source: str, topic: str, body: bytes, decode, device_id: int) -> JSONResponse:
    db = request.app.state.db
    try:
        uplinks = await run_in_threadpool(decode)
    except InvalidPayload as exc:
        await run_in_threadpool(service.store_uplinks, db, source, topic, body, None, exc.detail, device_id)
        return problems.problem(exc.status, exc.title, exc.detail + " (kept as a dead letter)", request)
    result = await run_in_threadpool(service.store_uplinks, db, source, topic, body, uplinks, None, device_id)
    return JSONResponse({"stored": result.readings_written, "messages": len(uplinks)}, status_code=201)


@router.post(
    "/sensor-community", status_code=201, openapi_extra=_json_body(SC_EXAMPLE),
    summary="sensor.community (airrohr) push: X-Sensor/X-Pin form or the 'custom API' form",
)
async def push_sensor_community(
    request: Request, body: Body, device: DeviceDep, conn: ReadConn
) -> JSONResponse:
    headers = {k.lower(): v for k, v in request.headers.items()}
    topic = service.header_topic(request.url.path, headers)
    return await _store(request, "sensor_community", topic, body,
                        lambda: [service.sensor_community_uplink(conn, device, body, headers)], device.id)


@router.post(
    "", status_code=201, openapi_extra=_json_body(DIRECT_EXAMPLE),
    summary="civicair JSON push: one object or a list (same body as direct MQTT)",
)
async def push_civicair(request: Request, body: Body, device: DeviceDep) -> JSONResponse:
    return await _store(request, "http", request.url.path, body,
                        lambda: service.civicair_uplinks(device, body), device.id)
