"""Normalisation tables and plausibility flags (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from civicair.core.domain import (
    QUANTITY_BY_NAME,
    DeviceRef,
    Flag,
    Position,
    RawValue,
    RefScheme,
    Route,
    Uplink,
)
from civicair.core.errors import InvalidPayload
from civicair.ingest.flags import clock_flag, message_flags, value_flags
from civicair.ingest.normalise import ALIASES, canonical_name, readings_rows, to_canonical
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("alias", "name"), [
    ("P1", "pm10"), ("P2", "pm25"), ("P0", "pm1"), ("pm2_5", "pm25"), ("PM2.5", "pm25"),
    ("SDS_P1", "pm10"), ("SDS_P2", "pm25"), ("BME280_temperature", "temperature"),
    ("BME280_humidity", "humidity"), ("BME280_pressure", "pressure"), ("rh", "humidity"),
    ("NO2", "no2"), ("o3", "o3"), (" Temperature ", "temperature"),
])
def test_aliases_map_to_canonical_names(alias: str, name: str) -> None:
    assert canonical_name(alias) == name


@pytest.mark.parametrize("alias", ["samples", "min_micro", "max_micro", "interval", "signal", "co2x"])
def test_housekeeping_names_are_not_quantities(alias: str) -> None:
    assert canonical_name(alias) is None


def test_every_alias_targets_a_known_quantity() -> None:
    assert set(ALIASES.values()) <= set(QUANTITY_BY_NAME)


@pytest.mark.parametrize(("quantity", "value", "unit", "expected"), [
    ("no2", 10.0, "ppb", 18.8),
    ("o3", 10.0, "ppb", 19.6),
    ("no2", 0.01, "ppm", 18.8),
    ("pressure", 101325.0, "Pa", 1013.25),
    ("pressure", 101.325, "kPa", 1013.25),
    ("temperature", 293.15, "K", 20.0),
    ("temperature", 68.0, "°F", 20.0),
    ("pm25", 12.0, "µg/m³", 12.0),
    ("pm25", 12.0, "ug/m3", 12.0),
    ("humidity", 55.0, "%", 55.0),
    ("pressure", 1013.0, "hPa", 1013.0),
    ("pm10", 7.0, None, 7.0),
])
def test_unit_conversions(quantity: str, value: float, unit: str | None, expected: float) -> None:
    assert to_canonical(quantity, value, unit) == pytest.approx(expected)


def test_sensor_community_pressure_without_unit_is_pascal() -> None:
    assert to_canonical("pressure", 98765.0, None, "BME280_pressure") == pytest.approx(987.65)


@pytest.mark.parametrize(("quantity", "unit"), [("pm25", "ppb"), ("temperature", "%"), ("no2", "furlongs")])
def test_unconvertible_unit_is_an_error(quantity: str, unit: str) -> None:
    with pytest.raises(InvalidPayload, match="cannot be converted"):
        to_canonical(quantity, 1.0, unit)


@pytest.mark.parametrize(("name", "value", "flagged"), [
    ("pm25", 0.0, False), ("pm25", 1000.0, False), ("pm25", 1000.1, True), ("pm25", -0.1, True),
    ("no2", 2000.0, False), ("no2", 2001.0, True), ("o3", 1001.0, True),
    ("temperature", -40.0, False), ("temperature", -41.0, True), ("temperature", 86.0, True),
    ("humidity", 100.0, False), ("humidity", 100.5, True),
    ("pressure", 299.0, True), ("pressure", 1013.0, False), ("pressure", 1101.0, True),
])
def test_out_of_range_flag(name: str, value: float, flagged: bool) -> None:
    assert bool(value_flags(QUANTITY_BY_NAME[name], value) & Flag.OUT_OF_RANGE) is flagged


def test_clock_flag_future_and_past() -> None:
    kw = {"future_s": 300, "past_s": 7 * 24 * 3600}
    assert clock_flag(NOW + timedelta(seconds=299), NOW, **kw) == 0
    assert clock_flag(NOW + timedelta(seconds=301), NOW, **kw) == Flag.CLOCK
    assert clock_flag(NOW - timedelta(days=6, hours=23), NOW, **kw) == 0
    assert clock_flag(NOW - timedelta(days=7, seconds=1), NOW, **kw) == Flag.CLOCK


def test_sensor_error_code_and_sentinels_and_no_position() -> None:
    kw = {"future_s": 300, "past_s": 3600}
    assert message_flags(NOW, NOW, sensor_error=3, **kw) == Flag.SENSOR_ERROR
    assert message_flags(NOW, NOW, sensor_error=0, **kw) == 0
    assert message_flags(NOW, NOW, mobile=True, has_position=False, **kw) == Flag.NO_POSITION
    assert message_flags(NOW, NOW, mobile=False, has_position=False, **kw) == 0
    assert value_flags(QUANTITY_BY_NAME["temperature"], -127.0) & Flag.SENSOR_ERROR


def _uplink(*values: RawValue, **kw) -> Uplink:  # type: ignore[no-untyped-def]
    return Uplink(Route.DIRECT_MQTT, DeviceRef(RefScheme.CIVICAIR, "d"), values, **kw)


def test_readings_rows_normalise_flag_and_skip_unknown_names() -> None:
    up = _uplink(RawValue("P2", 12.0), RawValue("no2", 10.0, "ppb"), RawValue("samples", 300.0),
                 RawValue("humidity", 120.0), time=NOW, position=Position(48.5, 7.7), sensor_error=None)
    rows = readings_rows(up, 7, time=NOW, now=NOW, received_at=NOW, mobile=True)
    by_q = {r[2]: r for r in rows}
    assert set(by_q) == {QUANTITY_BY_NAME[n].code for n in ("pm25", "no2", "humidity")}
    assert by_q[4][3] == pytest.approx(18.8)
    assert by_q[7][4] == Flag.OUT_OF_RANGE
    assert by_q[2][4] == 0 and by_q[2][5:7] == (48.5, 7.7)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_flags_agree_with_the_range_table(value: float) -> None:
    for q in QUANTITY_BY_NAME.values():
        inside = q.low <= value <= q.high
        assert bool(value_flags(q, value) & Flag.OUT_OF_RANGE) is not inside
