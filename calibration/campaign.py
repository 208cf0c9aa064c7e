"""Offline co-location campaigns (`civicair calibration evaluate`, docs/calibration.md#offline-campaign-evaluation):
the sensor samples and the reference become hourly grids; the one pipeline (`assess.assess`) runs
on the earlier part; its published model is judged out of sample on the later `test_fraction`.
Pure apart from the bytes the caller read."""

from __future__ import annotations

from typing import Any

import numpy as np
from civicair.calibration import flags as fl
from civicair.calibration.assess import Assessment, CalibrationRules, assess, cv_of, model_of
from civicair.calibration.campaign_files import Reference, Samples, sample_spikes
from civicair.calibration.grids import single_device
from civicair.calibration.metrics import (
    LIMIT_VALUES,
    epa_target_results,
    expanded_uncertainty,
    metrics_of,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.pairing import HourlySeries, hourly_means
from civicair.calibration.report import document, json_safe
from civicair.calibration.select import apply
from civicair.calibration.sensor_types import epa_eligible
from civicair.core.errors import InvalidInput


def _iso(epoch_hour: int) -> str:
    return str(np.datetime64(int(epoch_hour) * 3600, "s")) + "Z"


def _period(hours: np.ndarray) -> str:
    return f"{_iso(int(hours.min()))} → {_iso(int(hours.max()) + 1)}" if hours.size else "no data"


def _grid(series: HourlySeries, h0: int, n: int) -> np.ndarray:
    g = np.full(n, np.nan)
    g[series.hours - h0] = series.mean
    return g


def evaluate_campaign(sensor: Samples, reference: Reference, *, quantity: str = "pm25", test_fraction: float = 1 / 3,
                      min_coverage: float = 0.75, rules: CalibrationRules | None = None,
                      sensor_model: str = "", sensor_name: str = "sensor") -> dict[str, Any]:
    """Fit on the earlier part of the paired hours, judge on the later `test_fraction`."""
    if not 0 < test_fraction < 1:
        raise InvalidInput("--test-fraction must be between 0 and 1 (exclusive)")
    rules = rules or CalibrationRules()
    # spikes among the sub-hourly samples are reported, not removed: a run of them is as likely a
    # real episode (a bonfire night) as a glitch; gross hours are flagged on the hourly means
    spikes, spike_flags = sample_spikes(sensor)
    s_hourly = hourly_means(sensor.times, sensor.values).valid(min_coverage)
    rh_hourly = (hourly_means(sensor.rh_times, sensor.rh).valid(min_coverage)
                 if sensor.rh is not None and sensor.rh_times is not None else None)
    ref_hourly = reference.series.valid(min_coverage)
    paired = np.intersect1d(s_hourly.hours, ref_hourly.hours)
    if paired.size == 0:
        periods = f"sensor {_period(s_hourly.hours)}, reference {_period(ref_hourly.hours)}"
        if s_hourly.hours.size and ref_hourly.hours.size and (
                s_hourly.hours.max() < ref_hourly.hours.min() or ref_hourly.hours.max() < s_hourly.hours.min()):
            raise InvalidInput(f"sensor and reference do not overlap in time: {periods}")
        raise InvalidInput(f"0 paired hours: no hour has both a sensor mean with ≥ {min_coverage:.0%} coverage and a "
                           f"reference value ({periods})")
    n = paired.size
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    if n_train < rules.fit.min_pairs or n_test < 3:
        raise InvalidInput(f"only {n} paired hours with ≥ {min_coverage:.0%} coverage on both sides ({n_train} for "
                           f"fitting, need ≥ {rules.fit.min_pairs}); use a longer campaign or --min-pairs")
    split = int(paired[n_train])
    spans = [s_hourly.hours, ref_hourly.hours] + ([rh_hourly.hours] if rh_hourly is not None and rh_hourly.hours.size
                                                  else [])
    h0 = int(min(int(x.min()) for x in spans if x.size))
    h_n = int(max(int(x.max()) for x in spans if x.size)) - h0 + 1
    raw, ref = _grid(s_hourly, h0, h_n), _grid(ref_hourly, h0, h_n)
    rh = _grid(rh_hourly, h0, h_n) if rh_hourly is not None else np.full(h_n, np.nan)
    hour = np.arange(h_n) + h0
    train = hour < split

    # the one pipeline, on the training part only
    n_tr = int(split - h0)  # the training grid ends where the test part begins
    inp = single_device(quantity, raw[:n_tr], ref[:n_tr], rh[:n_tr], sensor_type=sensor_model,
                        epa_eligible=epa_eligible([sensor_model], quantity))
    a = assess(inp, rules)

    # its model over the whole campaign; flags over the whole campaign (what a partner sees)
    fr = rules.flag_rules(quantity)
    full = fl.hour_flags(raw[None], rules=fr, rh=rh[None] if quantity.startswith("pm") else None, ref=ref[None])
    fault = (full.masks["stuck"] | full.masks["spike"] | full.masks["out_of_range"])[0]
    rh_stuck = fl.rh_stuck(rh[None], stuck_hours=fr.stuck_hours)
    rh_bad = fl.rh_unusable(rh[None], stuck=rh_stuck)
    calibrated = apply(a.selection, raw[None], rh[None], ~rh_bad, a.rh_allowed, rules.fit.aw_cap)[0]
    pair = np.isfinite(raw) & np.isfinite(ref)
    test = ~train & pair & ~fault
    published = bool(a.selection.method[0] >= 0)
    test_expected = float(hour[-1] - split + 1)
    lv = LIMIT_VALUES.get(quantity, 25.0)
    m_raw = metrics_of(performance_metrics(np.where(test, raw, np.nan), np.where(test, ref, np.nan), test_expected))
    m_cal = unc = cls = None
    if published:
        cal_t = np.where(test, calibrated, np.nan)
        m_cal = metrics_of(performance_metrics(cal_t, np.where(test, ref, np.nan), test_expected))
        u = float(expanded_uncertainty(cal_t, np.where(test, ref, np.nan), lv))
        unc = u if np.isfinite(u) else None
        cls = int(sensor_class(np.array(u), quantity)) or None
    train_slope = metrics_of(performance_metrics(np.where(train & pair & ~fault, raw, np.nan),
                                                 np.where(train, ref, np.nan)))["slope"]
    rh_flags = fl.rh_channel_flags(rh[None], stuck=rh_stuck)
    flags = (_flag_rows(full.table, h0, quantity) + _flag_rows(rh_flags.table, h0, "humidity")
             + [{**f, "quantity": quantity} for f in spike_flags])
    warnings = _warnings(a, train_slope, rh_flags, int(spikes.sum()), published)
    window = {"start": _iso(h0), "end": _iso(h0 + h_n), "split": _iso(split), "train_pairs": n_train,
              "test_pairs": n_test, "paired_hours": n, "test_hours_judged": int(test.sum()),
              "fault_hours_excluded": {"train": int((a.fault[0] & pair[:n_tr]).sum()),
                                       "test": int((fault & pair & ~train).sum())},
              "sample_spikes": int(spikes.sum())}
    doc = document(
        title=f"Co-location campaign — {sensor_name} — {quantity}", device=sensor_name,
        sensor_model=sensor_model or None, quantity=quantity,
        station={"code": reference.station_code, "name": reference.station_name},
        window=window, kind=a.kind[0], status=a.status[0], stars=None, model=model_of(a, 0), cv=cv_of(a, 0),
        reasons=[r.as_dict(quantity) for r in a.reasons[0]], flags=flags, warnings=warnings, basis="test",
        metrics={"raw": m_raw, "calibrated": m_cal, "out_of_fold": metrics_of(a.metrics, 0) if published else None},
        uncertainty_pct=unc, sensor_class=cls,
        epa_targets=epa_target_results(m_cal) if m_cal is not None and quantity == "pm25" else None,
        series={"hours": [_iso(h) for h in hour[pair].tolist()], "raw": raw[pair].tolist(),
                "calibrated": [None if not np.isfinite(v) else float(v) for v in calibrated[pair].tolist()],
                "reference": ref[pair].tolist(),
                "rh": [None if not np.isfinite(v) else float(v) for v in rh[pair].tolist()]})
    return dict(json_safe(doc))


def _flag_rows(table: fl.FlagTable, h0: int, quantity: str) -> list[dict[str, Any]]:
    return [{"flag": table.flag[i], "quantity": quantity, "scope": table.scope[i],
             "start": _iso(h0 + int(table.start[i])), "end": _iso(h0 + int(table.end[i])),
             "evidence": table.evidence_of(i)} for i in range(len(table))]


def _warnings(a: Assessment, train_slope: float | None, rh_flags: fl.Flags, spikes: int, published: bool) -> list[str]:
    out: list[str] = []
    codes = {r.code: r for r in a.reasons[0]}
    if "rh_not_used" in codes:
        stuck = int(rh_flags.hours("stuck").sum()) if rh_flags.hours("stuck").size else 0
        extra = f"; {stuck} hours of the RH channel are flagged stuck" if stuck else ""
        out.append(codes["rh_not_used"].text + extra)
    if train_slope is not None and train_slope <= 0:
        out.append(f"the raw values fall as the reference rises (slope {train_slope:.2f} of raw on reference in the "
                   "fitting part): the sensor does not measure this pollutant")
    if spikes:
        out.append(f"{spikes} sub-hourly sample(s) look like spikes (flagged, kept in the hourly means)")
    if not published:
        out.append("no calibration is published for this sensor: " +
                   "; ".join(r.text for r in a.reasons[0] if r.level != "note"))
    return out
