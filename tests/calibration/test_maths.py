"""Pure maths: metric functions against hand-computed values, the EPA correction, pairing with the
coverage rule, the coverage rule of the job, sensor types, co-location, stars and status."""

from __future__ import annotations

import math

import numpy as np
import pytest
from civicair.calibration.colocation import colocate, is_background, nearest_only
from civicair.calibration.fit import EPA_MODEL
from civicair.calibration.flags import Flags, empty_table
from civicair.calibration.grids import covered_means
from civicair.calibration.metrics import (
    epa_target_results,
    expanded_uncertainty,
    metrics_of,
    orthogonal_regression,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.pairing import hourly_means
from civicair.calibration.reasons import Reason
from civicair.calibration.reliability import DeviceContext, ReliabilityRules, classify
from civicair.calibration.sensor_types import epa_eligible, sensor_type
from civicair.calibration.stars import current_stars, daily_stars


# --- metrics, by hand ---------------------------------------------------------------------------
def test_performance_metrics_match_hand_computation() -> None:
    # sensor [1,3,2,5] vs ref [1,2,3,4]: means 2.75 / 2.5; Sxy = 5.5, Sxx = 5, Syy = 8.75
    m = metrics_of(performance_metrics(np.array([1, 3, 2, 5.0]), np.array([1, 2, 3, 4.0]), expected=8))
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
    arr = lambda *v: np.array(v, float)  # noqa: E731
    a, b = orthogonal_regression(arr(2, 4, 6), arr(1, 2, 3))
    assert (float(a), float(b)) == pytest.approx((0.0, 2.0))
    # RSS = 0, so u = |a + (b − 1)·LV| = LV → W = 2·LV/LV = 200 %
    assert float(expanded_uncertainty(arr(2, 4, 6), arr(1, 2, 3), 25.0)) == pytest.approx(200.0)
    # sensor = ref + 1 (bias only): b = 1, a = 1, RSS = 0 → u = 1 → W = 2·1/25 = 8 %
    assert float(expanded_uncertainty(arr(2, 3, 4, 5), arr(1, 2, 3, 4), 25.0)) == pytest.approx(8.0)
    # with scatter: residuals ±0.5 around y = x → RSS = 4·0.25 = 1 (orthogonal slope 1 by symmetry)
    w = float(expanded_uncertainty(arr(1.5, 1.5, 3.5, 3.5), arr(1, 2, 3, 4), 25.0))
    a, b = orthogonal_regression(arr(1.5, 1.5, 3.5, 3.5), arr(1, 2, 3, 4))
    rss = sum((y - a - b * x) ** 2 for x, y in zip([1, 2, 3, 4], [1.5, 1.5, 3.5, 3.5], strict=True))
    assert w == pytest.approx(200 * math.sqrt(rss / 2 + (a + (b - 1) * 25) ** 2) / 25)


def test_sensor_class_thresholds() -> None:
    u = np.array([50.0, 50.1, 100.1, np.nan])
    assert sensor_class(u, "pm25").tolist() == [1, 2, 3, 0]
    assert sensor_class(np.array([25.0, 60.0, 80.0]), "no2").tolist() == [1, 2, 3]
    assert sensor_class(np.array([30.0, 75.0, 76.0]), "o3").tolist() == [1, 2, 3]


def test_epa_targets() -> None:
    good = {"r2": 0.8, "slope": 1.1, "intercept": -2.0, "rmse": 9.0, "nrmse": 25.0, "completeness": 0.9}
    assert all(epa_target_results(good).values())
    bad = epa_target_results({**good, "slope": 1.4, "rmse": 8.0, "nrmse": 31.0, "r2": None})
    assert bad == {"r2": False, "slope": False, "intercept": True, "rmse_or_nrmse": False, "completeness": True}


def test_epa_correction_values() -> None:
    # 0.524·20 − 0.0862·60 + 5.75 = 10.48 − 5.172 + 5.75 = 11.058
    assert EPA_MODEL.predict(np.array([20.0]), np.array([60.0]))[0] == pytest.approx(11.058)
    # above 343: 0.46·400 + 3.93e-4·400² + 2.97 = 184 + 62.88 + 2.97
    assert EPA_MODEL.predict(np.array([400.0]), np.array([60.0]))[0] == pytest.approx(249.85)
    assert EPA_MODEL.predict(np.array([0.0]), np.array([99.0]))[0] == 0.0  # never negative
    # RH unknown: 50 %, never 0
    assert EPA_MODEL.predict(np.array([20.0]), np.array([np.nan]))[0] == pytest.approx(0.524 * 20 - 0.0862 * 50 + 5.75)


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
    assert s.valid(0.75).hours.size == 2 and s.valid(0.75).mean.tolist() == pytest.approx([10.0, 4.0])


# --- the job's coverage rule, sensor types, co-location ----------------------------------------
def test_covered_means_use_the_devices_usual_readings_per_hour() -> None:
    n = np.array([[4, 4, 4, 4, 2, 3, 4, 4, 4, 4, np.nan]], float)
    mean = np.arange(11, dtype=float)[None, :]
    expected = np.nanpercentile(n, 90, axis=1)[0]  # the device's sampling rate: 4 readings per hour
    out = covered_means(n, mean, 0.75)
    keep = np.nan_to_num(n[0]) / expected >= 0.75
    assert np.isnan(out[0, ~keep]).all() and (out[0, keep] == mean[0, keep]).all()
    assert np.isnan(out[0, 4]) and out[0, 5] == 5  # 2/4 fails, 3/4 passes


def test_the_sensor_type_is_the_model_measuring_the_quantity() -> None:
    assert sensor_type(["BME280", "SDS011"], "pm25") == "SDS011"  # not the first registered model
    assert sensor_type(["SDS011", "BME280"], "humidity") == "BME280"
    assert sensor_type(["SDS011", "BME280"], "no2") == ""
    assert sensor_type(["MYSENSOR-X"], "no2") == "MYSENSOR-X"  # unknown models may measure anything
    assert epa_eligible(["BME280", "PMS5003"], "pm25") and not epa_eligible(["SDS011"], "pm25")
    assert not epa_eligible(["PMS5003"], "pm10")


def test_colocation_and_neighbours() -> None:
    assert is_background("Urbaine / Fond") and is_background("suburban background") and is_background(None)
    assert not is_background("Urbaine / Trafic") and not is_background("industrial")
    dev_lat, dev_lon = np.array([48.58, 48.58, 48.6, 49.5]), np.array([7.75, 7.7502, 7.75, 7.75])
    st_lat, st_lon = np.array([48.5801, 48.58]), np.array([7.75, 7.7505])
    c = colocate(dev_lat, dev_lon, st_lat, st_lon, np.array([True, False]), colocation_m=50, crosscheck_m=10_000)
    assert c.colocated.tolist() == [True, True, False, False]
    assert c.crosscheck[2] == 0 and c.has_crosscheck.tolist() == [True, True, True, False]  # background only
    dist = np.array([[0, 5, 1, 3, 2], [5, 0, 1, 1, 1], [1, 1, 0, 1, 1], [3, 1, 1, 0, 1], [2, 1, 1, 1, 0]], float)
    kept = nearest_only(dist > 0, dist, 2)
    assert kept[0].tolist() == [False, False, True, False, True] and not kept.diagonal().any()


# --- stars and status ---------------------------------------------------------------------------
def test_daily_stars_follow_agreement_and_fault_hours_never_agree() -> None:
    ref = np.full((1, 48), 20.0)
    values = np.vstack([ref[0] * 1.05, ref[0] * 1.3, ref[0] * 2.0, ref[0]])  # 5 %, 30 %, 100 %, 0 % off
    values[:, 24:30] = np.nan
    fault = np.zeros((4, 48), bool)
    fault[3] = True  # a stuck sensor reading exactly the station's value
    stars = daily_stars(values, np.vstack([ref] * 4), fault)
    assert stars[:, 0].tolist() == [5, 3, 1, 1]
    assert current_stars(stars).tolist() == [5, 3, 1, 1]
    assert daily_stars(np.full((1, 24), np.nan), ref[:, :24]).tolist() == [[0]]


def _ctx(n: int, **kw) -> DeviceContext:
    base = dict(kind=("colocated",) * n, sensor_type=("SDS011",) * n, network_donors=np.zeros(n, np.int64),
                skill=np.full(n, 0.9), model_reasons=((),) * n, drift_pct=np.full(n, np.nan),
                clock_lag=np.full(n, np.nan), paired_hours=np.full(n, 300))
    base.update(kw)
    return DeviceContext(**base)  # type: ignore[arg-type]


def test_status_with_reasons_and_stars_that_agree() -> None:
    n = 5
    masks = {k: np.zeros((n, 336), bool) for k in ("stuck", "spike", "out_of_range", "gap", "high_humidity",
                                                   "clock", "disagrees")}
    masks["stuck"][1, :30] = True
    masks["spike"][2, 5:7] = True
    flags = Flags(masks, empty_table())
    no_skill = (Reason("no_skill", "unreliable", "no calibration beats a constant"),)
    status, reasons, stars = classify("pm25", np.array([300, 300, 300, 10, 300]), flags, 336,
                                      np.array([5, 5, 4, 0, 5]),
                                      _ctx(n, model_reasons=((), (), (), (), no_skill)), ReliabilityRules())
    assert status == ("reliable", "unreliable", "suspect", "insufficient_data", "unreliable")
    assert all(r.level == "note" for r in reasons[0])
    assert any(r.text == "the sensor reported the same value for 30 hours" for r in reasons[1])
    assert any(r.code == "spike" for r in reasons[2]) and "10 hours with data" in reasons[3][0].text
    assert stars.tolist() == [5, 2, 4, 0, 2]  # unreliable: at most 2 stars
    low = classify("pm25", np.array([300]), Flags({k: v[:1] for k, v in masks.items()}, empty_table()), 336,
                   np.array([2]), _ctx(1), ReliabilityRules())
    assert low[0] == ("suspect",) and low[1][0][-1].code == "stars"  # 2 stars: suspect, never reliable
