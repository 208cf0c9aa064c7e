"""A public device lists the quantities it has hourly data of: its own, not every device's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from civicair.readmodel import devices

from tests.seed import add_device, add_readings, build_hourly, reading

pytestmark = pytest.mark.db


def test_each_device_lists_only_its_own_quantities(db, settings) -> None:
    t = datetime(2026, 1, 5, 10, tzinfo=UTC)
    with db.engine.begin() as conn:
        a, pa = add_device(conn, "qa", lat=48.5, lon=7.7)
        b, pb = add_device(conn, "qb", lat=48.5, lon=7.7)
        c, pc = add_device(conn, "qc", lat=48.5, lon=7.7)
        add_readings(conn, [reading(a, t, 2, 10.0), reading(a, t, 6, 3.5), reading(b, t, 2, 11.0)])
        build_hourly(conn)
        listed = {r["pseudonym"]: r["quantities"] for r in devices.device_list(conn, settings)}
    assert listed == {pa: ["pm25", "temperature"], pb: ["pm25"], pc: []}
