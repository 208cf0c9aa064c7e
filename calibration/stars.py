"""Plausibility stars (1–5) per device and day (docs/calibration.md#stars), as the Dutch
Samenmeten portal shows them: agreement of the published hourly values with the cross-check
station, else with the median of trusted neighbouring sensors. Fault hours (stuck, spike, out of
range) count as the worst deviation: a stuck sensor never "agrees". Pure, vectorised."""

from __future__ import annotations

import numpy as np
from civicair.calibration.grids import Bools, Floats, Int8s, Ints

# Upper bounds of the daily median relative deviation for 5, 4, 3, 2 stars (else 1).
STAR_BOUNDS = (0.15, 0.25, 0.40, 0.60)
ABS_FLOOR = 3.0  # µg/m³: deviations below this count as perfect agreement at low levels
MIN_HOURS = 6


def daily_stars(values: Floats, comparison: Floats, fault: Bools | None = None, *,
                abs_floor: float = ABS_FLOOR) -> Int8s:
    """(devices × days) stars, 0 where a day has fewer than MIN_HOURS comparable hours."""
    d, h = values.shape
    days = -(-h // 24)
    pad = days * 24 - h
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(values - comparison)
        rel = np.where(dev <= abs_floor, 0.0, dev / np.maximum(np.abs(comparison), abs_floor))
    if fault is not None:
        rel = np.where(fault & np.isfinite(comparison) & np.isfinite(values), np.inf, rel)
    grid = np.pad(rel, ((0, 0), (0, pad)), constant_values=np.nan).reshape(d, days, 24)
    finite = ~np.isnan(grid)
    n = finite.sum(axis=2)
    srt = np.sort(np.where(finite, grid, np.inf), axis=2)  # NaN-free median: inf sorts last
    lo = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[..., None], axis=2)[..., 0]
    hi = np.take_along_axis(srt, np.maximum(n // 2, 0)[..., None], axis=2)[..., 0]
    with np.errstate(invalid="ignore"):
        med = np.where(n > 0, 0.5 * (lo + hi), np.inf)
    stars = 5 - np.searchsorted(np.asarray(STAR_BOUNDS), np.nan_to_num(med, nan=np.inf), side="left")
    out: Int8s = np.where(n >= MIN_HOURS, np.clip(stars, 1, 5), 0).astype(np.int8)
    return out



def current_stars(daily: Int8s) -> Ints:
    """The latest rated day's stars per device (0 when no day was rated)."""
    rated = daily > 0
    last = np.where(rated.any(axis=1), daily.shape[1] - 1 - np.argmax(rated[:, ::-1], axis=1), -1)
    out: Ints = np.where(last >= 0, daily[np.arange(daily.shape[0]), np.maximum(last, 0)], 0).astype(np.int64)
    return out
