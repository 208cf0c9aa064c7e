"""Plausibility stars (1–5) per device and day, as the Dutch Samenmeten portal shows them:
agreement of the (calibrated) hourly values with the nearest reference station and with the
median of neighbouring sensors of the same type. Vectorised over (devices × hours) grids."""

from __future__ import annotations

import numpy as np
from civicair.calibration import nanstats

# Upper bounds of the daily median relative deviation for 5, 4, 3, 2 stars (else 1).
STAR_BOUNDS = (0.15, 0.25, 0.40, 0.60)
ABS_FLOOR = 3.0  # µg/m³: deviations below this count as perfect agreement at low levels
MIN_HOURS = 6


def daily_stars(values: np.ndarray, comparison: np.ndarray, *, abs_floor: float = ABS_FLOOR) -> np.ndarray:
    """(devices × days) stars, 0 where a day has fewer than MIN_HOURS comparable hours.
    `comparison` is the station value, or the neighbours' median where there is no station."""
    d, h = values.shape
    days = -(-h // 24)
    pad = days * 24 - h
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(values - comparison)
        rel = np.where(dev <= abs_floor, 0.0, dev / np.maximum(np.abs(comparison), abs_floor))
    rel = np.pad(rel, ((0, 0), (0, pad)), constant_values=np.nan).reshape(d, days, 24)
    n = np.isfinite(rel).sum(axis=2)
    med = nanstats.nanmedian(rel, axis=2)
    stars = 5 - np.searchsorted(np.asarray(STAR_BOUNDS), np.nan_to_num(med, nan=np.inf), side="left")
    stars = np.clip(stars, 1, 5)
    return np.where(n >= MIN_HOURS, stars, 0).astype(np.int8)


def comparison_series(station: np.ndarray | None, neighbours_median: np.ndarray | None) -> np.ndarray:
    """Station where it has a value, else the neighbours' median."""
    if station is None and neighbours_median is None:
        raise ValueError("need a station or neighbours to compare with")
    if station is None:
        return neighbours_median  # type: ignore[return-value]
    if neighbours_median is None:
        return station
    return np.where(np.isfinite(station), station, neighbours_median)


def current_stars(daily: np.ndarray) -> np.ndarray:
    """The latest rated day's stars per device (0 when no day was rated)."""
    rated = daily > 0
    last = np.where(rated.any(axis=1), daily.shape[1] - 1 - np.argmax(rated[:, ::-1], axis=1), -1)
    return np.where(last >= 0, daily[np.arange(daily.shape[0]), np.maximum(last, 0)], 0).astype(np.int8)
