"""Offline co-location campaigns (`civicair calibration evaluate`): read sensor and reference
files, average to hours with the coverage rule, fit on the earlier part, evaluate out of sample
on the later `test_fraction`. Pure apart from reading bytes handed in."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
from civicair.calibration.batch import fault_hours
from civicair.calibration.fit import fit_huber, fit_ols
from civicair.calibration.flags import FlagRules, detect_flags, runs, spike_scores
from civicair.calibration.importers import (
    decode_text,
    detect_format,
    parse_e2,
    parse_eea,
    parse_iso_utc,
)
from civicair.calibration.metrics import (
    LIMIT_VALUES,
    epa_target_results,
    expanded_uncertainty,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.pairing import HourlySeries, hourly_means, pair_hourly
from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.errors import InvalidInput

SC_VALUE_COLUMNS = {"pm25": "P2", "pm10": "P1", "pm1": "P0", "no2": "NO2", "o3": "O3"}
SC_RH_COLUMNS = ("humidity",)


@dataclass
class Samples:
    times: np.ndarray  # datetime64[s], UTC
    values: np.ndarray
    rh_times: np.ndarray | None = None
    rh: np.ndarray | None = None
    source: str = "generic"
    bad_rows: list[tuple[int, str]] = field(default_factory=list)


def _to_dt64(values: list[str], lineoffset: int, bad: list[tuple[int, str]]) -> np.ndarray:
    out = np.empty(len(values), "datetime64[s]")
    for i, s in enumerate(values):
        try:
            out[i] = np.datetime64(parse_iso_utc(s).replace(tzinfo=None), "s")
        except ValueError:
            out[i] = np.datetime64("NaT")
            bad.append((i + lineoffset, f"bad time {s!r}"))
    return out


def read_samples(data: bytes, *, quantity: str = "pm25", time_col: str = "time", value_col: str = "value",
                 rh_col: str = "rh") -> Samples:
    """A generic CSV (time, value, optional rh) or a sensor.community archive CSV (auto-detected;
    a DHT22/BME280 file contributes RH only)."""
    text, _ = decode_text(data)
    fmt = detect_format(text)
    first = text.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    if not rows:
        raise InvalidInput("empty sensor file")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r and any(c.strip() for c in r)]
    idx = {h: i for i, h in enumerate(header)}
    if fmt == "sensor_community":
        time_col, value_col, rh_col = "timestamp", SC_VALUE_COLUMNS.get(quantity, "P2"), "humidity"
    if time_col not in idx:
        raise InvalidInput(f"sensor file has no time column {time_col!r} (columns: {', '.join(header)})")
    bad: list[tuple[int, str]] = []
    times = _to_dt64([r[idx[time_col]] if len(r) > idx[time_col] else "" for r in body], 2, bad)

    def column(name: str) -> np.ndarray:
        out = np.full(len(body), np.nan)
        for i, r in enumerate(body):
            s = r[idx[name]].strip() if len(r) > idx[name] else ""
            if s:
                try:
                    out[i] = float(s)
                except ValueError:
                    bad.append((i + 2, f"bad number {s!r} in {name}"))
        return out

    ok = ~np.isnat(times)
    values = column(value_col)[ok] if value_col in idx else np.full(int(ok.sum()), np.nan)
    rh = column(rh_col)[ok] if rh_col in idx else None
    if value_col not in idx and rh is None:
        raise InvalidInput(f"sensor file has neither value column {value_col!r} nor RH column {rh_col!r}")
    return Samples(times[ok], values, times[ok] if rh is not None else None, rh,
                   "sensor.community" if fmt == "sensor_community" else "generic", bad)


def merge_samples(parts: list[Samples]) -> Samples:
    """Several sensor files (e.g. an SDS011 and the DHT22 of the same node) → one sample set."""
    val = [p for p in parts if np.isfinite(p.values).any()]
    if not val:
        raise InvalidInput("no sensor file has values of the requested quantity")
    times = np.concatenate([p.times for p in val])
    values = np.concatenate([p.values for p in val])
    rhp = [p for p in parts if p.rh is not None and np.isfinite(p.rh).any()]
    rh_t = np.concatenate([p.rh_times for p in rhp]) if rhp else None
    rh = np.concatenate([p.rh for p in rhp]) if rhp else None
    return Samples(times, values, rh_t, rh, "+".join(sorted({p.source for p in parts})),
                   [b for p in parts for b in p.bad_rows])


def read_reference(data: bytes, *, quantity: str = "pm25", station: str | None = None, time_col: str = "time",
                   value_col: str = "value") -> tuple[HourlySeries, str]:
    """An E2 or EEA file (auto-detected; one station chosen) or a generic hourly CSV."""
    text, _ = decode_text(data)
    fmt = detect_format(text)
    if fmt in ("e2", "eea"):
        res = parse_e2(data) if fmt == "e2" else parse_eea(data)
        code = QUANTITY_BY_NAME[quantity].code
        rows = [r for r in res.rows if r.quantity == code]
        stations = sorted({r.station_code for r in rows})
        if not rows:
            raise InvalidInput(f"reference file has no valid {quantity} rows")
        chosen = station or stations[0]
        if chosen not in stations:
            raise InvalidInput(f"station {chosen!r} has no {quantity} rows; stations: {', '.join(stations)}")
        rows = [r for r in rows if r.station_code == chosen]
        hours = np.array([int(r.time.timestamp()) // 3600 for r in rows], np.int64)
        vals = np.array([r.value for r in rows])
        order = np.argsort(hours)
        hours, first = np.unique(hours[order], return_index=True)
        vals = vals[order][first]
        return HourlySeries(hours, vals, np.ones_like(hours), np.ones(hours.size)), f"{fmt}:{chosen}"
    header = {h.strip() for h in text.splitlines()[0].replace(";", ",").split(",")} if text else set()
    # the --time-col/--value-col names apply when the reference uses them, else the defaults
    time_col = time_col if time_col in header else "time"
    value_col = value_col if value_col in header else "value"
    s = read_samples(data, quantity=quantity, time_col=time_col, value_col=value_col, rh_col="__none__")
    return hourly_means(s.times, s.values), "generic"


def evaluate_campaign(sensor: Samples, reference: HourlySeries, *, quantity: str = "pm25",
                      test_fraction: float = 0.33, min_coverage: float = 0.75, min_pairs: int = 72) -> dict:
    """Fit on the earlier part, evaluate on the later `test_fraction` (out of sample)."""
    if not 0 < test_fraction < 1:
        raise InvalidInput("--test-fraction must be between 0 and 1 (exclusive)")
    s_hourly = hourly_means(sensor.times, sensor.values)
    rh_hourly = (hourly_means(sensor.rh_times, sensor.rh)
                 if sensor.rh is not None and sensor.rh_times is not None else None)
    pairs = pair_hourly(s_hourly, reference, rh_hourly, min_coverage=min_coverage)
    n = pairs.hours.size
    n_test = int(round(n * test_fraction))
    n_train = n - n_test
    if n_train < min_pairs or n_test < 3:
        raise InvalidInput(f"only {n} paired hours with ≥ {min_coverage:.0%} coverage on both sides "
                           f"({n_train} for fitting, need ≥ {min_pairs}); use a longer campaign or --min-pairs")
    use_rh = quantity.startswith("pm") and np.isfinite(pairs.rh).mean() >= 0.8
    rh = pairs.rh if use_rh else None
    tr, te = slice(0, n_train), slice(n_train, n)
    fit = fit_huber(pairs.raw[None, tr], pairs.ref[None, tr], None if rh is None else rh[None, tr],
                    use_rh=use_rh, min_pairs=min_pairs)
    ols = fit_ols(pairs.raw[None, tr], pairs.ref[None, tr], None if rh is None else rh[None, tr], use_rh=use_rh)
    model = fit.model(0)
    calibrated = model.apply(pairs.raw, rh)
    split_hour = int(pairs.hours[n_train])
    test_expected = int(max(s_hourly.hours.max(), reference.hours.max()) - split_hour + 1)
    train_expected = max(int(split_hour - min(s_hourly.hours.min(), reference.hours.min())), 1)
    lv = LIMIT_VALUES.get(quantity, 25.0)
    # flags on the full hourly grid of the campaign
    h0 = int(min(s_hourly.hours.min(), reference.hours.min()))
    H = int(max(s_hourly.hours.max(), reference.hours.max()) - h0 + 1)
    grid = np.full((1, H), np.nan)
    sv = s_hourly.valid(min_coverage)
    grid[0, sv.hours - h0] = sv.mean
    ref_grid = np.full((1, H), np.nan)
    ref_grid[0, reference.hours - h0] = reference.mean
    rh_grid = None
    if rh_hourly is not None:
        rh_grid = np.full((1, H), np.nan)
        rv = rh_hourly.valid(min_coverage)
        rh_grid[0, rv.hours - h0] = rv.mean
    lo, hi = QUANTITY_BY_NAME[quantity].low, QUANTITY_BY_NAME[quantity].high
    cal_grid = np.full((1, H), np.nan)
    cal_grid[0, pairs.hours - h0] = calibrated
    res = detect_flags(grid, rules=FlagRules(low=lo, high=hi), rh=rh_grid, ref=ref_grid, calibrated=cal_grid)
    # performance is judged on hours not flagged as sensor faults (as the service does)
    fault = fault_hours(res)[0][pairs.hours - h0]
    raw_j = np.where(fault, np.nan, pairs.raw)
    cal_j = np.where(fault, np.nan, calibrated)
    m_raw = performance_metrics(raw_j[te], pairs.ref[te], test_expected)
    m_cal = performance_metrics(cal_j[te], pairs.ref[te], test_expected)
    m_fit = performance_metrics(cal_j[tr], pairs.ref[tr], train_expected)
    unc = expanded_uncertainty(cal_j[te], pairs.ref[te], lv)
    cls = sensor_class(unc, quantity)
    flags = [{"flag": f.flag, "start": _iso(h0 + f.start), "end": _iso(h0 + f.end), "evidence": f.evidence}
             for f in res.flags]
    flags += sample_flags(sensor, lo, hi)
    if sensor.rh is not None:
        rhres = detect_flags(np.asarray(rh_grid), rules=FlagRules(low=0, high=100)) if rh_grid is not None else None
        if rhres is not None:
            flags += [{"flag": f.flag, "quantity": "humidity", "start": _iso(h0 + f.start), "end": _iso(h0 + f.end),
                       "evidence": f.evidence} for f in rhres.flags if f.flag in ("stuck", "out_of_range")]
    return {
        "quantity": quantity,
        "model": {"a": model.a, "b": model.b, "c": model.c, "method": model.method},
        "model_ols": {"a": float(ols.a[0]), "b": float(ols.b[0]), "c": float(ols.c[0]), "method": "ols"},
        "metrics_raw": m_raw, "metrics_calibrated": m_cal, "metrics_fit": m_fit,
        "epa_targets_calibrated": epa_target_results(m_cal),
        "uncertainty_pct": None if not np.isfinite(unc) else round(float(unc), 2),
        "class": int(cls) or None,
        "flags": flags,
        "window": {"start": _iso(h0), "end": _iso(h0 + H), "split": _iso(split_hour),
                   "train_pairs": n_train, "test_pairs": n_test, "fault_hours_excluded": int(fault.sum())},
        "series": {"hours": [_iso(h) for h in pairs.hours.tolist()], "raw": pairs.raw.tolist(),
                   "calibrated": calibrated.tolist(), "reference": pairs.ref.tolist(),
                   "rh": [None if not np.isfinite(x) else x for x in pairs.rh.tolist()]},
    }


def sample_flags(sensor: Samples, low: float, high: float, *, z: float = 6.0) -> list[dict]:
    """Spikes on the raw sub-hourly samples (robust z against a rolling median of 25 samples)."""
    order = np.argsort(sensor.times)
    t, v = sensor.times[order], sensor.values[order]
    if v.size < 25:
        return []
    scores, med = spike_scores(v[None, :], 25, 1.0)
    mask = np.abs(np.nan_to_num(scores)) > z
    out = []
    for _, a, b in zip(*runs(mask), strict=True):
        k = a + int(np.argmax(np.abs(scores[0, a:b])))
        out.append({"flag": "spike", "scope": "samples", "start": str(t[a]) + "Z", "end": str(t[b - 1]) + "Z",
                    "evidence": {"samples": int(b - a), "max_value": float(v[k]),
                                 "rolling_median": round(float(med[0, k]), 2),
                                 "robust_z": round(float(scores[0, k]), 2), "threshold": z}})
    return out


def _iso(epoch_hour: int) -> str:
    return str(np.datetime64(int(epoch_hour) * 3600, "s")) + "Z"
