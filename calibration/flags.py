"""QA flags of docs/calibration.md#qa-flags, each with its evidence, vectorised over (devices × hours) grids.

Input grids hold hourly means (NaN where the hour failed the coverage rule); row i is device i,
column j is hour ``hour0 + j``. Every detector returns a boolean grid of the hours it flags;
`detect_flags` runs them all and turns the flagged runs into `QAFlag` records with evidence.
No Python loop runs over hours: the only loops are over flagged runs (to write evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from civicair.calibration import nanstats
from scipy.ndimage import median_filter

FLAG_NAMES = ("stuck", "out_of_range", "spike", "gap", "high_humidity", "drift", "disagrees", "clock")


@dataclass(frozen=True)
class FlagRules:
    stuck_hours: int = 6
    spike_z: float = 6.0
    spike_window: int = 25  # samples (hours for hourly grids), centred
    spike_min_mad: float = 1.0  # unit floor of the MAD, so a flat series is not all spikes
    gap_completeness: float = 0.75  # over 24 h
    humidity_max: float = 85.0
    drift_pct_per_30d: float = 20.0
    drift_min_days: float = 7.0
    disagree_fraction: float = 0.5  # "most hours of a day"
    disagree_abs: float = 5.0  # tolerance around the envelope, unit
    disagree_rel: float = 0.30
    clock_max_lag: int = 6
    clock_min_gain: float = 0.10
    low: float = 0.0
    high: float = 1000.0


@dataclass(frozen=True)
class QAFlag:
    device: int  # row of the input grid
    flag: str
    start: int  # first hour index (inclusive)
    end: int  # last hour index (exclusive)
    evidence: dict = field(default_factory=dict)


@dataclass
class FlagResult:
    masks: dict[str, np.ndarray]  # name → (devices × hours) bool
    flags: list[QAFlag]

    def by_device(self, n_devices: int) -> list[list[QAFlag]]:
        out: list[list[QAFlag]] = [[] for _ in range(n_devices)]
        for f in self.flags:
            out[f.device].append(f)
        return out

    def counts(self) -> dict[str, np.ndarray]:
        """Flagged hours per device and flag."""
        return {k: m.sum(axis=1) for k, m in self.masks.items()}


# --- helpers ------------------------------------------------------------------------------------
def _fill(x: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along rows (then the row median for leading NaN)."""
    ok = np.isfinite(x)
    idx = np.where(ok, np.arange(x.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(x, idx, axis=1)
    with np.errstate(all="ignore"):
        med = np.where(ok.any(axis=1), nanstats.nanmedian(np.where(ok, x, np.nan), axis=1) if ok.any() else 0.0, 0.0)
    return np.where(np.isfinite(filled), filled, np.nan_to_num(med)[:, None])


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of every run of True in a 2-D mask, vectorised."""
    d, h = mask.shape
    padded = np.zeros((d, h + 2), bool)
    padded[:, 1:-1] = mask
    edges = np.diff(padded.astype(np.int8), axis=1)
    rs, ss = np.nonzero(edges == 1)
    re, es = np.nonzero(edges == -1)
    order_s = np.lexsort((ss, rs))
    order_e = np.lexsort((es, re))
    return rs[order_s], ss[order_s], es[order_e]


def _row_stat(x, rows, starts, ends, fn):
    return [fn(x[r, s:e]) for r, s, e in zip(rows, starts, ends, strict=True)]


# --- detectors ----------------------------------------------------------------------------------
def stuck_mask(values: np.ndarray, min_hours: int = 6) -> np.ndarray:
    """Hours inside a run of ≥ min_hours identical consecutive values."""
    x = values
    eq = np.zeros_like(x, dtype=bool)
    with np.errstate(invalid="ignore"):
        # equal up to float rounding (hourly means of a stuck sensor differ in the last bits)
        eq[:, 1:] = np.isclose(x[:, 1:], x[:, :-1], rtol=1e-9, atol=1e-9) & np.isfinite(x[:, 1:])
    # run length of equalities ending at each hour
    c = np.cumsum(eq, axis=1)
    reset = np.where(~eq, c, 0)
    np.maximum.accumulate(reset, axis=1, out=reset)
    length = c - reset  # equalities in the current run
    end_of_long = length >= (min_hours - 1)
    # spread "long run" back over the whole run: label runs, mark labels that reach the length
    run_id = np.cumsum(~eq, axis=1)
    flat_id = run_id + (np.arange(x.shape[0]) * (x.shape[1] + 1))[:, None]
    long_ids = np.unique(flat_id[end_of_long])
    return np.isin(flat_id, long_ids) & np.isfinite(x)


def out_of_range_mask(values: np.ndarray, low: float, high: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (values < low) | (values > high)


def spike_scores(values: np.ndarray, window: int = 25, min_mad: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Robust z-score against the device's own rolling median: 0.6745·(x − med)/MAD."""
    filled = _fill(values).astype(np.float32)
    med = median_filter(filled, size=(1, window), mode="nearest").astype(np.float64)
    dev = np.abs(values - med)
    # Scale: the device's median absolute deviation from its own rolling median (one per device).
    with np.errstate(all="ignore"):
        mad = nanstats.nanmedian(np.where(np.isfinite(values), dev, np.nan), axis=1) if values.size else 0.0
    mad = np.maximum(np.nan_to_num(np.atleast_1d(mad), nan=min_mad), min_mad)
    z = 0.6745 * (values - med) / mad[:, None]
    return z, med


def gap_mask(values: np.ndarray, min_completeness: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """Whole 24-h blocks whose share of valid hours is below min_completeness; and the shares.

    Completeness counts from each device's first data in the window on: hours before it are a
    sensor not yet installed, not missing data (a block entirely before it has share NaN and is
    never a gap). A device with no data at all in the window is a gap everywhere."""
    d, h = values.shape
    days = -(-h // 24)
    finite = np.isfinite(values)
    ok = np.zeros((d, days * 24), bool)
    ok[:, :h] = finite
    first = np.where(finite.any(axis=1), finite.argmax(axis=1), 0)
    idx = np.arange(days * 24)
    active = (idx[None, :] >= first[:, None]) & (idx[None, :] < h)
    expected = active.reshape(d, days, 24).sum(axis=2)
    got = (ok & active).reshape(d, days, 24).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(expected > 0, got / np.maximum(expected, 1), np.nan)
        gap = share < min_completeness
    return np.repeat(gap, 24, axis=1)[:, :h], share


def humidity_mask(rh: np.ndarray, limit: float = 85.0) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return rh > limit


def drift_pct_per_30d(values: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear trend of the residuals (value − ref) in % of the mean reference per 30 days, and
    the span in days of the pairs behind it."""
    ok = np.isfinite(values) & np.isfinite(ref)
    t = np.broadcast_to(np.arange(values.shape[1]) / 24.0, values.shape)
    r = np.where(ok, values - ref, 0.0)
    n = np.maximum(ok.sum(axis=1), 1)
    tm = np.where(ok, t, 0).sum(axis=1) / n
    rm = r.sum(axis=1) / n
    dt = np.where(ok, t - tm[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (dt * np.where(ok, r - rm[:, None], 0)).sum(axis=1) / (dt * dt).sum(axis=1)
        mean_ref = np.where(ok, ref, 0).sum(axis=1) / n
        pct = 100.0 * slope * 30.0 / np.abs(mean_ref)
    tt = np.where(ok, t, np.nan)
    with np.errstate(all="ignore"):
        span = np.where(ok.any(axis=1), nanstats.nanmax(np.where(ok, t, -np.inf), axis=1)
                        - nanstats.nanmin(np.where(ok, t, np.inf), axis=1), 0.0)
    del tt
    return pct, span


def disagree_mask(values, env_low, env_high, *, rel: float = 0.3, abs_tol: float = 5.0,
                  fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Days on which the value is outside the neighbour/station envelope (± tolerance) on more
    than `fraction` of its valid hours; returns the day mask (per hour) and the per-day shares."""
    ok = np.isfinite(values) & np.isfinite(env_low) & np.isfinite(env_high)
    lo = env_low - np.maximum(abs_tol, rel * np.abs(env_low))
    hi = env_high + np.maximum(abs_tol, rel * np.abs(env_high))
    with np.errstate(invalid="ignore"):
        outside = ok & ((values < lo) | (values > hi))
    d, h = values.shape
    days = -(-h // 24)
    pad = days * 24 - h
    o = np.pad(outside, ((0, 0), (0, pad))).reshape(d, days, 24).sum(axis=2)
    k = np.pad(ok, ((0, 0), (0, pad))).reshape(d, days, 24).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(k >= 6, o / k, np.nan)
    day_flag = np.nan_to_num(share) > fraction
    return np.repeat(day_flag, 24, axis=1)[:, :h], share


def lag_correlations(values: np.ndarray, ref: np.ndarray, max_lag: int = 6) -> np.ndarray:
    """Pearson r between device and reference at lags −max_lag..max_lag hours: (devices × lags).
    A positive lag means the device reports `lag` hours late."""
    out = np.full((values.shape[0], 2 * max_lag + 1), np.nan)
    h = values.shape[1]
    for i, lag in enumerate(range(-max_lag, max_lag + 1)):  # loop over lags, not hours
        if lag >= 0:
            v, r = values[:, lag:], ref[:, : h - lag]
        else:
            v, r = values[:, :lag], ref[:, -lag:]
        ok = np.isfinite(v) & np.isfinite(r)
        n = np.maximum(ok.sum(axis=1), 1)
        vm = np.where(ok, v, 0).sum(1) / n
        rm = np.where(ok, r, 0).sum(1) / n
        dv = np.where(ok, v - vm[:, None], 0)
        dr = np.where(ok, r - rm[:, None], 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = (dv * dr).sum(1) / np.sqrt((dv * dv).sum(1) * (dr * dr).sum(1))
        out[ok.sum(axis=1) < 24, i] = np.nan
    return out


# --- all flags ------------------------------------------------------------------------------
def detect_flags(
    values: np.ndarray,
    *,
    rules: FlagRules = FlagRules(),
    rh: np.ndarray | None = None,
    ref: np.ndarray | None = None,
    env_low: np.ndarray | None = None,
    env_high: np.ndarray | None = None,
    clock_counts: np.ndarray | None = None,
    calibrated: np.ndarray | None = None,
) -> FlagResult:
    """Run every detector; `ref` (the co-located or nearest station, on the same grid) enables
    drift and clock-lag checks, `env_low/high` the disagreement check, `clock_counts` (readings
    the ingest flagged CLOCK per hour) the clock flag from arrival times. The envelope is in
    calibrated units: pass `calibrated` (defaults to `values`) for the disagreement check."""
    values = np.atleast_2d(np.asarray(values, float))
    d, h = values.shape
    masks: dict[str, np.ndarray] = {}
    flags: list[QAFlag] = []

    m = stuck_mask(values, rules.stuck_hours)
    masks["stuck"] = m
    for r, s, e in zip(*runs(m), strict=True):
        flags.append(QAFlag(r, "stuck", s, e, {"value": float(values[r, s]), "hours": int(e - s)}))

    m = out_of_range_mask(values, rules.low, rules.high)
    masks["out_of_range"] = m
    for r, s, e in zip(*runs(m), strict=True):
        seg = values[r, s:e]
        flags.append(QAFlag(r, "out_of_range", s, e, {"min": float(nanstats.nanmin(seg)), "max": float(nanstats.nanmax(seg)),
                                                       "low": rules.low, "high": rules.high}))

    z, med = spike_scores(values, rules.spike_window, rules.spike_min_mad)
    with np.errstate(invalid="ignore"):
        m = np.abs(z) > rules.spike_z
    masks["spike"] = m
    for r, s, e in zip(*runs(m), strict=True):
        k = s + int(np.nanargmax(np.abs(z[r, s:e])))
        flags.append(QAFlag(r, "spike", s, e, {"value": float(values[r, k]), "rolling_median": float(med[r, k]),
                                                "robust_z": round(float(z[r, k]), 2), "threshold": rules.spike_z}))

    m, share = gap_mask(values, rules.gap_completeness)
    masks["gap"] = m
    for r, s, e in zip(*runs(m), strict=True):
        flags.append(QAFlag(r, "gap", s, e, {"completeness": [round(float(x), 3) for x in share[r, s // 24: -(-e // 24)]],
                                              "threshold": rules.gap_completeness}))

    if rh is not None:
        rh = np.atleast_2d(np.asarray(rh, float))
        m = humidity_mask(rh, rules.humidity_max) & np.isfinite(values)
        masks["high_humidity"] = m
        for r, s, e in zip(*runs(m), strict=True):
            ev = {"max_rh": float(nanstats.nanmax(rh[r, s:e])), "hours": int(e - s), "threshold": rules.humidity_max}
            if ref is not None:
                with np.errstate(all="ignore"):
                    ratio = nanstats.nanmedian(values[r, s:e] / np.where(ref[r, s:e] > 0, ref[r, s:e], np.nan))
                if np.isfinite(ratio):
                    ev["median_ratio_to_reference"] = round(float(ratio), 3)
            flags.append(QAFlag(r, "high_humidity", s, e, ev))

    if ref is not None:
        ref = np.atleast_2d(np.asarray(ref, float))
        # residuals in reference units: the calibrated values when given
        pct, span = drift_pct_per_30d(values if calibrated is None else np.atleast_2d(calibrated), ref)
        dev = np.nan_to_num(np.abs(pct)) > rules.drift_pct_per_30d
        dev &= span >= rules.drift_min_days
        masks["drift"] = np.repeat(dev[:, None], h, axis=1) & np.isfinite(values)
        for r in np.nonzero(dev)[0]:
            flags.append(QAFlag(int(r), "drift", 0, h, {"pct_per_30_days": round(float(pct[r]), 1),
                                                        "span_days": round(float(span[r]), 1),
                                                        "threshold": rules.drift_pct_per_30d}))
        corr = lag_correlations(values, ref, rules.clock_max_lag)
        with np.errstate(all="ignore"):
            best = np.where(np.isfinite(corr).any(1), np.nanargmax(np.nan_to_num(corr, nan=-2), axis=1), rules.clock_max_lag)
        lag = best - rules.clock_max_lag
        r0 = corr[:, rules.clock_max_lag]
        rb = corr[np.arange(d), best]
        lagged = (lag != 0) & (np.nan_to_num(rb - r0) >= rules.clock_min_gain) & (np.nan_to_num(rb) >= 0.5)
    else:
        lagged = np.zeros(d, bool)
        lag = rb = r0 = np.zeros(d)

    if env_low is not None and env_high is not None:
        cal = values if calibrated is None else np.atleast_2d(calibrated)
        m, share = disagree_mask(cal, np.atleast_2d(env_low), np.atleast_2d(env_high), rel=rules.disagree_rel,
                                 abs_tol=rules.disagree_abs, fraction=rules.disagree_fraction)
        masks["disagrees"] = m
        for r, s, e in zip(*runs(m), strict=True):
            flags.append(QAFlag(r, "disagrees", s, e, {
                "share_outside": [round(float(x), 3) for x in np.nan_to_num(share[r, s // 24: -(-e // 24)])],
                "threshold": rules.disagree_fraction, "tolerance_abs": rules.disagree_abs,
                "tolerance_rel": rules.disagree_rel}))

    clock = np.repeat(lagged[:, None], h, axis=1) & np.isfinite(values)
    if clock_counts is not None:
        cc = np.atleast_2d(clock_counts) > 0
        clock |= cc
        for r, s, e in zip(*runs(cc), strict=True):
            flags.append(QAFlag(r, "clock", s, e, {"readings_with_bad_time": int(np.atleast_2d(clock_counts)[r, s:e].sum())}))
    masks["clock"] = clock
    for r in np.nonzero(lagged)[0]:
        flags.append(QAFlag(int(r), "clock", 0, h, {"lag_hours": int(lag[r]), "r_at_lag": round(float(rb[r]), 3),
                                                    "r_at_zero": round(float(r0[r]), 3)}))
    return FlagResult(masks, flags)
