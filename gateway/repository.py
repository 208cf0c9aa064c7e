"""SQL of the gateway package: quarantine rows and MQTT credentials of devices."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.engine import Connection, Row

q = tables.quarantine
dev = tables.devices


def list_quarantine(conn: Connection, *, include_replayed: bool = False, limit: int = 100) -> list[Row]:
    stmt = sa.select(q.c.id, q.c.received_at, q.c.source, q.c.topic, q.c.ref_scheme, q.c.ref_value,
                     q.c.device_id, q.c.replayed_at, sa.func.length(q.c.payload).label("size"))
    if not include_replayed:
        stmt = stmt.where(q.c.replayed_at.is_(None))
    return list(conn.execute(stmt.order_by(q.c.id).limit(limit)))


def quarantine_row(conn: Connection, row_id: int) -> Row | None:
    return conn.execute(sa.select(q).where(q.c.id == row_id)).first()


def device_by_uid(conn: Connection, uid: str) -> Row | None:
    return conn.execute(sa.select(dev).where(dev.c.uid == uid)).first()


def attach(conn: Connection, row_id: int, device_id: int) -> None:
    conn.execute(sa.update(q).where(q.c.id == row_id).values(device_id=device_id))


def set_device_ref(conn: Connection, device_id: int, column: str, value: str) -> None:
    conn.execute(sa.update(dev).where(dev.c.id == device_id).values({column: value}))


def attached_unreplayed(conn: Connection) -> list[Row]:
    return list(conn.execute(
        sa.select(q, dev.c.uid).join(dev, dev.c.id == q.c.device_id)
        .where(q.c.replayed_at.is_(None)).order_by(q.c.id)
    ))


def mark_replayed(conn: Connection, row_ids: list[int], at: datetime) -> None:
    conn.execute(sa.update(q).where(q.c.id.in_(row_ids)).values(replayed_at=at))


def mqtt_accounts(conn: Connection) -> list[Row]:
    return list(conn.execute(
        sa.select(dev.c.uid, dev.c.mqtt_username, dev.c.mqtt_password_hash)
        .where(dev.c.mqtt_username.isnot(None), dev.c.mqtt_password_hash.isnot(None))
        .order_by(dev.c.mqtt_username)
    ))


def mqtt_account(conn: Connection, username: str) -> Row | None:
    """The device logging in to the embedded broker with this MQTT username."""
    return conn.execute(sa.select(dev.c.uid, dev.c.mqtt_password_hash).where(dev.c.mqtt_username == username)).first()
