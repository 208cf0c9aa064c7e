"""Hourly means with the coverage rule, and pairing of sensor and reference hours (docs/calibration.md#hourly-coverage-rule).

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


@dataclass(frozen=True)
class Pairs:
    hours: np.ndarray
    raw: np.ndarray
    ref: np.ndarray
    rh: np.ndarray  # NaN where no RH was available
    expected_hours: int  # hours in the window (for completeness)


def pair_hourly(
    sensor: HourlySeries,
    reference: HourlySeries,
    rh: HourlySeries | None = None,
    *,
    min_coverage: float = 0.75,
) -> Pairs:
    """Hours where both sensor and reference meet the coverage rule (RH joined when present)."""
    s = sensor.valid(min_coverage)
    r = reference.valid(min_coverage)
    hours, si, ri = np.intersect1d(s.hours, r.hours, assume_unique=True, return_indices=True)
    rh_values = np.full(hours.size, np.nan)
    if rh is not None and rh.hours.size:
        rv = rh.valid(min_coverage)
        _, hi, rhi = np.intersect1d(hours, rv.hours, assume_unique=True, return_indices=True)
        rh_values[hi] = rv.mean[rhi]
    span = [x for x in (sensor.hours, reference.hours) if x.size]
    expected = int(max(a.max() for a in span) - min(a.min() for a in span) + 1) if span else 0
    return Pairs(hours, s.mean[si], r.mean[ri], rh_values, expected)
