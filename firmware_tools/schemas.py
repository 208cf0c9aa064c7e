"""Pydantic models of volunteer onboarding: the registration form, credentials shown once, the
status a volunteer sees. Validation lives here so the CLI and the API share every rule."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from civicair.core.domain import DeviceKind, Transport
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

SENSOR_MODELS = (
    "SDS011", "PMS5003", "PMS7003", "SPS30", "SEN5X", "HPMA115", "NEXTPM", "BME280", "BMP280",
    "DHT22", "SHT31", "SHT3X", "SCD30", "MICS6814", "NO2-B43F",
)
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_CHIP = re.compile(r"^(esp8266|esp32)-[0-9a-z]{1,16}$")


def normalise_eui(value: str, field: str = "DevEUI") -> str:
    """'70-B3-D5-7E-D0-00-12-34' / '70:b3:..' / '70B3D57ED0001234' → '70b3d57ed0001234'."""
    cleaned = re.sub(r"[\s:\-]", "", value).lower()
    if not _HEX16.match(cleaned):
        raise ValueError(f"{field} must be 16 hexadecimal characters (8 bytes), got {value!r}")
    if field == "DevEUI" and cleaned in ("0" * 16, "f" * 16):
        raise ValueError(f"{field} {value!r} is reserved, use the one printed on your device")
    return cleaned


def normalise_chip_id(value: str) -> str:
    """'123456' → 'esp8266-123456'; 'ESP32-ABCDEF' → 'esp32-abcdef'."""
    v = value.strip().lower()
    if v.isdigit():
        v = f"esp8266-{v}"
    if not _CHIP.match(v):
        raise ValueError(f"chip id must look like 'esp8266-1234567' or 'esp32-a1b2c3', got {value!r}")
    return v


class RegistrationRequest(BaseModel):
    """What a volunteer tells us about a new sensor."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80, description="Private name, e.g. 'balcony'")
    kind: DeviceKind
    sensors: list[str] = Field(min_length=1, max_length=8, description="Sensor models, e.g. ['SDS011']")
    transport: Transport
    lat: float = Field(ge=-90, le=90, description="Exact latitude (kept private)")
    lon: float = Field(ge=-180, le=180, description="Exact longitude (kept private)")
    email: EmailStr
    owner_name: str | None = Field(default=None, max_length=120)
    consent_public: bool = False
    dev_eui: str | None = Field(default=None, description="LoRaWAN DevEUI (16 hex); generated if absent")
    chip_id: str | None = Field(default=None, description="sensor.community chip id (esp8266-…)")

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, v: list[str]) -> list[str]:
        out = []
        for s in v:
            up = s.strip().upper()
            if up not in SENSOR_MODELS:
                raise ValueError(f"unknown sensor model {s!r}; known: {', '.join(SENSOR_MODELS)}")
            if up not in out:
                out.append(up)
        return out

    @field_validator("dev_eui")
    @classmethod
    def _dev_eui(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v in (None, ""):
            return None
        if info.data.get("transport") not in (None, Transport.LORAWAN):
            raise ValueError("a DevEUI is only for transport 'lorawan'")
        return normalise_eui(v)

    @field_validator("chip_id")
    @classmethod
    def _chip(cls, v: str | None) -> str | None:
        return None if v in (None, "") else normalise_chip_id(v)

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, v: float, info: ValidationInfo) -> float:
        if v != v:  # NaN
            raise ValueError("must be a number")
        if info.field_name == "lon" and v == 0 and info.data.get("lat") == 0:
            raise ValueError("lat/lon 0,0 is not a real location; give your sensor's position")
        return v


class LoRaWANKeys(BaseModel):
    dev_eui: str
    join_eui: str
    app_key: str | None = None  # None: not recoverable (kept only by the network server)
    lorawan_version: str = "1.0.x"


class Credentials(BaseModel):
    """Secrets shown once. A None field is not issued now (or not recoverable)."""

    device_token: str | None = None
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_topic: str | None = None
    lorawan: LoRaWANKeys | None = None


class RegistrationResult(BaseModel):
    uid: str
    pseudonym: str
    h3_cell: str | None = Field(description="Public location (fixed devices only)")
    public_url: str
    transport: Transport
    credentials: Credentials
    chirpstack: str | None = Field(default=None, description="ChirpStack provisioning outcome")
    notice: str = "Keep these credentials: they are shown only once."


class BatteryStatus(BaseModel):
    """The device's last status report (LoRaWAN, ChirpStack `event/status`)."""

    at: datetime
    level_pct: float | None = Field(description="0-100 %; null when unavailable or on external power")
    external_power: bool
    margin_db: int | None = None


class DeviceStatus(BaseModel):
    uid: str
    pseudonym: str
    name: str
    kind: str
    transport: str
    sensors: list[str]
    h3_cell: str | None
    public_url: str
    consent_public: bool
    status: str
    stars: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    readings_last_24h: int
    flags: list[dict[str, Any]]
    calibration: list[dict[str, Any]]
    battery: BatteryStatus | None = None


class PublicationStatus(BaseModel):
    """A device as an operator sees it in the publication workflow (docs/privacy.md#publication)."""

    uid: str
    pseudonym: str
    name: str
    kind: str
    transport: str
    status: str = Field(description="reliability status (calibration)")
    consent_public: bool
    publication: str = Field(description="pending (automatic after the QA window), approved, or withheld")
    changed_at: datetime | None = Field(description="when an operator last set `publication`")
    changed_by: str | None
    note: str | None
    created_at: datetime
    first_received_at: datetime | None = Field(description="first stored reading: the QA window starts")
    last_seen: datetime | None
    qa_ends_at: datetime | None = Field(description="when a pending device's QA window ends (None: no data yet, "
                                        "or only approval publishes)")
    established: bool = Field(description="counts toward k and may be published")
    public: bool = Field(description="established and consenting: its data are public")


class PublicationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500, description="why (kept, private)")


class PrivacyZoneIn(BaseModel):
    """A circle where a mobile device's points are never published (docs/privacy.md#privacy-zones)."""

    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(ge=50, le=5000, description="50 m to 5 km")

    @field_validator("lat", "lon", "radius_m")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class PrivacyZones(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zones: list[PrivacyZoneIn] = Field(max_length=10, description="at most 10; an empty list removes them all")


class SignupAccepted(BaseModel):
    """The one answer to every sign-up when e-mail confirmation is on (no enumeration of addresses)."""

    detail: str = ("If this address can receive mail, a confirmation link is on its way to it. Open it to create "
                   "the sensor and see its credentials (once).")


class SignupConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, description="The `token` of the mailed link")
