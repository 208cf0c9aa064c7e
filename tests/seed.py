"""Test data for the api tests: devices with private details, readings, and the hourly rollup
built from readings with plain SQL (independent of the ingest package's rollup code)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.security import pseudonym
from sqlalchemy.engine import Connection

SECRET = "test-secret"


def add_device(conn: Connection, uid: str, *, kind: str = "fixed", lat: float | None = None,
               lon: float | None = None, consent: bool = True, status: str = "reliable",
               name: str | None = None, dev_eui: str | None = None, owner_email: str | None = None,
               owner_name: str | None = None, privacy_zones: list[dict[str, float]] | None = None,
               h3_cell: str | None = None, sensor_models: list[str] | None = None,
               publication: str = "approved") -> tuple[int, str]:
    """A device row; established (approved by an operator) unless `publication` says otherwise."""
    pseudo = pseudonym(SECRET, uid)
    device_id = conn.execute(sa.insert(tables.devices).values(
        uid=uid, pseudonym=pseudo, name=name or f"name of {uid}", kind=kind, transport="lorawan",
        dev_eui=dev_eui, lat=lat, lon=lon, h3_cell=h3_cell, owner_email=owner_email, owner_name=owner_name,
        consent_public=consent, status=status, privacy_zones=privacy_zones,
        sensor_models=sensor_models or ["SDS011"], publication=publication,
    ).returning(tables.devices.c.id)).scalar_one()
    return device_id, pseudo


def add_readings(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        conn.execute(sa.insert(tables.readings), rows)


def reading(device_id: int, time: datetime, quantity: int, value: float, flags: int = 0,
            lat: float | None = None, lon: float | None = None) -> dict[str, Any]:
    return {"device_id": device_id, "time": time, "quantity": quantity, "value": value, "flags": flags,
            "lat": lat, "lon": lon}


BUILD_HOURLY = sa.text("""
insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, n_flagged, flags_any)
select device_id, quantity, date_trunc('hour', time at time zone 'UTC') at time zone 'UTC',
       count(*) filter (where flags = 0),
       coalesce(sum(value) filter (where flags = 0), 0),
       coalesce(sum(value * value) filter (where flags = 0), 0),
       min(value) filter (where flags = 0), max(value) filter (where flags = 0),
       avg(value) filter (where flags = 0),
       count(*) filter (where flags <> 0), bit_or(flags)
from readings group by 1, 2, 3
on conflict (device_id, quantity, hour) do update set
  n = excluded.n, sum = excluded.sum, sum_sq = excluded.sum_sq, min = excluded.min, max = excluded.max,
  mean = excluded.mean, n_flagged = excluded.n_flagged, flags_any = excluded.flags_any
""")


def build_hourly(conn: Connection) -> None:
    conn.execute(BUILD_HOURLY)


def refresh_mobile(conn: Connection, settings: Any = None) -> Any:
    """The mobile rollup over the seeded readings, run as if 15 minutes later (seeded readings were
    just received: every trip is closed by then)."""
    from datetime import UTC, timedelta

    from civicair.core.settings import Settings
    from civicair.readmodel.mobile_rollup import refresh

    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    return refresh(conn, settings, now=datetime.now(UTC) + timedelta(minutes=15))
