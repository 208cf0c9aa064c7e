"""Payloads the network server already decoded (ChirpStack `object`, TTS `decoded_payload`)
→ our `RawValue`s, position and battery (pure).

Rules: numeric leaves become values named by their key; a nested object whose keys are channel
numbers (ChirpStack's CayenneLPP output `{"temperatureSensor": {"3": 21.5}}`) is named by its
parent key; a trailing `_<channel>` (TTS's CayenneLPP output `temperature_3`) is dropped. An
object holding `latitude`/`longitude` (or `lat`/`lon`) is the position. Common codec names are renamed (`RENAME`). `battery`/`battery_v`/
`voltage`/`batteryVoltage` is the battery in volts. Strings, booleans and unknown names are
ignored (the raw bytes stay in `Uplink.raw`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from civicair.core.domain import Position, RawValue

_CHANNEL_SUFFIX = re.compile(r"_\d{1,3}$")
_PM_NAME = re.compile(r"(?i)pm\d{1,2}_\d")  # pm2_5, pm1_0: not a channel suffix
_BATTERY = {"battery", "battery_v", "batteryvoltage", "battery_voltage", "voltage", "vbat"}
_LAT = ("latitude", "lat")
_LON = ("longitude", "lon", "lng")
_ALT = ("altitude", "alt", "height")
MAX_DEPTH = 4
# names network-server codecs commonly use → the canonical quantity names (docs/formats.md#network-server-decoded-objects)
RENAME = {
    "temperaturesensor": "temperature", "humiditysensor": "humidity", "barometer": "pressure",
    "barometersensor": "pressure", "barometric_pressure": "pressure", "relative_humidity": "humidity",
    "air_temperature": "temperature", "air_humidity": "humidity",
}


@dataclass(frozen=True, slots=True)
class DecodedObject:
    values: tuple[RawValue, ...] = ()
    position: Position | None = None
    battery_v: float | None = None


def finite_number(v: object) -> float | None:
    """A JSON number as a finite float; None for anything else (bools, strings, inf, overflow)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _position(obj: dict) -> Position | None:
    lat = next((finite_number(obj[k]) for k in _LAT if k in obj), None)
    lon = next((finite_number(obj[k]) for k in _LON if k in obj), None)
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    alt = next((finite_number(obj[k]) for k in _ALT if k in obj), None)
    return Position(lat, lon, alt)


def read_decoded_object(obj: object) -> DecodedObject:
    """Never raises: anything that is not a usable number is ignored."""
    if not isinstance(obj, dict):
        return DecodedObject()
    values: list[RawValue] = []
    state: dict[str, object] = {"position": None, "battery": None}

    def walk(node: dict, name_hint: str | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        pos = _position(node)
        if pos is not None and state["position"] is None:
            state["position"] = pos
        for key, v in node.items():
            key = str(key)
            if isinstance(v, dict):
                channels = all(str(k).isdigit() for k in v)
                walk(v, key if channels else None, depth + 1)
                continue
            num = finite_number(v)
            if num is None:
                continue
            name = name_hint if (name_hint is not None and key.isdigit()) else key
            if not _PM_NAME.fullmatch(name):
                name = _CHANNEL_SUFFIX.sub("", name)
            low = name.lower()
            if low in _LAT or low in _LON or low in _ALT:
                continue
            if low in _BATTERY:
                if state["battery"] is None:
                    state["battery"] = num
                continue
            values.append(RawValue(RENAME.get(low, name), num))

    walk(obj, None, 0)
    battery = state["battery"]
    return DecodedObject(
        tuple(values),
        state["position"],  # type: ignore[arg-type]
        battery if isinstance(battery, float) else None,
    )
