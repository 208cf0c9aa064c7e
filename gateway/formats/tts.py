"""The Things Stack v3 MQTT uplinks (docs/formats.md#the-things-stack-v3), topic `v3/{app}@{tenant}/devices/{device_id}/up`
(pure). TTS omits zero, empty and false fields: a missing `f_cnt`/`f_port` is 0. The device is
named by its DevEUI when `end_device_ids.dev_eui` is present, else by its TTS device id."""

from __future__ import annotations

from civicair.core.domain import DeviceRef, LinkMeta, RefScheme, Route, Uplink
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


def decode_tts_uplink(payload: bytes, *, topic: str = "", topic_device_id: str | None = None) -> Uplink:
    doc = json_object(payload, "TTS uplink")
    ids = opt_dict(doc, "end_device_ids")
    if ids.get("dev_eui"):
        device = DeviceRef(RefScheme.DEV_EUI, dev_eui(ids.get("dev_eui"), "TTS end_device_ids.dev_eui"))
    else:
        device_id = ids.get("device_id") or topic_device_id
        if not isinstance(device_id, str) or not 0 < len(device_id) <= 64:
            raise InvalidPayload("TTS: end_device_ids.device_id missing")
        device = DeviceRef(RefScheme.TTS_ID, device_id)
    up = doc.get("uplink_message")
    if not isinstance(up, dict):
        raise InvalidPayload("TTS: no uplink_message")
    f_port = opt_int(up, "f_port", missing=0)
    data = b64(up.get("frm_payload"), "TTS frm_payload")
    content = application_content(up.get("decoded_payload"), data, f_port)
    rx = [r for r in opt_list(up, "rx_metadata") if isinstance(r, dict)]
    radio = best_gateway([
        (g if isinstance(g := opt_dict(r, "gateway_ids").get("gateway_id"), str) else None,
         opt_float(r, "rssi") if "rssi" in r else opt_float(r, "channel_rssi"),
         opt_float(r, "snr"))
        for r in rx
    ])
    link = LinkMeta(
        f_cnt=opt_int(up, "f_cnt", missing=0),
        f_port=f_port,
        rssi=radio.rssi,
        snr=radio.snr,
        gateway_count=radio.gateway_count,
        ns_time=opt_time(up.get("received_at")) or opt_time(doc.get("received_at")),
        dedup_id=_as_up_id(doc),
    )
    return Uplink(
        route=Route.TTS, device=device, values=content.values, time=content.time,
        position=content.position, link=link, sensor_error=content.sensor_error,
        battery_v=content.battery_v, topic=topic, raw=data,
    )


def _as_up_id(doc: dict) -> str | None:
    """The application-server correlation id (`as:up:<ulid>`): the same for a redelivered uplink."""
    for c in opt_list(doc, "correlation_ids"):
        if isinstance(c, str) and c.startswith("as:up:") and len(c) <= 64:
            return c
    return None
