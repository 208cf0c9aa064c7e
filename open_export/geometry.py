"""GeoJSON geometry of an export row, from the dataset's `geometry` declaration. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from civicair.readmodel.anonymise import cell_polygon

Geometry = dict[str, Any]


def geometry_resolver(spec: str | None, zone_geometries: Mapping[str, Geometry | None] | None = None
                      ) -> Callable[[Mapping[str, Any]], Geometry | None]:
    """A function row → GeoJSON geometry (or None). `spec`: "h3_cell", "zone_id" (looked up in
    `zone_geometries`, which the caller provides, loaded or loading on demand) or
    "point:<lat column>:<lon column>"."""
    if spec == "h3_cell":
        return lambda row: cell_polygon(row["h3_cell"]) if row.get("h3_cell") else None
    if spec == "zone_id":
        geometries = zone_geometries if zone_geometries is not None else {}

        def zone(row: Mapping[str, Any]) -> Geometry | None:
            try:  # a mapping may load what it lacks (`__missing__`)
                return geometries[row["zone_id"]] if row.get("zone_id") else None
            except KeyError:
                return None

        return zone
    if spec and spec.startswith("point:"):
        _, lat, lon = spec.split(":")

        def point(row: Mapping[str, Any]) -> Geometry | None:
            if row.get(lat) is None or row.get(lon) is None:
                return None
            return {"type": "Point", "coordinates": [row[lon], row[lat]]}

        return point
    return lambda row: None
