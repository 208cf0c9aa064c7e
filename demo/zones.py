"""The demo's example zones: five Strasbourg-area communes as rectangles (demo/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from civicair.core import tables
from civicair.readmodel.zones import load_zone_file, refresh_device_zones, upsert_zones
from sqlalchemy.engine import Connection

EXAMPLE_ZONES = Path(__file__).parent / "data" / "strasbourg_example_zones.geojson"


def import_example_zones(conn: Connection) -> int:
    """The example zones, imported only into a database that has no zone yet; returns how many
    were imported."""
    if conn.execute(sa.select(sa.func.count()).select_from(tables.zones)).scalar_one():
        return 0
    n = upsert_zones(conn, load_zone_file(EXAMPLE_ZONES))
    refresh_device_zones(conn)
    return n
