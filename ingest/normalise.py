"""Aliases → canonical quantities and units, plausibility flags (pure, SPEC §3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.domain import QUANTITY_BY_NAME, Flag, Reading, Uplink

ALIASES: dict[str, str] = {
    "pm1": "pm1", "pm2_5": "pm25", "pm25": "pm25", "pm2.5": "pm25", "pm10": "pm10",
    "p0": "pm1", "p1": "pm10", "p2": "pm25",
    "no2": "no2", "o3": "o3",
    "temperature": "temperature", "temp": "temperature", "t": "temperature",
    "humidity": "humidity", "rh": "humidity", "hum": "humidity",
    "pressure": "pressure", "press": "pressure",
}


def canonical_name(alias: str) -> str | None:
    return ALIASES.get(alias.strip().lower())


def uplink_to_readings(
    uplink: Uplink,
    device_id: int,
    *,
    now: datetime,
    future_s: int = 300,
    past_s: int = 7 * 24 * 3600,
) -> list[Reading]:
    """Readings of one uplink; unknown aliases are skipped (the raw payload is kept in uplinks)."""
    time = uplink.time or uplink.link.ns_time or uplink.received_at or now
    flags_common = 0
    if time > now + timedelta(seconds=future_s) or time < now - timedelta(seconds=past_s):
        flags_common |= Flag.CLOCK
    if uplink.sensor_error:
        flags_common |= Flag.SENSOR_ERROR
    lat = uplink.position.lat if uplink.position else None
    lon = uplink.position.lon if uplink.position else None
    out: list[Reading] = []
    for raw in uplink.values:
        name = canonical_name(raw.name)
        if name is None:
            continue
        q = QUANTITY_BY_NAME[name]
        flags = flags_common
        if not (q.low <= raw.value <= q.high):
            flags |= Flag.OUT_OF_RANGE
        out.append(Reading(device_id, time, q.code, raw.value, int(flags), lat, lon))
    return out
