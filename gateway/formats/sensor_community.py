"""sensor.community (airrohr firmware) HTTP push bodies (docs/formats.md#sensor-community-push), both forms (pure).

* Pin form (the firmware's push to sensor.community): header `X-Pin: n` selects which sensor
  of the node sent the values, names are unprefixed: pin 1 `P0`/`P1`/`P2` (PM1/PM10/PM2.5),
  3 BMP180/280 `temperature`/`pressure`, 7 DHT22/SHT3x `temperature`/`humidity`, 9 GPS
  `lat`/`lon`/`height`, 11 BME280 `temperature`/`pressure`/`humidity`.
* "Custom API" form (the firmware's "send to own API"): one body with `esp8266id` and prefixed
  names (`SDS_P1`, `PMS_P2`, `BME280_pressure`, `GPS_lat`, …) plus housekeeping values
  (`samples`, `min_micro`, `max_micro`, `interval`, `signal`), which are ignored.

Values are strings. Pressure arrives in Pa and is converted to hPa here. The node is named
`esp8266-<chipid>` (or `esp32-…`) from `X-Sensor`/`Sensor`/`Node`, else from `esp8266id`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from civicair.core.domain import DeviceRef, Position, RawValue, RefScheme, Route, Uplink
from civicair.core.errors import InvalidPayload
from civicair.gateway.formats.direct import parse_time
from civicair.gateway.formats.jsonbody import json_object

PM_NAMES = {"p0": "pm1", "p1": "pm10", "p2": "pm25"}
HOUSEKEEPING = {"samples", "min_micro", "max_micro", "interval", "signal"}
_CHIP = re.compile(r"(esp8266|esp32)-([0-9A-Za-z]{1,32})")
_UNITS = {"pm1": "µg/m³", "pm10": "µg/m³", "pm25": "µg/m³", "temperature": "°C",
          "humidity": "%", "pressure": "hPa"}
PINS = {1: "pm", 3: "bmp", 7: "dht", 9: "gps", 11: "bme280"}


def chip_id_from(headers: Mapping[str, str], body: dict) -> str | None:
    for h in ("x-sensor", "sensor", "node"):
        v = headers.get(h)
        if v:
            m = _CHIP.fullmatch(v.strip())
            if m is None:
                raise InvalidPayload(f"{h}: expected esp8266-<chipid> or esp32-<chipid>")
            return f"{m.group(1)}-{m.group(2)}"
    esp = body.get("esp8266id")
    if isinstance(esp, int) and not isinstance(esp, bool):
        esp = str(esp)
    if isinstance(esp, str) and esp:
        if not re.fullmatch(r"[0-9A-Za-z]{1,32}", esp):
            raise InvalidPayload("esp8266id must be alphanumeric")
        return f"esp8266-{esp}"
    return None


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidPayload(f"{name}: value must be a number or a numeric string")
    try:
        f = float(value)
    except (ValueError, OverflowError):
        raise InvalidPayload(f"{name}: {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(f):
        raise InvalidPayload(f"{name} is not finite")
    return f


def _canonical(value_type: str) -> tuple[str, str | None]:
    """(canonical or GPS name, sensor prefix) of a value_type, or ('', …) when not ours."""
    low = value_type.strip().lower()
    prefix, _, base = low.rpartition("_") if low not in HOUSEKEEPING else ("", "", low)
    if low in HOUSEKEEPING or base in ("micro",):
        return "", None
    if base in PM_NAMES:
        return PM_NAMES[base], prefix or None
    if base in ("temperature", "humidity", "pressure", "lat", "lon", "height"):
        return base, prefix or None
    return "", None


def decode_sensor_community(
    payload: bytes, headers: Mapping[str, str], *, fallback: DeviceRef | None = None,
    topic: str = "/v1/push/sensor-community",
) -> Uplink:
    """`headers` with lower-case names. No chip id in headers/body → `fallback` (the device the
    token authenticated)."""
    body = json_object(payload, "sensor.community body")
    items = body.get("sensordatavalues")
    if not isinstance(items, list) or not items:
        raise InvalidPayload("sensor.community: 'sensordatavalues' must be a non-empty list")
    pin_header = headers.get("x-pin") or headers.get("pin")
    pin = None
    if pin_header is not None:
        # ASCII digits only: "²".isdigit() is True but int("²") raises (found by the fuzz test)
        if not (pin_header.isascii() and pin_header.strip().isdigit()) or int(pin_header) not in PINS:
            raise InvalidPayload(f"X-Pin {pin_header[:10]!r} is not one of {sorted(PINS)}")
        pin = int(pin_header)
    chip = chip_id_from(headers, body)
    device = DeviceRef(RefScheme.CHIP_ID, chip) if chip else fallback
    if device is None:
        raise InvalidPayload("sensor.community: no X-Sensor header and no esp8266id")
    values: list[RawValue] = []
    gps: dict[str, float] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value_type"), str):
            raise InvalidPayload("sensordatavalues: each item needs a string value_type")
        name, _ = _canonical(item["value_type"])
        if not name:
            continue
        if pin is not None and PINS[pin] != "pm" and name in PM_NAMES.values():
            continue  # a P1 under a non-PM pin is not a PM value
        v = _number(item["value_type"], item.get("value"))
        if name in ("lat", "lon", "height"):
            gps[name] = v
            continue
        if name == "pressure":
            v = round(v / 100, 4)  # airrohr sends Pa
        values.append(RawValue(name, v, _UNITS[name]))
    position = None
    if "lat" in gps and "lon" in gps:
        if not (-90 <= gps["lat"] <= 90 and -180 <= gps["lon"] <= 180):
            raise InvalidPayload("GPS position out of range")
        if (gps["lat"], gps["lon"]) != (0.0, 0.0):  # airrohr sends 0/0 without a fix
            position = Position(gps["lat"], gps["lon"], gps.get("height"))
    time = None
    if body.get("timestamp") not in (None, ""):
        time = parse_time(body["timestamp"])
    return Uplink(route=Route.SENSOR_COMMUNITY, device=device, values=tuple(values), time=time,
                  position=position, topic=topic, raw=payload)
