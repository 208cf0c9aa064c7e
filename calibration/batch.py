"""The whole per-window computation for many devices at once (pure): fit, calibrate, metrics,
flags, stars, status. The service loads grids from the database and calls `assess`; the
benchmark calls it on synthetic grids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from civicair.calibration.fit import BatchFit, fit_huber
from civicair.calibration.flags import FlagResult, FlagRules, detect_flags
from civicair.calibration.metrics import expanded_uncertainty, performance_metrics, sensor_class
from civicair.calibration.reliability import ReliabilityRules, classify
from civicair.calibration.stars import current_stars, daily_stars


@dataclass
class Assessment:
    fit: BatchFit
    calibrated: np.ndarray
    metrics: dict[str, np.ndarray]  # calibrated vs reference, per device
    uncertainty_pct: np.ndarray
    sensor_class: np.ndarray
    flags: FlagResult
    daily_stars: np.ndarray
    stars: np.ndarray
    status: np.ndarray
    reasons: list[list[str]]


def fault_hours(flags: FlagResult) -> np.ndarray:
    """Hours excluded from performance metrics: spikes, out-of-range and stuck values (these
    three detectors always run)."""
    return flags.masks["spike"] | flags.masks["out_of_range"] | flags.masks["stuck"]


def assess(
    raw: np.ndarray,
    ref: np.ndarray,
    rh: np.ndarray | None = None,
    *,
    quantity: str = "pm25",
    min_pairs: int = 72,
    flag_rules: FlagRules = FlagRules(),
    reliability_rules: ReliabilityRules = ReliabilityRules(),
    env_low: np.ndarray | None = None,
    env_high: np.ndarray | None = None,
    clock_counts: np.ndarray | None = None,
    limit_value: float = 25.0,
) -> Assessment:
    """`ref` is the co-located station on the same grid (NaN where none)."""
    use_rh = quantity.startswith("pm")
    fit = fit_huber(raw, ref, rh if use_rh else None, use_rh=use_rh, min_pairs=min_pairs)
    calibrated = fit.apply(raw, rh if use_rh else None)
    flags = detect_flags(raw, rules=flag_rules, rh=rh if use_rh else None, ref=ref,
                         env_low=env_low, env_high=env_high, clock_counts=clock_counts,
                         calibrated=calibrated)
    # performance is judged on the hours not flagged as sensor faults (spikes, out of range, stuck)
    judged = np.where(fault_hours(flags), np.nan, calibrated)
    metrics = performance_metrics(judged, ref)
    unc = expanded_uncertainty(judged, ref, limit_value)
    cls = sensor_class(unc, quantity)
    daily = daily_stars(calibrated, ref)
    stars = current_stars(daily)
    status, reasons = classify(np.isfinite(raw).sum(axis=1), flags.counts(), total_hours=raw.shape[1],
                               r2=metrics["r2"], stars=stars, rules=reliability_rules)
    return Assessment(fit, calibrated, metrics, unc, cls, flags, daily, stars, status, reasons)
