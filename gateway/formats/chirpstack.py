"""ChirpStack v4 MQTT integration (docs/formats.md#chirpstack-v4): `event/up` and `event/status`, JSON (camelCase, the
protobuf JSON mapping) or Protobuf (`integration.UplinkEvent` / `integration.StatusEvent`).
Protobuf is converted to the same dict with `MessageToDict`, so one reader serves both (pure).

Missing numbers are not errors: proto3 JSON omits zero values (`fCnt` 0 on the first uplink),
so a missing `fCnt`/`fPort` reads as 0; an explicit `null` reads as unknown (None)."""

from __future__ import annotations

from typing import Literal

from civicair.core.domain import DeviceRef, LinkMeta, RefScheme, Route, StatusReport, Uplink
from civicair.core.errors import InvalidPayload
from civicair.gateway.formats.jsonbody import json_object
from civicair.gateway.formats.lorawan import (
    application_content,
    b64,
    best_gateway,
    dev_eui,
    opt_dict,
    opt_float,
    opt_int,
    opt_list,
    opt_time,
)

Marshaler = Literal["json", "protobuf", "auto"]


def _load(payload: bytes, marshaler: Marshaler, kind: Literal["up", "status"]) -> dict:
    if marshaler == "json" or (marshaler == "auto" and payload.lstrip()[:1] == b"{"):
        return json_object(payload, "ChirpStack event")
    from chirpstack_api import integration
    from google.protobuf.json_format import MessageToDict

    cls = integration.UplinkEvent if kind == "up" else integration.StatusEvent
    try:
        msg = cls.FromString(payload)
        return MessageToDict(msg)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for bad bytes
        raise InvalidPayload(f"ChirpStack: not a protobuf {cls.__name__}: {type(exc).__name__}") from None


def _device(doc: dict, topic_dev_eui: str | None) -> DeviceRef:
    info = opt_dict(doc, "deviceInfo")
    value = info.get("devEui") or topic_dev_eui
    return DeviceRef(RefScheme.DEV_EUI, dev_eui(value, "ChirpStack deviceInfo.devEui"))


def decode_chirpstack_uplink(
    payload: bytes, *, topic: str = "", topic_dev_eui: str | None = None,
    marshaler: Marshaler = "auto",
) -> Uplink:
    doc = _load(payload, marshaler, "up")
    device = _device(doc, topic_dev_eui)
    f_port = opt_int(doc, "fPort", missing=0)
    data = b64(doc.get("data"), "ChirpStack data")
    content = application_content(doc.get("object"), data, f_port)
    rx = [r for r in opt_list(doc, "rxInfo") if isinstance(r, dict)]
    radio = best_gateway([
        (r.get("gatewayId") if isinstance(r.get("gatewayId"), str) else None,
         opt_float(r, "rssi"), opt_float(r, "snr"))
        for r in rx
    ])
    ns_times = [t for r in rx if (t := opt_time(r.get("nsTime"))) is not None]
    ns_time = opt_time(doc.get("time")) or (min(ns_times) if ns_times else None)
    dedup = doc.get("deduplicationId")
    link = LinkMeta(
        f_cnt=opt_int(doc, "fCnt", missing=0),
        f_port=f_port,
        rssi=radio.rssi,
        snr=radio.snr,
        gateway_count=radio.gateway_count,
        ns_time=ns_time,
        dedup_id=dedup if isinstance(dedup, str) and 0 < len(dedup) <= 64 else None,
    )
    return Uplink(
        route=Route.CHIRPSTACK, device=device, values=content.values, time=content.time,
        position=content.position, link=link, sensor_error=content.sensor_error,
        battery_v=content.battery_v, topic=topic, raw=data,
    )


def decode_chirpstack_status(
    payload: bytes, *, topic: str = "", topic_dev_eui: str | None = None,
    marshaler: Marshaler = "auto",
) -> Uplink:
    """`event/status`: battery level (%), external power, link margin; no readings.
    `batteryLevelUnavailable` or external power → no battery value."""
    doc = _load(payload, marshaler, "status")
    device = _device(doc, topic_dev_eui)
    level = opt_float(doc, "batteryLevel")
    external = doc.get("externalPowerSource") is True
    if doc.get("batteryLevelUnavailable") is True or external:
        level = None
    if level is not None and not 0 <= level <= 100:
        level = None
    margin = opt_int(doc, "margin", missing=0)  # proto3 JSON omits a margin of 0
    if margin is not None and not -128 <= margin <= 127:
        margin = None
    # no dedup_id: a status event repeats the deduplicationId of the uplink it came with
    return Uplink(
        route=Route.CHIRPSTACK, device=device, values=(),
        link=LinkMeta(ns_time=opt_time(doc.get("time"))),
        topic=topic, raw=payload, status=StatusReport(level, external, margin),
    )
