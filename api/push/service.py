"""Rules of the push endpoints: read a bounded body, decide which device a body may speak for,
and store through the same path as MQTT (`ingest.writer.store_batch`: normalise, dedup, dead
letters)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

import psycopg
from civicair.api.deps import AuthenticatedDevice
from civicair.api.push.repository import device_id_by_chip
from civicair.core.db import Database
from civicair.core.domain import DeviceRef, RefScheme, Route, Uplink
from civicair.core.errors import Forbidden, InvalidPayload, PayloadTooLarge, ServiceUnavailable
from civicair.gateway.formats.direct import decode_direct_json
from civicair.gateway.formats.sensor_community import decode_sensor_community
from civicair.ingest.writer import BatchResult, Inbound, store_batch
from fastapi import Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def sensor_community_uplink(
    conn: Connection, device: AuthenticatedDevice, body: bytes, headers: dict[str, str]
) -> Uplink:
    """Decode; a chip id registered to ANOTHER device → 403. The authenticated device is the
    one stored (its token proves it), whatever chip id an unregistered node claims."""
    up = decode_sensor_community(body, headers, fallback=DeviceRef(RefScheme.CIVICAIR, device.uid))
    if up.device.scheme is RefScheme.CHIP_ID:
        owner = device_id_by_chip(conn, up.device.value)
        if owner is not None and owner != device.id:
            raise Forbidden(f"{up.device.value} belongs to another device than this token's")
    return replace(up, device=DeviceRef(RefScheme.CIVICAIR, device.uid))


def civicair_uplinks(device: AuthenticatedDevice, body: bytes) -> list[Uplink]:
    """`POST /v1/push`: one direct-JSON object, or a list of them; `device` (optional) must be
    this token's device uid."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload(f"not JSON: {exc}") from None
    items = doc if isinstance(doc, list) else [doc]
    if not items or len(items) > 1000:
        raise InvalidPayload("body must be an object or a list of 1 to 1000 objects")
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("device") not in (None, device.uid):
            raise Forbidden("this token cannot push data for another device")
        up = decode_direct_json(device.uid, json.dumps(item).encode(), topic="/v1/push")
        out.append(replace(up, route=Route.HTTP, raw=body))
    return out


def header_topic(path: str, headers: dict[str, str]) -> str:
    """HTTP path plus the headers that change the meaning of the body (kept with dead letters)."""
    keep: dict[str, str] = {k: headers[k] for k in ("x-sensor", "x-pin", "sensor", "node", "pin") if k in headers}
    return f"{path}?{urlencode(keep)}" if keep else path


def store_uplinks(
    db: Database, source: str, topic: str, body: bytes, uplinks: list[Uplink] | None, error: str | None,
    device_id: int | None = None,
) -> BatchResult:
    """Store decoded uplinks, or the body as a dead letter when `error` is set (synchronously).
    `device_id`: the token's device, kept with a dead letter so that its erasure finds it."""
    now = datetime.now(UTC)

    def constant(u: Uplink) -> Callable[[bytes], Uplink]:
        return lambda _p: u

    def failing(_p: bytes) -> Uplink:
        raise InvalidPayload(error or "invalid")

    if error is not None:
        batch = [Inbound(source, topic, body, now, failing, device_id=device_id)]
    else:
        batch = [Inbound(source, topic, body, now, constant(u), device_id=device_id) for u in uplinks or []]
    try:
        raw = db.engine.raw_connection()
        try:
            return store_batch(raw.driver_connection, batch)  # type: ignore[arg-type]
        finally:
            raw.close()
    except (psycopg.OperationalError, sa_exc.OperationalError) as exc:
        raise ServiceUnavailable(f"database unavailable, retry later: {str(exc).splitlines()[0]}") from None
