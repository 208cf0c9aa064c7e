"""civicair compact binary v1: the LoRaWAN payload of civicair sensors (pure, no I/O).

Sent on fPort 1 (see ``gateway.codecs.decode_port_payload``). Big-endian, at most 28 bytes, so it
fits every EU868 data rate (DR0 allows 51). A field that the sensor did not measure carries its
"n/a" sentinel; optional blocks are present only when their flag bit is set, in flag-bit order.

======  =====  =========  ==========================================  ==================
offset  size   type       field (unit, resolution)                    n/a sentinel
======  =====  =========  ==========================================  ==================
0       1      uint8      version = 0x01
1       1      uint8      flags: bit0 NO2 block, bit1 GPS block,
                          bit2 sensor-error block, bits 3-7 must be 0
2       2      uint16     PM1   (µg/m³, 0.1)   0 – 6553.4             0xFFFF
4       2      uint16     PM2.5 (µg/m³, 0.1)                          0xFFFF
6       2      uint16     PM10  (µg/m³, 0.1)                          0xFFFF
8       2      int16      temperature (°C, 0.01)  −327.67 – 327.66    0x7FFF
10      1      uint8      relative humidity (%, 0.5)  0 – 127         0xFF
11      2      uint16     pressure (hPa, 0.1)  0 – 6553.4             0xFFFF
13      1      uint8      battery (V) = 2.00 + n × 0.01 (2.00–4.54)   0xFF
------  -----  ---------  ------------------------------------------  ------------------
        2      uint16     [bit0] NO2 (µg/m³, 0.1)                     0xFFFF
        4      int32      [bit1] latitude  (degrees, 1e-7)
        4      int32      [bit1] longitude (degrees, 1e-7)
        2      int16      [bit1] altitude (m, 1)                      0x7FFF
        2      uint16     [bit2] sensor error code (0 = OK)
======  =====  =========  ==========================================  ==================

Example: ``01 00 00 7B 00 C8 01 2C 08 FC 5A 27 95 7C`` = PM1 12.3, PM2.5 20.0, PM10 30.0 µg/m³,
23.00 °C, 45 % RH, 1013.3 hPa, battery 3.24 V.

A mobile sensor without a GPS fix clears bit1 (it does not send 0/0). ``decode`` raises only ``core.errors.InvalidPayload``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from civicair.core.domain import Position, RawValue
from civicair.core.errors import InvalidPayload

VERSION = 1
MAX_LENGTH = 28
FLAG_NO2 = 0x01
FLAG_GPS = 0x02
FLAG_ERROR = 0x04
_KNOWN_FLAGS = FLAG_NO2 | FLAG_GPS | FLAG_ERROR

_BASE = struct.Struct(">BBHHHhBHB")  # 14 bytes
_NO2 = struct.Struct(">H")
_GPS = struct.Struct(">iih")
_ERR = struct.Struct(">H")

U16_NA = 0xFFFF
I16_NA = 0x7FFF
U8_NA = 0xFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded binary v1 frame; None = not measured."""

    pm1: float | None = None
    pm25: float | None = None
    pm10: float | None = None
    temperature: float | None = None
    humidity: float | None = None
    pressure: float | None = None  # hPa
    no2: float | None = None
    battery_v: float | None = None
    position: Position | None = None
    sensor_error: int | None = None

    def raw_values(self) -> tuple[RawValue, ...]:
        """The measured values under their canonical names and units."""
        units = {
            "pm1": "µg/m³", "pm25": "µg/m³", "pm10": "µg/m³", "no2": "µg/m³",
            "temperature": "°C", "humidity": "%", "pressure": "hPa",
        }
        return tuple(
            RawValue(name, v, unit)
            for name, unit in units.items()
            if (v := getattr(self, name)) is not None
        )


def _scaled(name: str, value: float | None, scale: float, lo: int, hi: int, na: int) -> int:
    if value is None:
        return na
    if not math.isfinite(value):
        raise ValueError(f"{name} is not finite")
    n = round(value * scale)
    if not lo <= n <= hi:
        raise ValueError(f"{name}={value} outside the encodable range")
    return n


