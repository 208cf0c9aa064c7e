"""Direct MQTT JSON (docs/formats.md#direct-mqtt-json): topic civicair/v1/devices/{uid}/up,
payload {"time": ISO-8601, "readings": {"pm25": 12.1, ...}, "location": {"lat":..,"lon":..}}."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from civicair.core.domain import DeviceRef, Position, RawValue, RefScheme, Route, Uplink
from civicair.core.errors import InvalidPayload
from civicair.gateway.formats.jsonbody import json_object


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidPayload(f"time must be an ISO-8601 string, got {type(value).__name__}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except ValueError:
        raise InvalidPayload(f"time {value[:40]!r} is not ISO-8601") from None
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise InvalidPayload(f"time {value[:40]!r} is outside the years 1-9999 in UTC") from None


def finite_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPayload(f"{name} must be a number, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        raise InvalidPayload(f"{name} is too large") from None
    if not math.isfinite(f):
        raise InvalidPayload(f"{name} is not finite")
    return f


def decode_direct_json(device_uid: str, payload: bytes, *, topic: str = "") -> Uplink:
    return decode_direct_doc(device_uid, json_object(payload, "payload"), topic=topic, raw=payload)


def decode_direct_doc(device_uid: str, doc: dict, *, topic: str = "", raw: bytes = b"",
                      route: Route = Route.DIRECT_MQTT) -> Uplink:
    """One parsed direct-JSON object (also an item of an HTTP push list)."""
    readings = doc.get("readings")
    if not isinstance(readings, dict) or not readings:
        raise InvalidPayload("'readings' must be a non-empty object of name → number")
    values = tuple(RawValue(str(k), finite_number(f"readings.{k}", v)) for k, v in readings.items())
    time = parse_time(doc["time"]) if doc.get("time") is not None else None
    position = None
    loc = doc.get("location")
    if loc is not None:
        if not isinstance(loc, dict):
            raise InvalidPayload("'location' must be an object with lat and lon")
        lat = finite_number("location.lat", loc.get("lat"))
        lon = finite_number("location.lon", loc.get("lon"))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidPayload("location out of range")
        position = Position(lat, lon)
    return Uplink(
        route=route,
        device=DeviceRef(RefScheme.CIVICAIR, device_uid),
        values=values,
        time=time,
        position=position,
        topic=topic,
        raw=raw,
    )
