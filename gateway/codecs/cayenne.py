"""CayenneLPP (Cayenne Low Power Payload, incl. the common extended types) decoder (pure).

Our own decoder: the PyPI packages (`pycayennelpp`, last release 2021; `cayennelpp`, 2018) lack
the extended types (generic sensor 100, concentration 125, unix time 133) that PM sensors need
for values above the analog-input range (±327.67), and a decoder we own is fuzzed with the rest.

Frame = repeated ``channel (1 byte) | type (1 byte) | data`` (big-endian). civicair channel
convention for readings (document it in the device profile; fPort 2):

=======  =============================================  ===================================
channel  type                                           meaning
=======  =============================================  ===================================
1/2/3/4  analog input (2), generic (100), conc. (125)   PM1 / PM2.5 / PM10 / NO2 (µg/m³)
any      temperature (103)                              temperature (°C)
any      humidity (104)                                 relative humidity (%)
any      barometer (115)                                pressure (hPa)
any      voltage (116) or analog input on channel 10    battery (V)
any      GPS (136)                                      position of a mobile sensor
any      unix time (133)                                measurement time
=======  =============================================  ===================================

Anything else is decoded and kept as ``cayenne_<type>_<channel>`` (ignored by ingest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from civicair.core.domain import Position, RawValue
from civicair.core.errors import InvalidPayload

# type → (name, size, signed, divisor, dimensions)
TYPES: dict[int, tuple[str, int, bool, float, int]] = {
    0: ("digital_in", 1, False, 1, 1),
    1: ("digital_out", 1, False, 1, 1),
    2: ("analog_in", 2, True, 100, 1),
    3: ("analog_out", 2, True, 100, 1),
    100: ("generic", 4, False, 1, 1),
    101: ("illuminance", 2, False, 1, 1),
    102: ("presence", 1, False, 1, 1),
    103: ("temperature", 2, True, 10, 1),
    104: ("humidity", 1, False, 2, 1),
    113: ("accelerometer", 6, True, 1000, 3),
    115: ("barometer", 2, False, 10, 1),
    116: ("voltage", 2, False, 100, 1),
    117: ("current", 2, False, 1000, 1),
    118: ("frequency", 4, False, 1, 1),
    120: ("percentage", 1, False, 1, 1),
    121: ("altitude", 2, True, 1, 1),
    125: ("concentration", 2, False, 1, 1),
    128: ("power", 2, False, 1, 1),
    130: ("distance", 4, False, 1000, 1),
    131: ("energy", 4, False, 1000, 1),
    132: ("direction", 2, False, 1, 1),
    133: ("unix_time", 4, False, 1, 1),
    134: ("gyrometer", 6, True, 100, 3),
    135: ("colour", 3, False, 1, 3),
    136: ("gps", 9, True, 1, 3),
    142: ("switch", 1, False, 1, 1),
}
PM_CHANNELS = {1: "pm1", 2: "pm25", 3: "pm10", 4: "no2"}
BATTERY_CHANNEL = 10
MAX_LENGTH = 242  # largest LoRaWAN application payload (EU868 DR7)
_UNITS = {"temperature": "°C", "humidity": "%", "pressure": "hPa"}


@dataclass(frozen=True, slots=True)
class CayenneFrame:
    values: tuple[RawValue, ...] = ()
    position: Position | None = None
    battery_v: float | None = None
    time: datetime | None = None


def _ints(chunk: bytes, parts: int, signed: bool) -> list[int]:
    width = len(chunk) // parts
    return [int.from_bytes(chunk[i * width:(i + 1) * width], "big", signed=signed) for i in range(parts)]


def decode(data: bytes) -> CayenneFrame:
    """Decode a CayenneLPP frame; malformed input raises InvalidPayload."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidPayload("CayenneLPP: payload must be bytes")
    data = bytes(data)
    if not data:
        raise InvalidPayload("CayenneLPP: empty payload")
    if len(data) > MAX_LENGTH:
        raise InvalidPayload(f"CayenneLPP: {len(data)} bytes, a LoRaWAN payload has at most {MAX_LENGTH}")
    values: list[RawValue] = []
    position = battery = time = None
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise InvalidPayload(f"CayenneLPP: truncated header at byte {i}")
        channel, type_ = data[i], data[i + 1]
        spec = TYPES.get(type_)
        if spec is None:
            raise InvalidPayload(f"CayenneLPP: unknown type {type_} on channel {channel}")
        name, size, signed, divisor, dims = spec
        chunk = data[i + 2:i + 2 + size]
        if len(chunk) != size:
            raise InvalidPayload(f"CayenneLPP: truncated {name} on channel {channel}")
        i += 2 + size
        raw = _ints(chunk, dims, signed)
        if name == "gps":
            lat, lon, alt = raw[0] / 10_000, raw[1] / 10_000, raw[2] / 100
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise InvalidPayload(f"CayenneLPP: GPS {lat},{lon} out of range")
            position = Position(lat, lon, alt)
            continue
        if dims != 1:
            continue  # accelerometer, gyrometer, colour: not air quality
        value = raw[0] / divisor
        if name == "unix_time":
            if not 0 < raw[0] < 2**32 - 1 or not math.isfinite(value):
                raise InvalidPayload("CayenneLPP: bad unix time")
            time = datetime.fromtimestamp(raw[0], UTC)
        elif name in ("analog_in", "generic", "concentration") and channel in PM_CHANNELS:
            values.append(RawValue(PM_CHANNELS[channel], value, "µg/m³"))
        elif name == "voltage" or (name == "analog_in" and channel == BATTERY_CHANNEL):
            battery = value
        elif name in ("temperature", "humidity", "barometer"):
            q = "pressure" if name == "barometer" else name
            values.append(RawValue(q, value, _UNITS[q]))
        else:
            values.append(RawValue(f"cayenne_{name}_{channel}", value))
    return CayenneFrame(tuple(values), position, battery, time)


def encode_value(channel: int, type_: int, value: float) -> bytes:
    """One single-dimension CayenneLPP item (tests and the simulator)."""
    name, size, signed, divisor, dims = TYPES[type_]
    if dims != 1:
        raise ValueError(f"{name} is not a single value")
    return bytes([channel, type_]) + round(value * divisor).to_bytes(size, "big", signed=signed)


def encode_gps(channel: int, lat: float, lon: float, alt: float) -> bytes:
    parts = (round(lat * 10_000), round(lon * 10_000), round(alt * 100))
    return bytes([channel, 136]) + b"".join(p.to_bytes(3, "big", signed=True) for p in parts)