def encode(
    *,
    pm1: float | None = None,
    pm25: float | None = None,
    pm10: float | None = None,
    temperature: float | None = None,
    humidity: float | None = None,
    pressure: float | None = None,
    no2: float | None = None,
    battery_v: float | None = None,
    lat: float | None = None,
    lon: float | None = None,
    alt: float | None = None,
    sensor_error: int | None = None,
) -> bytes:
    """Encode one frame; raises ValueError for a value the layout cannot carry."""
    flags = 0
    tail = b""
    if no2 is not None:
        flags |= FLAG_NO2
        tail += _NO2.pack(_scaled("no2", no2, 10, 0, 0xFFFE, U16_NA))
    if (lat is None) != (lon is None):
        raise ValueError("lat and lon go together")
    if lat is not None and lon is not None:
        flags |= FLAG_GPS
        tail += _GPS.pack(
            _scaled("lat", lat, 1e7, -900_000_000, 900_000_000, 0),
            _scaled("lon", lon, 1e7, -1_800_000_000, 1_800_000_000, 0),
            _scaled("alt", alt, 1, -32768, 32766, I16_NA),
        )
    if sensor_error is not None:
        flags |= FLAG_ERROR
        tail += _ERR.pack(_scaled("sensor_error", sensor_error, 1, 0, 0xFFFF, 0))
    battery = None if battery_v is None else battery_v - 2.0
    head = _BASE.pack(
        VERSION,
        flags,
        _scaled("pm1", pm1, 10, 0, 0xFFFE, U16_NA),
        _scaled("pm25", pm25, 10, 0, 0xFFFE, U16_NA),
        _scaled("pm10", pm10, 10, 0, 0xFFFE, U16_NA),
        _scaled("temperature", temperature, 100, -32768, 32766, I16_NA),
        _scaled("humidity", humidity, 2, 0, 0xFE, U8_NA),
        _scaled("pressure", pressure, 10, 0, 0xFFFE, U16_NA),
        _scaled("battery_v", battery, 100, 0, 0xFE, U8_NA),
    )
    return head + tail


def _u(n: int, na: int, scale: float) -> float | None:
    return None if n == na else round(n / scale, 6)


def decode(data: bytes) -> Frame:
    """Decode one frame; any malformed input raises InvalidPayload."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidPayload("binary v1: payload must be bytes")
    data = bytes(data)
    if len(data) < _BASE.size:
        raise InvalidPayload(f"binary v1: {len(data)} bytes, need at least {_BASE.size}")
    ver, flags, pm1, pm25, pm10, t, rh, p, batt = _BASE.unpack_from(data)
    if ver != VERSION:
        raise InvalidPayload(f"binary v1: unknown version {ver}")
    if flags & ~_KNOWN_FLAGS:
        raise InvalidPayload(f"binary v1: reserved flag bits set (0x{flags:02x})")
    expected = (
        _BASE.size
        + (_NO2.size if flags & FLAG_NO2 else 0)
        + (_GPS.size if flags & FLAG_GPS else 0)
        + (_ERR.size if flags & FLAG_ERROR else 0)
    )
    if len(data) != expected:
        raise InvalidPayload(f"binary v1: {len(data)} bytes, flags 0x{flags:02x} need {expected}")
    off = _BASE.size
    no2 = position = error = None
    if flags & FLAG_NO2:
        no2 = _u(_NO2.unpack_from(data, off)[0], U16_NA, 10)
        off += _NO2.size
    if flags & FLAG_GPS:
        lat_i, lon_i, alt_i = _GPS.unpack_from(data, off)
        off += _GPS.size
        lat, lon = lat_i / 1e7, lon_i / 1e7
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidPayload(f"binary v1: position {lat},{lon} out of range")
        position = Position(lat, lon, None if alt_i == I16_NA else float(alt_i))
    if flags & FLAG_ERROR:
        error = _ERR.unpack_from(data, off)[0]
    return Frame(
        pm1=_u(pm1, U16_NA, 10),
        pm25=_u(pm25, U16_NA, 10),
        pm10=_u(pm10, U16_NA, 10),
        temperature=_u(t, I16_NA, 100),
        humidity=_u(rh, U8_NA, 2),
        pressure=_u(p, U16_NA, 10),
        no2=no2,
        battery_v=None if batt == U8_NA else round(2.0 + batt / 100, 2),
        position=position,
        sensor_error=error,
    )
