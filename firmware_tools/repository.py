"""All SQL of firmware_tools. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.engine import Connection, Row

d = tables.devices


def insert_device(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(sa.insert(d).values(**values).returning(d.c.id)).scalar_one())


def device_by_uid(conn: Connection, uid: str) -> Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.uid == uid)).first()


def device_by_id(conn: Connection, device_id: int) -> Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.id == device_id)).first()


def uid_with_dev_eui(conn: Connection, dev_eui: str) -> str | None:
    return conn.execute(sa.select(d.c.uid).where(d.c.dev_eui == dev_eui)).scalar()


def uid_with_chip_id(conn: Connection, chip_id: str) -> str | None:
    return conn.execute(sa.select(d.c.uid).where(d.c.chip_id == chip_id)).scalar()


def update_device(conn: Connection, device_id: int, values: dict[str, Any]) -> None:
    conn.execute(sa.update(d).where(d.c.id == device_id).values(**values))


def readings_count_since(conn: Connection, device_id: int, since: datetime) -> int:
    r = tables.readings
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(r)
        .where(r.c.device_id == device_id, r.c.received_at >= since)
    ).scalar_one())


def latest_readings(conn: Connection, device_id: int, since: datetime, limit: int = 20) -> list[Any]:
    r = tables.readings
    return list(conn.execute(
        sa.select(r.c.time, r.c.quantity, r.c.value, r.c.flags, r.c.received_at)
        .where(r.c.device_id == device_id, r.c.received_at >= since)
        .order_by(r.c.received_at.desc(), r.c.quantity).limit(limit)
    ).all())


def recent_flags(conn: Connection, device_id: int, limit: int = 20) -> list[Any]:
    f = tables.device_flags
    return list(conn.execute(
        sa.select(f.c.flag, f.c.quantity, f.c.period_start, f.c.period_end)
        .where(f.c.device_id == device_id).order_by(f.c.period_end.desc()).limit(limit)
    ).all())


def active_calibrations(conn: Connection, device_id: int) -> list[Any]:
    c = tables.calibrations
    return list(conn.execute(
        sa.select(c.c.quantity, c.c.method, c.c.fitted_at, c.c.n_pairs, c.c.sensor_class,
                  c.c.uncertainty_pct, c.c.station_code)
        .where(c.c.device_id == device_id, c.c.active.is_(True)).order_by(c.c.quantity)
    ).all())


def quarantined_since(conn: Connection, since: datetime, limit: int = 50) -> list[Any]:
    q = tables.quarantine
    return list(conn.execute(
        sa.select(q.c.id, q.c.received_at, q.c.source, q.c.topic, q.c.ref_scheme, q.c.ref_value, q.c.payload)
        .where(q.c.received_at >= since).order_by(q.c.received_at.desc()).limit(limit)
    ).all())


def dead_letters_since(conn: Connection, since: datetime, limit: int = 50) -> list[Any]:
    dl = tables.dead_letters
    return list(conn.execute(
        sa.select(dl.c.id, dl.c.received_at, dl.c.source, dl.c.topic, dl.c.error, dl.c.payload)
        .where(dl.c.received_at >= since).order_by(dl.c.received_at.desc()).limit(limit)
    ).all())


def latest_battery(conn: Connection, device_id: int) -> Any:
    """The device's last status report (ChirpStack event/status) and its last battery voltage
    from an uplink's payload, newest first."""
    b = tables.battery_reports
    return conn.execute(
        sa.select(b.c.time, b.c.level_pct, b.c.external_power, b.c.margin_db)
        .where(b.c.device_id == device_id).order_by(b.c.time.desc()).limit(1)
    ).first()


def erase_device(conn: Connection, device_id: int, refs: Iterable[str], topic_part: str) -> dict[str, int]:
    """Delete every row keyed by this device in every table that has a `device_id` column
    (readings, uplinks, hourly, calibrations, flags, status history, …), the quarantined and
    dead-lettered raw messages that name it, then the device row itself (all personal fields)."""
    counts: dict[str, int] = {}
    refs = [r for r in refs if r]
    for table in tables.metadata.sorted_tables:
        if "device_id" in table.c and table.name != "quarantine":
            counts[table.name] = conn.execute(sa.delete(table).where(table.c.device_id == device_id)).rowcount
    q = tables.quarantine
    counts["quarantine"] = conn.execute(
        sa.delete(q).where(sa.or_(q.c.device_id == device_id, q.c.ref_value.in_(refs)))
    ).rowcount
    dl = tables.dead_letters
    counts["dead_letters"] = conn.execute(
        sa.delete(dl).where(dl.c.topic.contains(topic_part, autoescape=True))
    ).rowcount
    counts["devices"] = conn.execute(sa.delete(d).where(d.c.id == device_id)).rowcount
    return counts
