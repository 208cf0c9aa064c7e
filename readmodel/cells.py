"""H3 cells of the public surfaces (docs/privacy.md#fixed-devices): the public cell of a fixed
device, and the bit masks that find an H3 zone's members in SQL. Pure."""

from __future__ import annotations

import h3
from civicair.readmodel import anonymise
from civicair.readmodel.params import is_h3_cell


def public_cell(h3_cell: str | None, lat: float | None, lon: float | None, resolution: int) -> str | None:
    """The public H3 cell of a fixed device at `resolution` (never finer)."""
    if h3_cell and is_h3_cell(h3_cell):
        res = h3.get_resolution(h3_cell)
        if res == resolution:
            return h3_cell
        if res > resolution:
            return str(h3.cell_to_parent(h3_cell, resolution))
    if lat is not None and lon is not None:
        return anonymise.snap_to_cell(lat, lon, resolution)
    return None


def h3_zone_params(cell: str) -> dict[str, int | float]:
    """The parameters of `statements.h3_zone_devices` for a valid cell: its resolution, its
    index, the masks that turn a finer cell's index into its parent at that resolution (H3 bit
    layout: the resolution in bits 52–55, a digit of 3 bits per finer resolution, 7 when unused),
    and a bounding box holding the cell (with a margin; whole longitudes across the antimeridian)."""
    value, res = int(cell, 16), h3.get_resolution(cell)
    unused = (1 << 3 * (15 - res)) - 1
    keep = ~((15 << 52) | unused) & ((1 << 64) - 1)
    lats, lons = zip(*h3.cell_to_boundary(cell), strict=True)
    margin = 0.1 * max(max(lats) - min(lats), 1e-6)
    lat_lo, lat_hi = min(lats) - margin, max(lats) + margin
    # Edges are great-circle arcs: beyond the margin only near the poles, where the box then
    # reaches the pole (and takes every longitude).
    if lat_hi > 60.0:
        lat_hi = 90.0
    if lat_lo < -60.0:
        lat_lo = -90.0
    lon_lo, lon_hi = min(lons), max(lons)
    if lon_hi - lon_lo > 180 or lat_hi == 90.0 or lat_lo == -90.0:
        lon_lo, lon_hi = -180.0, 180.0
    else:
        lon_margin = 0.1 * max(lon_hi - lon_lo, 1e-6)
        lon_lo, lon_hi = lon_lo - lon_margin, lon_hi + lon_margin
    return {"res": res, "cell": value, "keep": keep - (1 << 64) if keep >= 1 << 63 else keep,
            "set": (res << 52) | unused, "lat_lo": lat_lo, "lat_hi": lat_hi, "lon_lo": lon_lo, "lon_hi": lon_hi}


def placed(cell: str, unplaced: list[list[float]] | None) -> list[int]:
    """The devices of `unplaced` (ids, lats, lons) whose coordinates fall in `cell`."""
    if not unplaced:
        return []
    res = h3.get_resolution(cell)
    return [int(i) for i, lat, lon in zip(*unplaced, strict=True) if anonymise.snap_to_cell(lat, lon, res) == cell]
