"""Every form in which a message can name a device (docs/privacy.md#erasure), so an erasure finds
its quarantined and dead-lettered messages whatever route they came by. Pure.

- uid (`ca-` + 12 random hex digits) and MQTT username: anywhere in a topic or payload;
- DevEUI: 16 hex digits in both byte orders (some stacks print it least significant byte first),
  lower or upper case, bare or with `:` / `-` between bytes, and as raw bytes or their base64
  (ChirpStack v3 JSON, protobuf);
- The Things Stack device id: the `/devices/<id>/` topic level or a `"device_id"` JSON member;
- sensor.community chip id (`esp8266-1234567`): as such, or the quoted chip number of an
  `esp8266id` member.

Block list (`blocked_refs`): the hardware ids a message's device reference can carry (DevEUI in
both orders, TTS id, chip id), so quarantine stops filling from an erased device.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceIdentifiers:
    refs: tuple[tuple[str, str], ...]  # (RefScheme value, ref_value) as quarantine rows name devices
    blocked: tuple[tuple[str, str], ...]  # the hardware ones among them, to block
    topic_parts: tuple[str, ...]  # a topic containing one of these (any case) names the device
    payload_parts: tuple[bytes, ...]  # a payload containing one of these names the device


def eui_forms(eui: str) -> list[str]:
    """A DevEUI's textual forms: both byte orders × lower/upper × no/`:`/`-` separators."""
    raw = bytes.fromhex(eui)
    out: list[str] = []
    for b in (raw, raw[::-1]):
        for sep in ("", ":", "-"):
            text = b.hex(sep) if sep else b.hex()
            out += [text, text.upper()]
    return list(dict.fromkeys(out))


def reversed_eui(eui: str) -> str:
    return bytes.fromhex(eui)[::-1].hex()


def device_identifiers(*, uid: str, mqtt_username: str | None = None, dev_eui: str | None = None,
                       tts_device_id: str | None = None, chip_id: str | None = None) -> DeviceIdentifiers:
    refs: list[tuple[str, str]] = [("civicair", uid)]
    blocked: list[tuple[str, str]] = []
    topics: list[str] = [uid]
    payloads: list[bytes] = [uid.encode()]
    if mqtt_username and mqtt_username != uid:
        topics.append(f"/{mqtt_username}/")
        payloads.append(f'"{mqtt_username}"'.encode())
    if dev_eui:
        for eui in (dev_eui, reversed_eui(dev_eui)):
            refs.append(("dev_eui", eui))
            blocked.append(("dev_eui", eui))
        forms = eui_forms(dev_eui)
        topics += forms
        payloads += [f.encode() for f in forms]
        for raw in (bytes.fromhex(dev_eui), bytes.fromhex(dev_eui)[::-1]):
            payloads += [raw, base64.b64encode(raw)]
    if tts_device_id:
        refs.append(("tts_id", tts_device_id))
        blocked.append(("tts_id", tts_device_id))
        topics.append(f"/devices/{tts_device_id}/")
        payloads += [f'"device_id":"{tts_device_id}"'.encode(), f'"device_id": "{tts_device_id}"'.encode()]
    if chip_id:
        refs.append(("chip_id", chip_id))
        blocked.append(("chip_id", chip_id))
        topics.append(chip_id)
        payloads.append(chip_id.encode())
        number = chip_id.rsplit("-", 1)[-1]
        payloads.append(f'"{number}"'.encode())
    return DeviceIdentifiers(tuple(dict.fromkeys(refs)), tuple(dict.fromkeys(blocked)),
                             tuple(dict.fromkeys(topics)), tuple(dict.fromkeys(payloads)))
