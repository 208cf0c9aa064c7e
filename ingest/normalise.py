"""Aliases → canonical quantities and units (pure, docs/quantities.md#aliases).

`ALIASES` is an append-only table: other packages (gateway formats) add the names their wire
formats use. Keys are lower case. A name not found as a whole is retried without its sensor
prefix (`BME280_temperature` → `temperature`, `SDS_P1` → `p1`).
"""

from __future__ import annotations

from datetime import datetime

from civicair.core.domain import QUANTITY_BY_NAME, Flag, QuantityInfo, Uplink
from civicair.core.errors import InvalidPayload
from civicair.ingest.flags import SENSOR_ERROR_SENTINELS, message_flags, value_flags

# alias (lower case) → canonical quantity name
ALIASES: dict[str, str] = {
    "pm1": "pm1",
    "pm1_0": "pm1",
    "pm1.0": "pm1",
    "p0": "pm1",
    "pm25": "pm25",
    "pm2_5": "pm25",
    "pm2.5": "pm25",
    "p2": "pm25",
    "pm10": "pm10",
    "p1": "pm10",
    "no2": "no2",
    "o3": "o3",
    "temperature": "temperature",
    "temp": "temperature",
    "t": "temperature",
    "humidity": "humidity",
    "rh": "humidity",
    "hum": "humidity",
    "pressure": "pressure",
    "press": "pressure",
    "p": "pressure",
}

# alias (lower case, full name) → the unit it carries when the wire gives none
ALIAS_UNITS: dict[str, str] = {
    "bme280_pressure": "Pa",  # sensor.community sends Pa
    "bmp280_pressure": "Pa",
    "bmp_pressure": "Pa",
    "bmp180_pressure": "Pa",
}

# (canonical quantity, unit lower case) → (factor, offset): canonical = value * factor + offset
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("no2", "ppb"): (1.88, 0.0),  # 20 °C, 1013 hPa
    ("o3", "ppb"): (1.96, 0.0),
    ("no2", "ppm"): (1880.0, 0.0),
    ("o3", "ppm"): (1960.0, 0.0),
    ("pressure", "pa"): (0.01, 0.0),
    ("pressure", "kpa"): (10.0, 0.0),
    ("pressure", "mbar"): (1.0, 0.0),
    ("temperature", "k"): (1.0, -273.15),
    ("temperature", "°f"): (5 / 9, -32 * 5 / 9),
    ("temperature", "f"): (5 / 9, -32 * 5 / 9),
}

_MASS = frozenset({"µg/m³", "µg/m3", "ug/m3", "ug/m³", "μg/m³", "μg/m3", "µg-m3", "ug-m3"})
# quantity → accepted spellings (lower case) of its canonical unit
CANONICAL_UNITS: dict[str, frozenset[str]] = {
    "pm1": _MASS, "pm25": _MASS, "pm10": _MASS, "no2": _MASS, "o3": _MASS,
    "temperature": frozenset({"°c", "c", "degc", "celsius"}),
    "humidity": frozenset({"%", "%rh", "% rh", "rh"}),
    "pressure": frozenset({"hpa"}),
}


# Magnitudes below this are zero for every quantity we store (sub-femtogram, sub-nano-degree);
# keeping them would make PostgreSQL's float arithmetic (value², rollup sums) raise underflow.
TINY = 1e-12


def canonical_name(alias: str) -> str | None:
    """The canonical quantity name of a wire name, or None when it is not a quantity we store."""
    key = alias.strip().lower()
    name = ALIASES.get(key)
    if name is None and "_" in key:
        name = ALIASES.get(key.split("_", 1)[1])
    return name


def quantity_of(alias: str) -> QuantityInfo | None:
    name = canonical_name(alias)
    return QUANTITY_BY_NAME[name] if name is not None else None


def to_canonical(quantity: str, value: float, unit: str | None, alias: str = "") -> float:
    """`value` in `unit` → the canonical unit of `quantity`; raises InvalidPayload for a unit
    that cannot be converted (the message then goes to the dead letters with its raw bytes)."""
    if unit is None:
        unit = ALIAS_UNITS.get(alias.strip().lower())
        if unit is None:
            return value
    u = unit.strip().lower()
    conv = UNIT_CONVERSIONS.get((quantity, u))
    if conv is not None:
        factor, offset = conv
        return value * factor + offset
    if u in CANONICAL_UNITS.get(quantity, ()) or u == QUANTITY_BY_NAME[quantity].unit.lower():
        return value
    raise InvalidPayload(f"unit {unit!r} cannot be converted for {quantity}")


def readings_rows(
    uplink: Uplink,
    device_id: int,
    *,
    time: datetime,
    now: datetime,
    received_at: datetime,
    mobile: bool = False,
    future_s: int = 300,
    past_s: int = 7 * 24 * 3600,
) -> list[tuple[int, datetime, int, float, int, float | None, float | None, datetime]]:
    """The `readings` rows (device_id, time, quantity, value, flags, lat, lon, received_at) of
    one uplink, in canonical units, flagged. Names that are not a quantity we store (e.g.
    sensor.community housekeeping `samples`, `signal`) are skipped: the raw message is kept
    with the uplink or the dead letter. Raises InvalidPayload for an unconvertible unit."""
    pos = uplink.position
    common = message_flags(time, now, future_s=future_s, past_s=past_s,
                           sensor_error=uplink.sensor_error, mobile=mobile,
                           has_position=pos is not None)
    lat = pos.lat if pos is not None else None
    lon = pos.lon if pos is not None else None
    out = []
    for raw in uplink.values:
        name = canonical_name(raw.name)
        if name is None:
            continue
        q = QUANTITY_BY_NAME[name]
        value = float(raw.value)
        if raw.unit is not None or "_" in raw.name:
            value = to_canonical(name, value, raw.unit, raw.name)
        if abs(value) < TINY:
            value = 0.0  # below any instrument's resolution; its square would underflow in SQL
        flags = common | value_flags(q, value)
        if raw.value in SENSOR_ERROR_SENTINELS:
            flags |= Flag.SENSOR_ERROR
        out.append((device_id, time, q.code, value, int(flags), lat, lon, received_at))
    return out
