"""Pure maths: metric functions against hand-computed values, known-truth fits (robust vs OLS),
the EPA correction, pairing with the coverage rule, stars and status."""

from __future__ import annotations

import math

import numpy as np
import pytest
from civicair.calibration.fit import epa_correction, fit_huber, fit_ols, fit_robust_linear
from civicair.calibration.metrics import (
    epa_target_results,
    expanded_uncertainty,
    orthogonal_regression,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.pairing import hourly_means, pair_hourly
from civicair.calibration.reliability import classify
from civicair.calibration.stars import current_stars, daily_stars
from civicair.calibration.synthetic import make_network


# --- metrics, by hand ---------------------------------------------------------------------------
def test_performance_metrics_match_hand_computation() -> None:
    # sensor [1,3,2,5] vs ref [1,2,3,4]: means 2.75 / 2.5; Sxy = 5.5, Sxx = 5, Syy = 8.75
    m = performance_metrics([1, 3, 2, 5], [1, 2, 3, 4], expected=8)
    assert m["slope"] == pytest.approx(1.1)  # 5.5 / 5
    assert m["intercept"] == pytest.approx(0.0)  # 2.75 − 1.1·2.5
    assert m["r2"] == pytest.approx(5.5**2 / (5 * 8.75))  # 0.6914
    assert m["rmse"] == pytest.approx(math.sqrt(3 / 4))  # errors 0, 1, −1, 1
    assert m["mae"] == pytest.approx(0.75)
    assert m["nrmse"] == pytest.approx(100 * math.sqrt(0.75) / 2.5)
    assert m["completeness"] == pytest.approx(0.5)  # 4 of 8 expected hours
    assert m["n"] == 4


def test_metrics_ignore_missing_pairs_and_vectorise_over_devices() -> None:
    grid_s = np.array([[2, 4, 6, np.nan], [1, 3, 2, 5]], float)
    grid_r = np.array([[1, 2, 3, 10], [1, 2, 3, 4]], float)
    m = performance_metrics(grid_s, grid_r)
    assert m["slope"] == pytest.approx([2.0, 1.1])
    assert m["n"].tolist() == [3, 4]
    assert m["rmse"][0] == pytest.approx(math.sqrt(14 / 3))  # errors 1, 2, 3
    assert m["completeness"].tolist() == [0.75, 1.0]


def test_orthogonal_regression_and_uncertainty_by_hand() -> None:
    # sensor = 2·ref exactly: Sxx = 2, Syy = 8, Sxy = 4 → b = (8 − 2 + √(36 + 64)) / 8 = 2, a = 0
    a, b = orthogonal_regression([2, 4, 6], [1, 2, 3])
    assert (float(a), float(b)) == pytest.approx((0.0, 2.0))
    # RSS = 0, so u = |a + (b − 1)·LV| = LV → W = 2·LV/LV = 200 %
    assert expanded_uncertainty([2, 4, 6], [1, 2, 3], 25.0) == pytest.approx(200.0)
    # sensor = ref + 1 (bias only): b = 1, a = 1, RSS = 0 → u = 1 → W = 2·1/25 = 8 %
    assert expanded_uncertainty([2, 3, 4, 5], [1, 2, 3, 4], 25.0) == pytest.approx(8.0)
    # with scatter: residuals ±0.5 around y = x → RSS = 4·0.25 = 1 (orthogonal slope 1 by symmetry)
    w = expanded_uncertainty([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4], 25.0)
    a, b = orthogonal_regression([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4])
    rss = sum((y - a - b * x) ** 2 for x, y in zip([1, 2, 3, 4], [1.5, 1.5, 3.5, 3.5], strict=True))
    assert w == pytest.approx(200 * math.sqrt(rss / 2 + (a + (b - 1) * 25) ** 2) / 25)


def test_sensor_class_thresholds() -> None:
    assert sensor_class(50.0, "pm25") == 1
    assert sensor_class(50.1, "pm25") == 2
    assert sensor_class(100.1, "pm10") == 3
    assert sensor_class(25.0, "no2") == 1
    assert sensor_class(60.0, "no2") == 2
    assert sensor_class(80.0, "no2") == 3
    assert sensor_class(np.array([10, 70, np.nan]), "pm25").tolist() == [1, 2, 0]


def test_epa_targets() -> None:
    good = {"r2": 0.8, "slope": 1.1, "intercept": -2.0, "rmse": 9.0, "nrmse": 25.0, "completeness": 0.9}
    assert all(epa_target_results(good).values())
    bad = epa_target_results({**good, "slope": 1.4, "rmse": 8.0, "nrmse": 31.0, "r2": None})
    assert bad == {"r2": False, "slope": False, "intercept": True, "rmse_or_nrmse": False, "completeness": True}


def test_epa_correction_values() -> None:
    # 0.524·20 − 0.0862·60 + 5.75 = 10.48 − 5.172 + 5.75 = 11.058
    assert epa_correction(np.array([20.0]), np.array([60.0]))[0] == pytest.approx(11.058)
    # above 343: 0.46·400 + 3.93e-4·400² + 2.97 = 184 + 62.88 + 2.97
    assert epa_correction(np.array([400.0]), np.array([60.0]))[0] == pytest.approx(249.85)
    assert epa_correction(np.array([0.0]), np.array([99.0]))[0] == 0.0  # never negative


# --- known-truth fits ---------------------------------------------------------------------------
def test_robust_fit_recovers_truth_where_ols_does_not() -> None:
    """sensor = α + β·ref + γ·RH + noise with 10 % gross positive outliers; truth for
    ref = a + b·raw + c·RH is a = −α/β, b = 1/β, c = −γ/β. Tolerances: |Δb| ≤ 5 % of b,
    |Δa| ≤ 1 µg/m³, |Δc| ≤ 0.02."""
    net = make_network(40, 14 * 24, seed=3, outlier_share=0.10, outlier_size=60.0)
    h = fit_huber(net.raw, net.ref, net.rh, min_pairs=72)
    o = fit_ols(net.raw, net.ref, net.rh, min_pairs=72)
    err = {name: (np.abs(getattr(h, name) - truth), np.abs(getattr(o, name) - truth))
           for name, truth in (("a", net.true_a), ("b", net.true_b), ("c", net.true_c))}
    print({k: (float(v[0].max()), float(v[1].max())) for k, v in err.items()})
    assert (err["b"][0] <= 0.05 * net.true_b).all()
    assert (err["a"][0] <= 1.0).all()
    assert (err["c"][0] <= 0.02).all()
    # OLS is pulled by the outliers: its intercept misses by several µg/m³ on most devices
    assert (err["a"][1] > 1.0).mean() > 0.8
    assert np.median(err["a"][1]) > 3 * np.median(err["a"][0])


def test_single_device_fit_without_rh_and_too_few_pairs() -> None:
    ref = np.linspace(5, 50, 100)
    raw = 2 + 1.5 * ref
    m = fit_robust_linear(raw, ref)
    assert (m.a, m.b, m.c) == pytest.approx((-2 / 1.5, 1 / 1.5, 0.0), abs=1e-6)
    assert m.apply(raw) == pytest.approx(ref)
    few = fit_huber(raw[None, :10], ref[None, :10], min_pairs=72)
    assert np.isnan(few.b[0]) and few.n[0] == 10


# --- pairing ------------------------------------------------------------------------------------
def test_hourly_means_apply_the_coverage_rule() -> None:
    t0 = np.datetime64("2025-01-01T00:00:00")
    # hour 0: 12 readings every 5 min (full); hour 1: 8 of 12 (67 %); hour 2: 9 of 12 (75 %)
    times = np.concatenate([t0 + np.arange(12) * np.timedelta64(300, "s"),
                            t0 + np.timedelta64(3600, "s") + np.arange(8) * np.timedelta64(300, "s"),
                            t0 + np.timedelta64(7200, "s") + np.arange(9) * np.timedelta64(300, "s")])
    values = np.concatenate([np.full(12, 10.0), np.full(8, 20.0), np.arange(9.0)])
    s = hourly_means(times, values)
    assert s.coverage.tolist() == pytest.approx([1.0, 8 / 12, 0.75])
    assert s.mean.tolist() == pytest.approx([10.0, 20.0, 4.0])
    ref = hourly_means(t0 + np.arange(3) * np.timedelta64(3600, "s"), [11.0, 19.0, 5.0], interval_s=3600)
    p = pair_hourly(s, ref, min_coverage=0.75)
    assert p.raw.tolist() == [10.0, 4.0] and p.ref.tolist() == [11.0, 5.0]
    assert p.expected_hours == 3


# --- stars and status ---------------------------------------------------------------------------
def test_daily_stars_follow_agreement() -> None:
    ref = np.full((1, 48), 20.0)
    values = np.vstack([ref[0] * 1.05, ref[0] * 1.3, ref[0] * 2.0])  # 5 %, 30 %, 100 % off
    values[:, 24:30] = np.nan
    stars = daily_stars(values, np.vstack([ref] * 3))
    assert stars[:, 0].tolist() == [5, 3, 1]
    assert current_stars(stars).tolist() == [5, 3, 1]
    empty = daily_stars(np.full((1, 24), np.nan), ref[:, :24])
    assert empty.tolist() == [[0]]


def test_status_with_reasons() -> None:
    n = 4
    counts = {"stuck": np.array([0, 30, 0, 0]), "spike": np.array([0, 0, 2, 0])}
    status, reasons = classify(np.array([300, 300, 300, 10]), counts, total_hours=336,
                               r2=np.array([0.9, 0.9, 0.9, np.nan]), stars=np.array([5, 5, 4, 0]))
    assert status.tolist() == ["reliable", "unreliable", "suspect", "insufficient_data"]
    assert reasons[0] == [] and any("stuck for 30 h" in r for r in reasons[1])
    assert any("spike" in r for r in reasons[2]) and "10 valid hours" in reasons[3][0]
    assert len(reasons) == n
