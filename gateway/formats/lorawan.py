"""Pieces shared by the LoRaWAN network-server formats (pure): lenient field readers, the
best-gateway choice, and "decoded object or codec by fPort" for the application payload."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from civicair.core.domain import Position, RawValue
from civicair.core.errors import InvalidPayload
from civicair.gateway.codecs import decode_port_payload
from civicair.gateway.formats.decoded import finite_number, read_decoded_object

_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def dev_eui(value: object, where: str) -> str:
    if not isinstance(value, str) or not _HEX16.fullmatch(value):
        raise InvalidPayload(f"{where}: DevEUI must be 16 hex digits")
    return value.lower()


def opt_int(doc: dict, key: str, missing: int | None = None) -> int | None:
    """A missing key is `missing` (proto3 JSON omits zero values); null or a wrong type is None."""
    if key not in doc:
        return missing
    v = doc[key]
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else None
    if isinstance(v, str) and v.strip().isdigit() and v.isascii() and len(v) < 20:
        return int(v)  # protobuf JSON renders 64-bit ints as strings
    return None


def opt_float(doc: dict, key: str) -> float | None:
    return finite_number(doc.get(key))


def opt_time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: before year 1 or after 9999 in UTC
        return None


def opt_dict(doc: object, key: str) -> dict:
    v = doc.get(key) if isinstance(doc, dict) else None
    return v if isinstance(v, dict) else {}


def opt_list(doc: dict, key: str) -> list:
    v = doc.get(key)
    return v if isinstance(v, list) else []


def b64(value: object, where: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise InvalidPayload(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(f"{where} is not valid base64") from None


@dataclass(frozen=True, slots=True)
class Radio:
    rssi: float | None = None
    snr: float | None = None
    gateway_count: int | None = None


def best_gateway(entries: list[tuple[str | None, float | None, float | None]]) -> Radio:
    """Best gateway = highest SNR, then highest RSSI; count = distinct gateways (or entries)."""
    if not entries:
        return Radio()
    ids = {g for g, _, _ in entries if g}
    ranked = sorted(
        entries,
        key=lambda e: (e[2] if e[2] is not None else -math.inf, e[1] if e[1] is not None else -math.inf),
    )
    _, rssi, snr = ranked[-1]
    return Radio(rssi, snr, len(ids) if ids else len(entries))


@dataclass(frozen=True, slots=True)
class Content:
    values: tuple[RawValue, ...] = ()
    position: Position | None = None
    battery_v: float | None = None
    time: datetime | None = None
    sensor_error: int | None = None


def application_content(decoded: object, data: bytes, f_port: int | None) -> Content:
    """Use what the network server decoded when it did; else decode `data` by fPort; no data →
    a metadata-only uplink (no values)."""
    if isinstance(decoded, dict) and decoded:
        d = read_decoded_object(decoded)
        t = opt_time(decoded.get("time")) if isinstance(decoded.get("time"), str) else None
        return Content(d.values, d.position, d.battery_v, t)
    if not data:
        return Content()
    p = decode_port_payload(f_port, data)
    return Content(p.values, p.position, p.battery_v, p.time, p.sensor_error)
