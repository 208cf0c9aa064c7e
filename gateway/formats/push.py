"""HTTP push bodies (docs/formats.md#http-push) → uplinks of the device whose token sent them
(pure): the civicair JSON push (one direct-JSON object or a list of them) and the
sensor.community push. Also the "topic" a push is kept under as a dead letter (its path plus the
headers that change the meaning of its body) and back, so a dead letter can be replayed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from civicair.core.domain import DeviceRef, RefScheme, Route, Uplink
from civicair.core.errors import Forbidden, InvalidPayload
from civicair.gateway.formats.direct import decode_direct_doc
from civicair.gateway.formats.jsonbody import json_value
from civicair.gateway.formats.sensor_community import decode_sensor_community

CIVICAIR_PATH = "/v1/push"
SENSOR_COMMUNITY_PATH = "/v1/push/sensor-community"
MAX_ITEMS = 1000
MEANING_HEADERS = ("x-sensor", "x-pin", "sensor", "node", "pin")


def decode_civicair_push(device_uid: str, body: bytes) -> list[Uplink]:
    """`POST /v1/push`: one direct-JSON object or a list of 1 to 1,000; an item's `device`
    (optional) must be the token's own device uid (else Forbidden). Every uplink keeps the whole
    body as its raw payload."""
    doc = json_value(body, "civicair push")
    items = doc if isinstance(doc, list) else [doc]
    if not items or len(items) > MAX_ITEMS:
        raise InvalidPayload(f"body must be an object or a list of 1 to {MAX_ITEMS} objects")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidPayload("civicair push: every item must be a JSON object")
        if item.get("device") not in (None, device_uid):
            raise Forbidden("this token cannot push data for another device")
        out.append(decode_direct_doc(device_uid, item, topic=CIVICAIR_PATH, raw=body, route=Route.HTTP))
    return out


def decode_sensor_community_push(device_uid: str, body: bytes,
                                 headers: Mapping[str, str]) -> tuple[Uplink, str | None]:
    """`POST /v1/push/sensor-community` (headers with lower-case names): the uplink, stored for
    the token's device, and the chip id the body or headers claim (the caller refuses it when it
    is registered to another device)."""
    up = decode_sensor_community(body, headers, fallback=DeviceRef(RefScheme.CIVICAIR, device_uid))
    chip = up.device.value if up.device.scheme is RefScheme.CHIP_ID else None
    return replace(up, device=DeviceRef(RefScheme.CIVICAIR, device_uid)), chip


def push_topic(path: str, headers: Mapping[str, str]) -> str:
    """The path plus the headers that change the meaning of the body, as a query string."""
    keep = {k: headers[k] for k in MEANING_HEADERS if k in headers}
    return f"{path}?{urlencode(keep)}" if keep else path


def push_request(topic: str) -> tuple[str, dict[str, str]]:
    """(path, headers) of a `push_topic`."""
    parts = urlsplit(topic)
    return parts.path, {k: v for k, v in parse_qsl(parts.query) if k in MEANING_HEADERS}
