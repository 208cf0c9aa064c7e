"""Domain types shared by every package: quantities, flags, uplinks, readings.

Pure: no I/O, no settings, no clock. Foreign types (paho messages, protobufs, HTTP bodies) are
converted into these at the edge of gateway/ and never travel further.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class QuantityInfo:
    code: int  # stored in readings.quantity (smallint)
    name: str  # canonical name used everywhere in the API
    unit: str
    low: float  # plausible range (docs/quantities.md#plausible-ranges); outside → flag OUT_OF_RANGE
    high: float
    label: str


QUANTITIES: tuple[QuantityInfo, ...] = (
    QuantityInfo(1, "pm1", "µg/m³", 0, 1000, "Particulate matter < 1 µm"),
    QuantityInfo(2, "pm25", "µg/m³", 0, 1000, "Particulate matter < 2.5 µm"),
    QuantityInfo(3, "pm10", "µg/m³", 0, 1000, "Particulate matter < 10 µm"),
    QuantityInfo(4, "no2", "µg/m³", 0, 2000, "Nitrogen dioxide"),
    QuantityInfo(5, "o3", "µg/m³", 0, 1000, "Ozone"),
    QuantityInfo(6, "temperature", "°C", -40, 85, "Air temperature"),
    QuantityInfo(7, "humidity", "%", 0, 100, "Relative humidity"),
    QuantityInfo(8, "pressure", "hPa", 300, 1100, "Barometric pressure"),
)
QUANTITY_BY_NAME: Mapping[str, QuantityInfo] = {q.name: q for q in QUANTITIES}
QUANTITY_BY_CODE: Mapping[int, QuantityInfo] = {q.code: q for q in QUANTITIES}


class Flag(enum.IntFlag):
    """Per-reading plausibility bitmask (readings.flags). Flagged values are stored, never
    dropped, and excluded from aggregates."""

    OUT_OF_RANGE = 1
    CLOCK = 2
    SENSOR_ERROR = 4
    NO_POSITION = 8  # mobile reading without a GPS fix


class DeviceKind(enum.StrEnum):
    FIXED = "fixed"
    MOBILE = "mobile"


class Transport(enum.StrEnum):
    LORAWAN = "lorawan"
    MQTT = "mqtt"
    HTTP = "http"


class Route(enum.StrEnum):
    """Where a message came in."""

    CHIRPSTACK = "chirpstack"
    TTS = "tts"
    DIRECT_MQTT = "mqtt"
    SENSOR_COMMUNITY = "sensor_community"
    HTTP = "http"


class RefScheme(enum.StrEnum):
    """How a message names its device."""

    DEV_EUI = "dev_eui"  # LoRaWAN DevEUI, 16 lowercase hex
    TTS_ID = "tts_id"  # The Things Stack device id
    CHIP_ID = "chip_id"  # sensor.community "esp8266-<chipid>"
    CIVICAIR = "civicair"  # our own device uid (topic civicair/v1/devices/{uid}/up)


@dataclass(frozen=True, slots=True)
class DeviceRef:
    scheme: RefScheme
    value: str


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    alt: float | None = None


@dataclass(frozen=True, slots=True)
class RawValue:
    """A value as the wire named it (alias + unit); ingest/ maps it onto a canonical quantity."""

    name: str
    value: float
    unit: str | None = None  # None: the canonical unit of the quantity the alias maps to


@dataclass(frozen=True, slots=True)
class LinkMeta:
    """Per-uplink radio / network metadata (LoRaWAN); all optional."""

    f_cnt: int | None = None
    f_port: int | None = None
    rssi: float | None = None  # best gateway
    snr: float | None = None
    gateway_count: int | None = None
    ns_time: datetime | None = None
    dedup_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A device's report of its own state, without readings (ChirpStack `event/status`,
    docs/formats.md#chirpstack-status-events)."""

    battery_pct: float | None = None  # 0-100 %; None when unavailable or on external power
    external_power: bool = False
    margin_db: int | None = None  # demodulation margin of the device's last DevStatusAns


@dataclass(frozen=True, slots=True)
class Uplink:
    """One decoded message from one device, before device resolution."""

    route: Route
    device: DeviceRef
    values: tuple[RawValue, ...]
    time: datetime | None = None  # measurement time; None → network-server / arrival time
    received_at: datetime | None = None
    position: Position | None = None
    link: LinkMeta = field(default_factory=LinkMeta)
    sensor_error: int | None = None  # the sensor's own error code, when the format carries one
    battery_v: float | None = None
    topic: str = ""
    raw: bytes = b""
    status: StatusReport | None = None  # set on a status event, which carries no readings

    @property
    def battery_pct(self) -> float | None:
        return self.status.battery_pct if self.status is not None else None
