"""Sub-resolution magnitudes are stored as 0, so SQL arithmetic on them cannot underflow."""

from __future__ import annotations

from datetime import UTC, datetime

from civicair.core.domain import DeviceRef, RawValue, RefScheme, Route, Uplink
from civicair.ingest.normalise import readings_rows


def test_tiny_values_become_zero_and_normal_values_stay() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    up = Uplink(Route.DIRECT_MQTT, DeviceRef(RefScheme.CIVICAIR, "x"),
                (RawValue("pm25", 1e-200), RawValue("pm10", -5e-310), RawValue("temperature", 1e-6)))
    rows = readings_rows(up, 1, time=now, now=now, received_at=now)
    assert [r[3] for r in rows] == [0.0, 0.0, 1e-6]
