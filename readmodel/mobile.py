"""Mobile (bike) cells (docs/privacy.md#mobile-devices): (H3 cell, hour) means of
privacy-filtered mobile points, published only with at least k distinct devices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from civicair.core.settings import Settings
from civicair.readmodel import anonymise, statements
from civicair.readmodel.params import QuantityFilter, TimeRange, quantity_info
from sqlalchemy.engine import Connection


def mobile_cells(conn: Connection, settings: Settings, quantity: str | QuantityFilter,
                 time_range: TimeRange) -> list[dict[str, Any]]:
    """(H3 cell, hour) means of privacy-filtered mobile points, ≥ k distinct devices each."""
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    devices = {row.id: anonymise.parse_privacy_zones(row.privacy_zones)
               for row in conn.execute(statements.public_mobile_devices())}
    if not devices:
        return []
    # Trips need every position of the device (any quantity), so buffers are computed on all
    # located readings in the range, then applied to this quantity's values.
    points = [anonymise.Point(row.device_id, row.time, row.lat, row.lon,
                              row.value if (row.quantity == info.code and row.flags == 0) else None)
              for row in conn.execute(statements.located_readings(list(devices), start, end))]
    kept = anonymise.filter_mobile_points(points, devices)
    cells = anonymise.aggregate_cells(kept, settings.h3_resolution)
    published = anonymise.suppress_small_cells(cells, settings.k_anonymity)
    return [
        {"h3_cell": c.cell, "period": {"datetime_from": c.hour, "datetime_to": c.hour + timedelta(hours=1),
                                       "interval": "hour"},
         "value": c.mean, "unit": info.unit, "n_devices": c.n_devices, "n_readings": c.n,
         "summary": {"min": c.min, "max": c.max, "mean": c.mean},
         "coordinates": dict(zip(("latitude", "longitude"), anonymise.cell_centre(c.cell), strict=True))}
        for c in published
    ]
