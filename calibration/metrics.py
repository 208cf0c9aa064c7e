"""Performance metrics (US-EPA 2021 PM2.5 targets) and expanded uncertainty (EU Guide to the
Demonstration of Equivalence, orthogonal regression, as CEN/TS 17660-1 uses it) → sensor class.

Every function accepts 1-D arrays (one device) or (devices × hours) grids with NaN for missing
hours and works along the last axis. The regression is sensor (y) on reference (x), as EPA does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPA_TARGETS = {
    "r2": (">=", 0.70),
    "slope": ("within", (0.65, 1.35)),
    "intercept": ("within", (-5.0, 5.0)),
    "rmse_or_nrmse": ("rmse <= 7 or nrmse <= 30", (7.0, 30.0)),
    "completeness": (">=", 0.75),
}
# Limit values (µg/m³) at which the relative uncertainty is stated (EU Directive 2008/50/EC).
LIMIT_VALUES = {"pm25": 25.0, "pm10": 50.0, "no2": 200.0, "o3": 120.0}
CLASS_THRESHOLDS = {"pm": (50.0, 100.0), "no2": (25.0, 75.0), "o3": (30.0, 75.0)}


def _pairs(sensor, ref):
    y = np.atleast_1d(np.asarray(sensor, float))
    x = np.atleast_1d(np.asarray(ref, float))
    ok = np.isfinite(y) & np.isfinite(x)
    return np.where(ok, x, 0.0), np.where(ok, y, 0.0), ok


def performance_metrics(sensor, ref, expected=None) -> dict[str, Any]:
    """r2, slope, intercept (sensor = intercept + slope·ref), rmse, nrmse (% of mean ref), mae,
    completeness (pairs / expected hours), n. Scalars for 1-D input, arrays for grids."""
    x, y, ok = _pairs(sensor, ref)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        mx = x.sum(axis=-1) / nn
        my = y.sum(axis=-1) / nn
        dx = np.where(ok, x - mx[..., None], 0.0)
        dy = np.where(ok, y - my[..., None], 0.0)
        sxx = (dx * dx).sum(axis=-1)
        syy = (dy * dy).sum(axis=-1)
        sxy = (dx * dy).sum(axis=-1)
        slope = sxy / sxx
        intercept = my - slope * mx
        r2 = sxy**2 / (sxx * syy)
        err = np.where(ok, y - x, 0.0)
        rmse = np.sqrt((err**2).sum(axis=-1) / nn)
        mae = np.abs(err).sum(axis=-1) / nn
        nrmse = 100.0 * rmse / mx
        total = ok.shape[-1] if expected is None else np.asarray(expected, float)
        completeness = n / np.where(np.asarray(total) > 0, total, np.nan)
    out = {"r2": r2, "slope": slope, "intercept": intercept, "rmse": rmse, "nrmse": nrmse,
           "mae": mae, "completeness": completeness, "n": n}
    if np.ndim(n) == 0:
        return {k: (int(v) if k == "n" else _f(v)) for k, v in out.items()}
    return out


def _f(v) -> float | None:
    v = float(v)
    return None if not np.isfinite(v) else v


def epa_target_results(m: dict) -> dict[str, bool]:
    """Which US-EPA 2021 targets a (scalar) metrics dict meets."""

    def ok(v, test):
        return v is not None and test(v)

    return {
        "r2": ok(m["r2"], lambda v: v >= 0.70),
        "slope": ok(m["slope"], lambda v: abs(v - 1) <= 0.35),
        "intercept": ok(m["intercept"], lambda v: abs(v) <= 5.0),
        "rmse_or_nrmse": ok(m["rmse"], lambda v: v <= 7.0) or ok(m["nrmse"], lambda v: v <= 30.0),
        "completeness": ok(m["completeness"], lambda v: v >= 0.75),
    }


def orthogonal_regression(sensor, ref):
    """Orthogonal (Deming, λ = 1) regression of sensor on reference → (intercept, slope)."""
    x, y, ok = _pairs(sensor, ref)
    n = np.where(ok.sum(axis=-1) > 0, ok.sum(axis=-1), np.nan)
    mx = x.sum(axis=-1) / n
    my = y.sum(axis=-1) / n
    dx = np.where(ok, x - mx[..., None], 0.0)
    dy = np.where(ok, y - my[..., None], 0.0)
    sxx, syy, sxy = (dx * dx).sum(-1), (dy * dy).sum(-1), (dx * dy).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy**2)) / (2 * sxy)
    return my - slope * mx, slope


def expanded_uncertainty(sensor, ref, limit_value: float, u_ref: float = 0.0):
    """Expanded relative uncertainty (%) at `limit_value`, k = 2 (GDE 2010 §9.5.3):
    u² = RSS/(n−2) − u²(ref) + (a + (b−1)·LV)², W = 2·u / LV · 100."""
    x, y, ok = _pairs(sensor, ref)
    a, b = orthogonal_regression(sensor, ref)
    n = ok.sum(axis=-1)
    resid = np.where(ok, y - a[..., None] - b[..., None] * x, 0.0) if np.ndim(a) else \
        np.where(ok, y - a - b * x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rss = (resid**2).sum(axis=-1)
        u2 = rss / (n - 2) - u_ref**2 + (a + (b - 1) * limit_value) ** 2
        w = 200.0 * np.sqrt(np.maximum(u2, 0.0)) / limit_value
    w = np.where(n > 2, w, np.nan)
    return float(w) if np.ndim(w) == 0 else w


def sensor_class(uncertainty_pct, quantity: str):
    """CEN/TS 17660-1 class: 1 (≤ 50 % PM, ≤ 25 % NO2), 2 (≤ 100 % PM, ≤ 75 % NO2), else 3."""
    family = "pm" if quantity.startswith("pm") else quantity
    c1, c2 = CLASS_THRESHOLDS.get(family, CLASS_THRESHOLDS["pm"])
    u = np.asarray(uncertainty_pct, float)
    cls = np.where(u <= c1, 1, np.where(u <= c2, 2, 3))
    cls = np.where(np.isfinite(u), cls, 0)  # 0: not classifiable
    return int(cls) if cls.ndim == 0 else cls
