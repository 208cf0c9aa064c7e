"""Which model a device publishes, by out-of-sample evidence (docs/calibration.md#model-selection).

The simplest candidate whose cross-validated RMSE is within `parsimony` of the best is chosen; it
is published only when it beats the training-mean constant by `min_skill` (in MSE), is no worse
than the raw values, and the sensor follows the reference's hour-to-hour changes (or the model
explains so much of the reference out of sample that chance cannot explain it). A model using
RH gets an RH-free fallback (chosen the same way) for the hours whose RH is not usable. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from civicair.calibration.fit import (
    CANDIDATES,
    COMPLEXITY,
    EPA,
    FITTED,
    IDENTITY,
    USES_RH,
    CandidateFits,
    masked_median,
    predict,
)
from civicair.calibration.grids import Bools, Floats, Ints
from civicair.calibration.reasons import NOTE, UNRELIABLE, Reason

MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class SelectionRules:
    parsimony: float = 0.02  # a more complex candidate must lower the CV RMSE by more than 2 %
    min_skill: float = 0.10  # 1 − MSE/MSE(constant), out of sample
    min_track_t: float = 3.0  # t of the correlation of hour-to-hour changes, sensor vs reference …
    strong_skill: float = 0.7  # … unless the model explains this much out of sample on its own
    network_min_donors: int = 2  # published co-located devices of a type to form its network model


@dataclass(frozen=True)
class Selection:
    """Per device. `method` indexes fit.CANDIDATES (−1: nothing published); a, b, c, κ are the
    chosen model refitted on the whole training window; fa, fb the RH-free fallback."""

    method: Ints
    fallback: Ints
    a: Floats
    b: Floats
    c: Floats
    kappa: Floats
    fa: Floats
    fb: Floats
    cv_rmse: Floats  # (D, C), inf where a candidate was not allowed
    cv_rmse_constant: Floats
    skill: Floats  # of the published model (NaN when none)
    track_t: Floats
    assessed: Bools  # enough usable pairs with a co-located reference to judge a model
    reasons: tuple[tuple[Reason, ...], ...]

    def method_name(self, i: int) -> str:
        m = int(self.method[i])
        return "none" if m < 0 else CANDIDATES[m]


def tracking_t(raw: Floats, ref: Floats, usable: Bools, winsor: float = 3.0) -> Floats:
    """Does the sensor follow the reference's hour-to-hour changes? A heteroscedasticity-consistent
    t of Σ Δraw·Δref over consecutive usable hours, each change minus the device's mean change at
    that hour of the day (a shared daily cycle is no evidence), winsorised at 3 robust SD. Levels
    of two autocorrelated series correlate by chance over a few weeks; their changes do not.
    −inf with fewer than 24 changes."""
    ok = usable[:, 1:] & usable[:, :-1]
    dx = np.where(ok, raw[:, 1:] - raw[:, :-1], 0.0)
    dy = np.where(ok, ref[:, 1:] - ref[:, :-1], 0.0)
    h1 = dx.shape[1]
    onehot = (np.arange(1, h1 + 1)[:, None] % 24 == np.arange(24)[None, :]).astype(np.float64)
    cnt = np.maximum(ok.astype(np.float64) @ onehot, 1)
    dx = np.where(ok, dx - ((dx @ onehot) / cnt) @ onehot.T, 0.0)
    dy = np.where(ok, dy - ((dy @ onehot) / cnt) @ onehot.T, 0.0)
    for v in (dx, dy):  # a few coincident jumps must not make a correlation
        s = np.nan_to_num(MAD_TO_SD * masked_median(np.abs(v), ok), nan=0.0)[:, None] * winsor
        np.clip(v, -s, s, out=v)
    n = np.maximum(ok.sum(1, keepdims=True), 1)
    dx = np.where(ok, dx - dx.sum(1, keepdims=True) / n, 0.0)
    dy = np.where(ok, dy - dy.sum(1, keepdims=True) / n, 0.0)
    p = dx * dy
    with np.errstate(all="ignore"):
        t = p.sum(1) / np.sqrt((p * p).sum(1))
    out: Floats = np.where(ok.sum(axis=1) >= 24, np.nan_to_num(t, nan=0.0), -np.inf)
    return out


def _choose(cv_rmse: Floats, cv_const: Floats, allowed: Bools, rules: SelectionRules) -> tuple[Ints, Floats]:
    """Simplest candidate within `parsimony` of the best; −1 when it does not beat the constant by
    `min_skill` or does worse than the raw values."""
    rm = np.where(allowed[None, :], cv_rmse, np.inf)
    best = rm.min(axis=1)
    within = rm <= best[:, None] * (1 + rules.parsimony)
    key = np.where(within, COMPLEXITY[None, :], 99.0)
    tie = key == key.min(axis=1, keepdims=True)
    chosen = np.where(tie & np.isfinite(rm), rm, np.inf).argmin(axis=1)
    r = rm[np.arange(rm.shape[0]), chosen]
    with np.errstate(all="ignore"):
        skill = 1 - r**2 / cv_const**2
    ok = np.isfinite(r) & (skill >= rules.min_skill) & (r <= cv_rmse[:, IDENTITY] + 1e-12)
    out: Ints = np.where(ok, chosen, -1).astype(np.int64)
    return out, skill


def choose(fits: CandidateFits, track_t: Floats, rules: SelectionRules, min_pairs: int) -> Selection:
    d = fits.sse.shape[0]
    k = fits.folds
    with np.errstate(all="ignore"):
        cv_rmse = np.sqrt(fits.sse / fits.n_test[:, None])
        cv_const = np.sqrt(fits.sse_constant / fits.n_test)
    method, skill = _choose(cv_rmse, cv_const, np.ones(len(CANDIDATES), bool), rules)
    fallback, _ = _choose(cv_rmse, cv_const, ~USES_RH, rules)
    uses_rh = USES_RH[np.maximum(method, 0)] & (method >= 0) & (method != EPA)
    assessed = fits.n_pairs >= min_pairs
    with np.errstate(invalid="ignore"):
        tracks = (track_t >= rules.min_track_t) | (skill >= rules.strong_skill)
    method = np.where(assessed & tracks, method, -1)
    fallback = np.where((method >= 0) & uses_rh & fits.rh_allowed, fallback, -1)
    idx = np.arange(d)
    full = fits.coef[idx, np.maximum(method, 0), k]
    fb = fits.coef[idx, np.maximum(fallback, 0), k]
    none = method < 0
    reasons = tuple(_reasons(i, fits, cv_rmse, cv_const, track_t, assessed, method, rules) for i in range(d))
    return Selection(method=method, fallback=fallback,
                     a=np.where(none, 0.0, full[:, 0]), b=np.where(none, 1.0, full[:, 1]),
                     c=np.where(none, 0.0, full[:, 2]), kappa=np.where(none, 0.0, full[:, 3]),
                     fa=np.where(fallback >= 0, fb[:, 0], np.nan), fb=np.where(fallback >= 0, fb[:, 1], np.nan),
                     cv_rmse=cv_rmse, cv_rmse_constant=cv_const, skill=np.where(none, np.nan, skill),
                     track_t=track_t, assessed=assessed, reasons=reasons)


def _reasons(i: int, fits: CandidateFits, cv_rmse: Floats, cv_const: Floats, track_t: Floats, assessed: Bools,
             method: Ints, rules: SelectionRules) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if fits.n_pairs[i] > 0 and not fits.rh_allowed[i]:
        out.append(Reason("rh_not_used", NOTE, (
            f"RH not used as a regressor: the channel is stuck, flat or missing on too many hours "
            f"(usable on {int(fits.rh_hours[i])} of {int(fits.n_pairs[i])} paired hours, "
            f"SD {fits.rh_sd[i]:.2f} %RH)")))
    if not assessed[i] or method[i] >= 0:
        return tuple(out)
    finite = np.isfinite(cv_rmse[i])
    best = float(np.max(1 - cv_rmse[i][finite] ** 2 / cv_const[i] ** 2)) if finite.any() else float("nan")
    if track_t[i] < rules.min_track_t and not best >= rules.strong_skill:
        out.append(Reason("no_signal", UNRELIABLE, (
            f"the sensor does not follow the reference's hour-to-hour changes (t = {_num(track_t[i])} "
            f"< {rules.min_track_t:g}) and no model explains {rules.strong_skill:.0%} of its variation: "
            "there is no signal to calibrate")))
    if not best >= rules.min_skill:
        out.append(Reason("no_skill", UNRELIABLE, (
            f"no calibration predicts the reference better than a constant out of sample "
            f"(best cross-validated skill {_num(best)} < {rules.min_skill:g})")))
    elif track_t[i] >= rules.min_track_t or best >= rules.strong_skill:
        out.append(Reason("worse_than_raw", UNRELIABLE,
                           "no calibration that beats a constant does better than the raw values"))
    k = fits.folds
    slopes = fits.coef[i, FITTED, k, 1]
    if fits.enough[i] and (slopes <= 0).all():
        out.append(Reason("negative_slope", UNRELIABLE, (
            f"the fitted slope is b = {float(slopes[0]):.3f} ≤ 0: the sensor does not rise with the "
            "reference, so every fitted model was rejected")))
    return tuple(out)


def _num(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{v:.2f}"


def fold_predictions(method: Ints, fits: CandidateFits, raw: Floats, rh: Floats, aw_cap: float) -> Floats:
    """Out-of-fold predictions of each device's `method` on its compared hours (NaN elsewhere):
    each hour predicted by the model fitted without its block, as production never sees its
    own future."""
    d = raw.shape[0]
    fold = fits.fold.astype(np.int64)
    cm = np.maximum(method, 0)
    c = fits.coef[np.arange(d), cm]  # (D, K+1, 4)
    f = np.maximum(fold, 0)
    a, b, cc, kap = (np.take_along_axis(c[..., j], f, axis=1) for j in range(4))
    pred = predict(cm[:, None], a, b, cc, kap, raw, np.where(fits.rh_allowed[:, None], rh, np.nan), aw_cap)
    out: Floats = np.where((fold >= 0) & (method >= 0)[:, None], pred, np.nan)
    return out


def apply(sel: Selection, raw: Floats, rh: Floats, rh_usable: Bools, rh_allowed: Bools, aw_cap: float) -> Floats:
    """The calibrated grid: the chosen model where RH is usable (or not needed), the RH-free
    fallback elsewhere (RH never enters as 0), NaN for devices with nothing published."""
    ok_rh = rh_usable & np.isfinite(rh) & rh_allowed[:, None]
    m = sel.method[:, None]
    main = predict(m, sel.a[:, None], sel.b[:, None], sel.c[:, None], sel.kappa[:, None], raw,
                   np.where(ok_rh, rh, np.nan), aw_cap)
    needs_rh = (USES_RH[np.maximum(sel.method, 0)] & (sel.method != EPA))[:, None]
    fb = np.where((sel.fallback >= 0)[:, None], sel.fa[:, None] + sel.fb[:, None] * raw, np.nan)
    out = np.where(needs_rh & ~ok_rh, fb, main)
    result: Floats = np.where((sel.method >= 0)[:, None] & np.isfinite(raw), out, np.nan)
    return result
