"""Administrative zones: import from GeoJSON into `zones`, and the device → zone mapping
(`device_zones`) computed from each fixed device's exact position (which stays private)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.errors import InvalidInput
from civicair.readmodel.anonymise import point_in_polygon
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

ID_KEYS = ("id", "code", "insee", "code_insee", "INSEE_COM", "codgeo")
NAME_KEYS = ("name", "nom", "NOM", "NOM_COM", "libgeo")


def parse_zones(doc: Any) -> list[dict[str, Any]]:
    """A GeoJSON FeatureCollection → zone rows; raises InvalidInput naming the bad feature."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InvalidInput("not a GeoJSON FeatureCollection")
    rows: dict[str, dict[str, Any]] = {}
    for i, feature in enumerate(doc["features"]):
        props = (feature or {}).get("properties") or {}
        geometry = (feature or {}).get("geometry") or {}
        zone_id = feature.get("id") if isinstance(feature, dict) and feature.get("id") is not None else None
        zone_id = zone_id if zone_id is not None else next((props[k] for k in ID_KEYS if props.get(k)), None)
        name = next((props[k] for k in NAME_KEYS if props.get(k)), None)
        if zone_id is None or name is None:
            raise InvalidInput(f"feature {i}: needs an id (feature id or one of {ID_KEYS}) and a name ({NAME_KEYS})")
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise InvalidInput(f"feature {i} ({zone_id}): geometry must be a Polygon or MultiPolygon")
        rows[str(zone_id)] = {"id": str(zone_id), "name": str(name), "kind": "admin", "geometry": geometry,
                              "properties": props}
    return list(rows.values())


def load_zone_file(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_zones(doc)


def upsert_zones(conn: Connection, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    stmt = insert(tables.zones).values(rows)
    conn.execute(stmt.on_conflict_do_update(index_elements=[tables.zones.c.id], set_={
        "name": stmt.excluded.name, "kind": stmt.excluded.kind, "geometry": stmt.excluded.geometry,
        "properties": stmt.excluded.properties}))
    return len(rows)


def refresh_device_zones(conn: Connection) -> int:
    """Recompute which admin zone each located fixed device lies in; returns the mapping count."""
    z, d, dz = tables.zones, tables.devices, tables.device_zones
    zones = conn.execute(sa.select(z.c.id, z.c.geometry).where(z.c.kind == "admin")).all()
    devices = conn.execute(sa.select(d.c.id, d.c.lat, d.c.lon)
                           .where(d.c.kind == "fixed", d.c.lat.isnot(None), d.c.lon.isnot(None))).all()
    pairs = [{"device_id": dev.id, "zone_id": zone.id} for dev in devices for zone in zones
             if zone.geometry and point_in_polygon(dev.lat, dev.lon, zone.geometry)]
    conn.execute(sa.delete(dz))
    if pairs:
        conn.execute(sa.insert(dz), pairs)
    return len(pairs)
