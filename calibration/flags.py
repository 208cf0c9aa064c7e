"""QA flags of docs/calibration.md#qa-flags, vectorised over (devices × hours) grids (pure).

Every detector returns a boolean grid of the hours it flags. The flagged runs become one columnar
`FlagTable` (device, flag, [start, end) hours, numeric evidence columns): evidence is computed by
segment reductions over all runs at once, never one Python object per run (a humid network has
tens of thousands of humid runs per window).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from civicair.calibration import nanstats
from civicair.calibration.grids import Bools, Floats, Ints
from scipy.ndimage import median_filter

FLAG_NAMES = ("stuck", "out_of_range", "spike", "gap", "high_humidity", "drift", "disagrees", "clock")
WINDOW_FLAGS = ("drift", "clock_lag")  # judged over the whole window, not per run of hours
FAULTS = ("stuck", "spike", "out_of_range")  # hours left out of fitting, judging and rating


@dataclass(frozen=True)
class FlagRules:
    stuck_hours: int = 6
    spike_z: float = 6.0
    spike_window: int = 25  # hours, centred
    spike_min_mad: float = 1.0  # unit floor of the MAD, so a flat series is not all spikes
    gap_completeness: float = 0.75  # over 24 h
    humidity_max: float = 85.0
    drift_pct_per_30d: float = 20.0
    drift_min_days: float = 7.0
    drift_min_t: float = 3.0  # the trend must stand out of the day-to-day scatter of the residuals
    disagree_fraction: float = 0.5  # "most hours of a day"
    disagree_abs: float = 5.0  # tolerance around the envelope, unit
    disagree_rel: float = 0.30
    clock_max_lag: int = 6
    clock_min_gain: float = 0.10
    low: float = 0.0
    high: float = 1000.0


@dataclass(frozen=True)
class FlagTable:
    """One row per flagged run. `scope` is "hours" for runs of hours and "window" for a verdict
    on the whole window (drift, a clock shift); evidence columns are NaN where they do not apply."""

    device: Ints
    flag: tuple[str, ...]
    start: Ints  # first hour index (inclusive)
    end: Ints  # last hour index (exclusive)
    scope: tuple[str, ...]
    evidence: Mapping[str, Floats]

    def __len__(self) -> int:
        return int(self.device.size)

    def evidence_of(self, i: int) -> dict[str, float]:
        """Row i's evidence without the columns that do not apply (for reports and storage)."""
        return {k: float(v[i]) for k, v in self.evidence.items() if np.isfinite(v[i])}

    def rows_of(self, flag: str) -> Ints:
        out: Ints = np.nonzero(np.array([f == flag for f in self.flag], dtype=np.bool_))[0]
        return out


def empty_table() -> FlagTable:
    return FlagTable(np.zeros(0, np.int64), (), np.zeros(0, np.int64), np.zeros(0, np.int64), (), {})


def concat(tables: list[FlagTable]) -> FlagTable:
    tables = [t for t in tables if len(t)]
    if not tables:
        return empty_table()
    keys = sorted({k for t in tables for k in t.evidence})
    evidence = {k: np.concatenate([t.evidence.get(k, np.full(len(t), np.nan)) for t in tables]) for k in keys}
    return FlagTable(np.concatenate([t.device for t in tables]), tuple(f for t in tables for f in t.flag),
                     np.concatenate([t.start for t in tables]), np.concatenate([t.end for t in tables]),
                     tuple(s for t in tables for s in t.scope), evidence)


