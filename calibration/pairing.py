"""Hourly means of sub-hourly samples with the coverage rule of campaigns (docs/calibration.md#hourly-coverage-rule).

Pure: numpy arrays in, numpy arrays out. Times are ``datetime64`` (UTC, no offset) or integer
epoch hours; an hour is ``[h, h+1)``. A mean is kept only when the hour holds at least
``min_coverage`` of the readings the device's sampling interval promises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOUR_S = 3600


@dataclass(frozen=True)
class HourlySeries:
    hours: np.ndarray  # int64 epoch hours, sorted, unique
    mean: np.ndarray  # float64
    count: np.ndarray  # int64 readings in the hour
    coverage: np.ndarray  # float64, count / expected (capped at 1)

    def valid(self, min_coverage: float) -> HourlySeries:
        keep = self.coverage >= min_coverage
        return HourlySeries(self.hours[keep], self.mean[keep], self.count[keep], self.coverage[keep])


def epoch_seconds(times: np.ndarray) -> np.ndarray:
    """datetime64 (any unit) or numbers (seconds) → int64 epoch seconds."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype("datetime64[s]").astype(np.int64)
    return t.astype(np.int64)


def sampling_interval_s(times: np.ndarray) -> float:
    """The device's nominal interval: median gap between consecutive readings (≥ 1 s)."""
    t = np.sort(epoch_seconds(times))
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    return float(max(np.median(gaps), 1.0)) if gaps.size else float(HOUR_S)


def hourly_means(times: np.ndarray, values: np.ndarray, interval_s: float | None = None) -> HourlySeries:
    """Average sub-hourly readings into hours; NaN values are not counted."""
    t = epoch_seconds(times)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    t, v = t[ok], v[ok]
    if t.size == 0:
        empty = np.empty(0)
        return HourlySeries(empty.astype(np.int64), empty, empty.astype(np.int64), empty)
    if interval_s is None:
        interval_s = sampling_interval_s(t)
    h = t // HOUR_S
    hours, inverse, count = np.unique(h, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=v, minlength=hours.size)
    expected = max(HOUR_S / interval_s, 1.0)
    coverage = np.minimum(count / expected, 1.0)
    return HourlySeries(hours.astype(np.int64), sums / count, count.astype(np.int64), coverage)
