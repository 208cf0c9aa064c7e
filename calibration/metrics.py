"""How calibrated values compare with the reference (docs/calibration.md#performance-metrics):
the US-EPA 2021 performance metrics, and the expanded uncertainty of the EU Guide to the
Demonstration of Equivalence (orthogonal regression, as CEN/TS 17660-1 uses it) → sensor class.

Every function works along the last axis of (devices × hours) grids with NaN for missing hours;
a 1-D input is one device. The regression is sensor (y) on reference (x), as the EPA states it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from civicair.calibration.grids import Floats, Ints

# Limit values (µg/m³) at which the relative uncertainty is stated (EU Directive 2008/50/EC).
LIMIT_VALUES = {"pm25": 25.0, "pm10": 50.0, "no2": 200.0, "o3": 120.0}
CLASS_THRESHOLDS = {"pm": (50.0, 100.0), "no2": (25.0, 75.0), "o3": (30.0, 75.0)}
EPA_TARGET_TEXT = {"r2": "R² ≥ 0.70", "slope": "slope 1 ± 0.35", "intercept": "|intercept| ≤ 5 µg/m³",
                   "rmse_or_nrmse": "RMSE ≤ 7 µg/m³ or NRMSE ≤ 30 %", "completeness": "completeness ≥ 75 %"}
METRIC_NAMES = ("r2", "slope", "intercept", "rmse", "nrmse", "mae", "completeness", "n")


def _pairs(sensor: Floats, ref: Floats) -> tuple[Floats, Floats, np.ndarray]:
    y = np.atleast_1d(np.asarray(sensor, np.float64))
    x = np.atleast_1d(np.asarray(ref, np.float64))
    ok = np.isfinite(y) & np.isfinite(x)
    return np.where(ok, x, 0.0), np.where(ok, y, 0.0), ok


def performance_metrics(sensor: Floats, ref: Floats, expected: Floats | float | None = None) -> dict[str, Floats]:
    """r2, slope, intercept (sensor = intercept + slope·ref), rmse, nrmse (% of the mean
    reference), mae, completeness (pairs / expected hours, default: the grid's hours), n."""
    x, y, ok = _pairs(sensor, ref)
    n = ok.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        mx = x.sum(axis=-1) / nn
        my = y.sum(axis=-1) / nn
        dx = np.where(ok, x - mx[..., None], 0.0)
        dy = np.where(ok, y - my[..., None], 0.0)
        sxx, syy, sxy = (dx * dx).sum(axis=-1), (dy * dy).sum(axis=-1), (dx * dy).sum(axis=-1)
        slope = sxy / sxx
        err = np.where(ok, y - x, 0.0)
        rmse = np.sqrt((err**2).sum(axis=-1) / nn)
        total = float(ok.shape[-1]) if expected is None else np.asarray(expected, np.float64)
        completeness = n / np.where(np.asarray(total) > 0, total, np.nan)
        return {"r2": sxy**2 / (sxx * syy), "slope": slope, "intercept": my - slope * mx, "rmse": rmse,
                "nrmse": 100.0 * rmse / mx, "mae": np.abs(err).sum(axis=-1) / nn,
                "completeness": np.asarray(completeness, np.float64), "n": n}


def metrics_of(m: Mapping[str, Floats], i: int | None = None) -> dict[str, float | None]:
    """One device's metrics as plain numbers (None where undefined); i = None for 1-D input."""
    out: dict[str, float | None] = {}
    for k, v in m.items():
        x = float(v if i is None else np.atleast_1d(v)[i])
        out[k] = (int(x) if k == "n" else x) if np.isfinite(x) else None
    return out


def epa_target_results(m: Mapping[str, float | None]) -> dict[str, bool]:
    """Which US-EPA 2021 targets one device's metrics meet (a missing metric meets nothing)."""

    def value(key: str) -> float | None:
        return m.get(key)

    def at_least(key: str, bound: float) -> bool:
        v = value(key)
        return v is not None and v >= bound

    def within(key: str, centre: float, half: float) -> bool:
        v = value(key)
        return v is not None and abs(v - centre) <= half

    rmse, nrmse = value("rmse"), value("nrmse")
    return {"r2": at_least("r2", 0.70), "slope": within("slope", 1.0, 0.35), "intercept": within("intercept", 0.0, 5.0),
            "rmse_or_nrmse": (rmse is not None and rmse <= 7.0) or (nrmse is not None and nrmse <= 30.0),
            "completeness": at_least("completeness", 0.75)}


def orthogonal_regression(sensor: Floats, ref: Floats) -> tuple[Floats, Floats]:
    """Orthogonal (Deming, λ = 1) regression of sensor on reference → (intercept, slope)."""
    x, y, ok = _pairs(sensor, ref)
    cnt = ok.sum(axis=-1)
    n = np.where(cnt > 0, cnt, np.nan)
    mx, my = x.sum(axis=-1) / n, y.sum(axis=-1) / n
    dx = np.where(ok, x - mx[..., None], 0.0)
    dy = np.where(ok, y - my[..., None], 0.0)
    sxx, syy, sxy = (dx * dx).sum(-1), (dy * dy).sum(-1), (dx * dy).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy**2)) / (2 * sxy)
    intercept: Floats = np.asarray(my - slope * mx, np.float64)
    return intercept, np.asarray(slope, np.float64)


def expanded_uncertainty(sensor: Floats, ref: Floats, limit_value: float, u_ref: float = 0.0) -> Floats:
    """Expanded relative uncertainty (%) at `limit_value`, k = 2 (GDE 2010):
    u² = RSS/(n−2) − u²(ref) + (a + (b−1)·LV)², W = 2·u / LV · 100; NaN with fewer than 3 pairs."""
    x, y, ok = _pairs(sensor, ref)
    a, b = orthogonal_regression(sensor, ref)
    n = ok.sum(axis=-1)
    resid = np.where(ok, y - a[..., None] - b[..., None] * x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        u2 = (resid**2).sum(axis=-1) / (n - 2) - u_ref**2 + (a + (b - 1) * limit_value) ** 2
        w = 200.0 * np.sqrt(np.maximum(u2, 0.0)) / limit_value
    out: Floats = np.asarray(np.where(n > 2, w, np.nan), np.float64)
    return out


def sensor_class(uncertainty_pct: Floats, quantity: str) -> Ints:
    """CEN/TS 17660 class: 1 (≤ 50 % PM, ≤ 25 % NO2, ≤ 30 % O3), 2 (≤ 100 % PM, ≤ 75 % gases),
    else 3; 0 where the uncertainty is undefined (not classifiable)."""
    family = "pm" if quantity.startswith("pm") else quantity
    c1, c2 = CLASS_THRESHOLDS.get(family, CLASS_THRESHOLDS["pm"])
    u = np.asarray(uncertainty_pct, np.float64)
    cls = np.where(u <= c1, 1, np.where(u <= c2, 2, 3))
    out: Ints = np.asarray(np.where(np.isfinite(u), cls, 0), np.int64)
    return out