# --- runs and segment reductions ------------------------------------------------------------
def runs(mask: Bools) -> tuple[Ints, Ints, Ints]:
    """(row, start, end) of every run of True in a 2-D mask, vectorised."""
    d, h = mask.shape
    padded = np.zeros((d, h + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rs, ss = np.nonzero(edges == 1)
    re, es = np.nonzero(edges == -1)
    o_s, o_e = np.lexsort((ss, rs)), np.lexsort((es, re))
    return rs[o_s].astype(np.int64), ss[o_s].astype(np.int64), es[o_e].astype(np.int64)


def seg_reduce(values: Floats, rows: Ints, starts: Ints, ends: Ints, ufunc: np.ufunc) -> Floats:
    """`ufunc.reduceat` over each run (row, [start, end)) of a NaN-free 2-D grid."""
    if rows.size == 0:
        return np.zeros(0)
    h = values.shape[1]
    flat = np.ascontiguousarray(values).ravel()
    first = rows * h + starts
    stop = rows * h + ends
    idx = np.empty(2 * rows.size, np.int64)
    idx[0::2] = first
    idx[1::2] = np.minimum(stop, flat.size - 1)
    out: Floats = ufunc.reduceat(flat, idx)[0::2].astype(np.float64)
    last = stop == flat.size  # reduceat cannot end a segment at the very end of the array
    for i in np.nonzero(last)[0]:
        out[i] = float(ufunc.reduce(flat[first[i]:stop[i]]))
    return out


def seg_median(values: Floats, rows: Ints, starts: Ints, ends: Ints) -> Floats:
    """Median of the finite values of each run (NaN where none), one lexsort for all runs."""
    if rows.size == 0:
        return np.zeros(0)
    lengths = ends - starts
    seg = np.repeat(np.arange(rows.size), lengths)
    offs = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    v = values[np.repeat(rows, lengths), np.repeat(starts, lengths) + offs]
    fin = np.isfinite(v)
    order = np.lexsort((np.where(fin, v, np.inf), seg))
    vs = np.where(fin, v, np.inf)[order]
    n = np.bincount(seg, weights=fin, minlength=rows.size).astype(np.int64)
    first = np.cumsum(lengths) - lengths
    lo = vs[first + np.maximum((n - 1) // 2, 0)]
    hi = vs[first + np.maximum(n // 2, 0)]
    out: Floats = np.where(n > 0, 0.5 * (lo + hi), np.nan)
    return out


def seg_argmax(values: Floats, rows: Ints, starts: Ints, ends: Ints) -> Ints:
    """Hour index of the largest value of each run (NaN-free grid)."""
    if rows.size == 0:
        return np.zeros(0, np.int64)
    lengths = ends - starts
    seg = np.repeat(np.arange(rows.size), lengths)
    hour = np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    order = np.lexsort((-values[np.repeat(rows, lengths), hour], seg))
    out: Ints = hour[order][np.cumsum(lengths) - lengths]
    return out


def _table(name: str, mask: Bools, evidence: Callable[[Ints, Ints, Ints], dict[str, Floats]],
           scope: str = "hours") -> FlagTable:
    r, s, e = runs(mask)
    return FlagTable(r, (name,) * r.size, s, e, (scope,) * r.size, evidence(r, s, e))


def _const(value: float, n: int) -> Floats:
    return np.full(n, float(value))


# --- detectors ------------------------------------------------------------------------------
def _fill(x: Floats) -> Floats:
    """Forward-fill NaN along rows (then the row median for leading NaN)."""
    ok = np.isfinite(x)
    idx = np.where(ok, np.arange(x.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(x, idx, axis=1)
    med = np.nan_to_num(nanstats.nanmedian(np.where(ok, x, np.nan), axis=1))
    out: Floats = np.where(np.isfinite(filled), filled, med[:, None])
    return out


def stuck_mask(values: Floats, min_hours: int = 6) -> Bools:
    """Hours inside a run of ≥ min_hours equal values (to 10⁻⁹). A missing hour neither breaks
    nor extends a run: a stuck channel with hourly gaps is still stuck."""
    x = values
    d, h = x.shape
    fin = np.isfinite(x)
    idx = np.where(fin, np.arange(h)[None, :], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    prev = np.full_like(x, np.nan)  # the previous finite value, for every hour
    prev[:, 1:] = np.where(idx[:, :-1] >= 0, np.take_along_axis(x, np.maximum(idx[:, :-1], 0), axis=1), np.nan)
    with np.errstate(invalid="ignore"):
        eq = fin & np.isclose(x, prev, rtol=1e-9, atol=1e-9)
    start = fin & ~eq  # a finite value that differs from the previous one starts a run
    run_id = np.cumsum(start, axis=1) + (np.arange(d) * (h + 1))[:, None]
    length = np.bincount(run_id[fin], minlength=d * (h + 1) + h + 1)
    out: Bools = fin & (length[run_id] >= min_hours)
    return out


def out_of_range_mask(values: Floats, low: float, high: float) -> Bools:
    with np.errstate(invalid="ignore"):
        out: Bools = (values < low) | (values > high)
    return out


def spike_scores(values: Floats, window: int = 25, min_mad: float = 1.0) -> tuple[Floats, Floats]:
    """Robust z-score against the device's own rolling median: 0.6745·(x − med)/MAD."""
    filled = _fill(values).astype(np.float32)
    med = median_filter(filled, size=(1, window), mode="nearest").astype(np.float64)
    dev = np.abs(values - med)
    mad = nanstats.nanmedian(np.where(np.isfinite(values), dev, np.nan), axis=1)
    mad = np.maximum(np.nan_to_num(np.atleast_1d(mad), nan=min_mad), min_mad)
    z: Floats = 0.6745 * (values - med) / mad[:, None]
    return z, med


def gap_mask(values: Floats, min_completeness: float = 0.75) -> tuple[Bools, Floats]:
    """Whole 24-h blocks whose share of valid hours is below min_completeness, and the shares.
    Hours before a device's first data are a sensor not yet installed, not missing data; a device
    with no data at all in the window is a gap everywhere."""
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
        share: Floats = np.where(expected > 0, got / np.maximum(expected, 1), np.nan)
        gap = share < min_completeness
    out: Bools = np.repeat(gap, 24, axis=1)[:, :h]
    return out, share


def humidity_mask(rh: Floats, limit: float = 85.0) -> Bools:
    with np.errstate(invalid="ignore"):
        out: Bools = rh > limit
    return out


def drift_pct_per_30d(values: Floats, ref: Floats) -> tuple[Floats, Floats, Floats]:
    """Trend over time of the residuals (value − ref) at a given reference level, in % of the
    mean reference per 30 days; the span in days of the pairs behind it; and the trend's t
    statistic over daily means. The residuals are first cleared of what the reference level
    explains (residual ~ 1 + ref + ref²): a calibration in the prediction direction shrinks
    towards the mean, so its residuals follow the level, and a few weeks of rising pollution
    must not look like drift. The trend is then fitted to the daily means of what is left, and
    must stand out of their day-to-day scatter."""
    ok = np.isfinite(values) & np.isfinite(ref)
    d, h = values.shape
    n = np.maximum(ok.sum(axis=1), 1)
    mean_ref = np.where(ok, ref, 0).sum(axis=1) / n

    def centred(x: Floats) -> Floats:
        c = np.where(ok, x, 0.0)
        out: Floats = np.where(ok, c - (c.sum(axis=1) / n)[:, None], 0.0)
        return out

    x = np.where(ok, ref, 0.0) / np.maximum(np.abs(mean_ref), 1.0)[:, None]
    cols = [centred(x), centred(x * x)]
    r = centred(values - ref)
    xtx = np.stack([np.stack([(a * b).sum(1) for b in cols], -1) for a in cols], -2)
    xty = np.stack([(a * r).sum(1) for a in cols], -1)
    good = (ok.sum(axis=1) > 4) & (np.abs(np.linalg.det(xtx)) > 1e-12)
    beta = np.linalg.solve(np.where(good[:, None, None], xtx, np.eye(2)), xty[..., None])[..., 0]
    e = np.where(ok, r - beta[:, 0:1] * cols[0] - beta[:, 1:2] * cols[1], 0.0)
    days = -(-h // 24)
    pad = days * 24 - h
    cnt = np.pad(ok, ((0, 0), (0, pad))).reshape(d, days, 24).sum(axis=2)
    tot = np.pad(e, ((0, 0), (0, pad))).reshape(d, days, 24).sum(axis=2)
    has = cnt >= 6  # a day counts with at least 6 pairs
    dm = np.where(has, tot / np.maximum(cnt, 1), 0.0)
    k = has.sum(axis=1)
    day = np.arange(days, dtype=np.float64)[None, :]
    dbar = np.where(has, day, 0).sum(axis=1) / np.maximum(k, 1)
    dd = np.where(has, day - dbar[:, None], 0.0)
    mbar = dm.sum(axis=1) / np.maximum(k, 1)
    sdd = (dd * dd).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (dd * np.where(has, dm - mbar[:, None], 0.0)).sum(axis=1) / sdd  # per day
        fit = np.where(has, dm - mbar[:, None] - slope[:, None] * dd, 0.0)
        se = np.sqrt((fit * fit).sum(axis=1) / np.maximum(k - 2, 1) / sdd)
        t: Floats = np.where(good & (k >= 3), slope / se, np.nan)
        pct: Floats = np.where(good, 100.0 * slope * 30.0 / np.abs(mean_ref), np.nan)
    tt = np.broadcast_to(np.arange(h) / 24.0, values.shape)
    span: Floats = np.where(ok.any(axis=1), np.where(ok, tt, -np.inf).max(axis=1)
                            - np.where(ok, tt, np.inf).min(axis=1), 0.0)
    return pct, span, t


def disagree_mask(values: Floats, env_low: Floats, env_high: Floats, *, rel: float = 0.3, abs_tol: float = 5.0,
                  fraction: float = 0.5) -> tuple[Bools, Floats]:
    """Days on which the value is outside the envelope (± tolerance) on more than `fraction` of
    its valid hours (days with fewer than 6 such hours are not judged); day mask and shares."""
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
        share: Floats = np.where(k >= 6, o / np.maximum(k, 1), np.nan)
    out: Bools = np.repeat(np.nan_to_num(share) > fraction, 24, axis=1)[:, :h]
    return out, share


def lag_correlations(values: Floats, ref: Floats, max_lag: int = 6) -> Floats:
    """Pearson r between device and reference at lags −max_lag..max_lag hours: (devices × lags).
    A positive lag means the device reports `lag` hours late."""
    out = np.full((values.shape[0], 2 * max_lag + 1), np.nan)
    h = values.shape[1]
    for i, lag in enumerate(range(-max_lag, max_lag + 1)):  # a loop over lags, not hours
        v, r = (values[:, lag:], ref[:, : h - lag]) if lag >= 0 else (values[:, :lag], ref[:, -lag:])
        ok = np.isfinite(v) & np.isfinite(r)
        n = np.maximum(ok.sum(axis=1), 1)
        dv = np.where(ok, v - (np.where(ok, v, 0).sum(1) / n)[:, None], 0)
        dr = np.where(ok, r - (np.where(ok, r, 0).sum(1) / n)[:, None], 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, i] = (dv * dr).sum(1) / np.sqrt((dv * dv).sum(1) * (dr * dr).sum(1))
        out[ok.sum(axis=1) < 24, i] = np.nan
    return out


# --- the flag sets of the pipeline ------------------------------------------------------------
@dataclass(frozen=True)
class Flags:
    masks: Mapping[str, Bools]  # flag → (D, H)
    table: FlagTable

    def hours(self, name: str) -> Ints:
        """Flagged hours per device."""
        m = self.masks.get(name)
        if m is None:
            return np.zeros(0, np.int64)
        out: Ints = m.sum(axis=1).astype(np.int64)
        return out


def hour_flags(values: Floats, *, rules: FlagRules, rh: Floats | None = None, ref: Floats | None = None,
               clock_counts: Floats | None = None) -> Flags:
    """The run flags of the (raw) hourly means: stuck, out of range, spike, gap, high humidity
    (with RH) and hours with readings the ingest flagged `clock`."""
    values = np.atleast_2d(values)
    filled = np.nan_to_num(values, nan=0.0)
    masks: dict[str, Bools] = {}
    parts: list[FlagTable] = []

    m = masks["stuck"] = stuck_mask(values, rules.stuck_hours)
    parts.append(_table("stuck", m, lambda r, s, e: {"value": values[r, s], "hours": (e - s).astype(float)}))

    m = masks["out_of_range"] = out_of_range_mask(values, rules.low, rules.high)
    parts.append(_table("out_of_range", m, lambda r, s, e: {
        "min": seg_reduce(filled, r, s, e, np.minimum), "max": seg_reduce(filled, r, s, e, np.maximum),
        "low": _const(rules.low, r.size), "high": _const(rules.high, r.size)}))

    z, med = spike_scores(values, rules.spike_window, rules.spike_min_mad)
    with np.errstate(invalid="ignore"):
        m = masks["spike"] = np.abs(z) > rules.spike_z
    az = np.nan_to_num(np.abs(z))

    def spike(r: Ints, s: Ints, e: Ints) -> dict[str, Floats]:
        k = seg_argmax(az, r, s, e)  # the hour of the largest |z| of each run
        return {"value": values[r, k], "rolling_median": med[r, k], "robust_z": z[r, k],
                "threshold": _const(rules.spike_z, r.size)}

    parts.append(_table("spike", m, spike))

    m, share = gap_mask(values, rules.gap_completeness)
    masks["gap"] = m
    day_share = np.repeat(np.nan_to_num(share, nan=1.0), 24, axis=1)[:, :values.shape[1]]
    parts.append(_table("gap", m, lambda r, s, e: {
        "completeness": seg_reduce(day_share, r, s, e, np.minimum),
        "threshold": _const(rules.gap_completeness, r.size)}))

    if rh is not None:
        m = masks["high_humidity"] = humidity_mask(rh, rules.humidity_max) & np.isfinite(values)
        rh0 = np.nan_to_num(rh)

        def humid(r: Ints, s: Ints, e: Ints) -> dict[str, Floats]:
            ev = {"max_rh": seg_reduce(rh0, r, s, e, np.maximum), "hours": (e - s).astype(float),
                  "threshold": _const(rules.humidity_max, r.size)}
            if ref is not None:
                with np.errstate(all="ignore"):
                    ratio = values / np.where(ref > 0, ref, np.nan)
                ev["median_ratio_to_reference"] = seg_median(ratio, r, s, e)
            return ev

        parts.append(_table("high_humidity", m, humid))

    clock = np.zeros(values.shape, bool)
    if clock_counts is not None:
        counts = np.nan_to_num(np.atleast_2d(clock_counts))
        clock = counts > 0
        parts.append(_table("clock", clock, lambda r, s, e: {
            "readings_with_bad_time": seg_reduce(counts, r, s, e, np.add)}))
    masks["clock"] = clock
    return Flags(masks, concat(parts))


def window_flags(calibrated: Floats, raw: Floats, ref: Floats, *, rules: FlagRules) -> Flags:
    """Verdicts over the whole window against the co-located reference: drift of the calibrated
    residuals, and a clock shift (best lag correlation of the raw values ≠ 0)."""
    d, h = raw.shape
    pct, span, t = drift_pct_per_30d(calibrated, ref)
    drift = ((np.nan_to_num(np.abs(pct)) > rules.drift_pct_per_30d) & (span >= rules.drift_min_days)
             & (np.nan_to_num(np.abs(t)) >= rules.drift_min_t))
    corr = np.full((d, 2 * rules.clock_max_lag + 1), np.nan)
    with_ref = np.nonzero(np.isfinite(ref).any(axis=1))[0]  # devices without a reference have no shift
    corr[with_ref] = lag_correlations(raw[with_ref], ref[with_ref], rules.clock_max_lag)
    has = np.isfinite(corr).any(axis=1)
    best = np.where(has, np.argmax(np.nan_to_num(corr, nan=-2.0), axis=1), rules.clock_max_lag)
    lag = best - rules.clock_max_lag
    r0 = corr[:, rules.clock_max_lag]
    rb = corr[np.arange(d), best]
    lagged = (lag != 0) & (np.nan_to_num(rb - r0) >= rules.clock_min_gain) & (np.nan_to_num(rb) >= 0.5)
    full = np.ones((d, h), bool) & np.isfinite(raw)
    dr = np.nonzero(drift)[0].astype(np.int64)
    lr = np.nonzero(lagged)[0].astype(np.int64)
    zeros, ends = np.zeros, np.full
    t_drift = FlagTable(dr, ("drift",) * dr.size, zeros(dr.size, np.int64), ends(dr.size, h, np.int64),
                        ("window",) * dr.size, {"pct_per_30_days": pct[dr], "span_days": span[dr],
                                                "t": t[dr], "threshold": _const(rules.drift_pct_per_30d, dr.size)})
    t_clock = FlagTable(lr, ("clock",) * lr.size, zeros(lr.size, np.int64), ends(lr.size, h, np.int64),
                        ("window",) * lr.size, {"lag_hours": lag[lr].astype(float), "r_at_lag": rb[lr],
                                                "r_at_zero": r0[lr]})
    masks = {"drift": drift[:, None] & full, "clock": lagged[:, None] & full}
    return Flags(masks, concat([t_drift, t_clock]))


def disagreement_flags(calibrated: Floats, env_low: Floats, env_high: Floats, *, rules: FlagRules) -> Flags:
    m, share = disagree_mask(calibrated, env_low, env_high, rel=rules.disagree_rel, abs_tol=rules.disagree_abs,
                             fraction=rules.disagree_fraction)
    day_share = np.repeat(np.nan_to_num(share), 24, axis=1)[:, :calibrated.shape[1]]
    t = _table("disagrees", m, lambda r, s, e: {
        "share_outside": seg_reduce(day_share, r, s, e, np.maximum), "days": np.ceil((e - s) / 24.0),
        "threshold": _const(rules.disagree_fraction, r.size), "tolerance_abs": _const(rules.disagree_abs, r.size),
        "tolerance_rel": _const(rules.disagree_rel, r.size)})
    return Flags({"disagrees": m}, t)


def merge(*sets: Flags) -> Flags:
    """One flag set from several (hour masks of the same name are or-ed)."""
    masks: dict[str, Bools] = {}
    for s in sets:
        for k, m in s.masks.items():
            masks[k] = masks[k] | m if k in masks else m
    return Flags(masks, concat([s.table for s in sets]))


def rh_stuck(rh: Floats, *, stuck_hours: int = 6, saturated: float = 99.0, saturated_hours: int = 24) -> Bools:
    """RH hours of a stuck channel: a constant value for ≥ 6 h, except near saturation where fog
    holds 100 % for hours; saturation for ≥ 24 h is a failed channel (the DHT22 at 99.9 % all day)."""
    with np.errstate(invalid="ignore"):
        sat = rh >= saturated
    out: Bools = (stuck_mask(rh, stuck_hours) & ~sat) | stuck_mask(rh, saturated_hours)
    return out


def rh_unusable(rh: Floats, *, stuck: Bools | None = None, stuck_hours: int = 6) -> Bools:
    """RH hours that may not be a regressor: stuck (above), missing, outside [0, 100]."""
    st = rh_stuck(rh, stuck_hours=stuck_hours) if stuck is None else stuck
    out: Bools = st | out_of_range_mask(rh, 0.0, 100.0) | ~np.isfinite(rh)
    return out


def rh_channel_flags(rh: Floats, *, stuck: Bools | None = None, stuck_hours: int = 6) -> Flags:
    """Flags of the RH channel itself (stored under the humidity quantity): stuck, out of [0, 100]."""
    st = rh_stuck(rh, stuck_hours=stuck_hours) if stuck is None else stuck
    oor = out_of_range_mask(rh, 0.0, 100.0)
    filled = np.nan_to_num(rh)
    t = concat([_table("stuck", st, lambda r, s, e: {"value": rh[r, s], "hours": (e - s).astype(float)}),
                _table("out_of_range", oor, lambda r, s, e: {
                    "min": seg_reduce(filled, r, s, e, np.minimum), "max": seg_reduce(filled, r, s, e, np.maximum),
                    "low": _const(0.0, r.size), "high": _const(100.0, r.size)})])
    return Flags({"stuck": st, "out_of_range": oor}, t)
