"""SQL of the push endpoints (read side; the writes go through `ingest.writer.store_batch`)."""

from __future__ import annotations

import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.engine import Connection


def device_id_by_chip(conn: Connection, chip_id: str) -> int | None:
    return conn.execute(
        sa.select(tables.devices.c.id).where(tables.devices.c.chip_id == chip_id)
    ).scalar_one_or_none()
