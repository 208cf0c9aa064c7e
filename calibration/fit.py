"""Candidate calibration models in the prediction direction, ``ref = f(raw, RH)``, fitted by
blocked time-series cross-validation for many devices at once (docs/calibration.md#candidate-models).

Grids are (devices × hours) with NaN where missing. Every fitted candidate is fitted on the
training part of every fold and on the whole window in one pass:

* the folds are a (devices × folds × hours) 0/1 weight tensor, so the sufficient statistics of
  every fold of every device come from one batched matmul ``W @ Zᵀ``;
* least-squares fits and their held-out squared errors are closed forms of those sums;
* Huber IRLS re-weights hours: one (D, F, H) @ (D, H, 9) matmul per iteration;
* κ-Köhler is profiled over a κ grid as one more block of columns.

Regressors are centred per device before summing (the summed normal equations of raw µg/m³ and
RH % are otherwise badly conditioned). Devices are processed in chunks, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
from civicair.calibration.grids import Bools, Floats, Int8s, Ints

CANDIDATES = ("identity", "network", "epa", "ols", "huber", "ols_rh", "huber_rh", "kohler")
IDENTITY, NETWORK, EPA, OLS, HUBER, OLS_RH, HUBER_RH, KOHLER = range(len(CANDIDATES))
# Complexity for the parsimony rule: parameters fitted here; Huber counts as slightly more than
# least squares, so it is chosen only when outliers make it clearly better.
COMPLEXITY: Floats = np.array([0, 0, 0, 2, 2.5, 3, 3.5, 3], np.float64)
USES_RH: Bools = np.array([False, False, True, False, False, True, True, True])
FITTED: Bools = np.array([False, False, False, True, True, True, True, True])
RH_FREE_FITTED = (OLS, HUBER)
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class EpaModel:
    """The US-EPA PurpleAir correction (Barkjohn, Gantt and Clements 2021) and the smoke-range
    extension used on AirNow: the one place its coefficients live."""

    a: float = 5.75
    b: float = 0.524
    c: float = -0.0862
    breakpoint: float = 343.0
    high_a: float = 2.97
    high_b: float = 0.46
    high_b2: float = 3.93e-4
    rh_default: float = 50.0  # used where the device has no usable RH

    def predict(self, raw: Floats, rh: Floats | None = None) -> Floats:
        pm = np.asarray(raw, np.float64)
        h = np.full_like(pm, self.rh_default) if rh is None else np.where(np.isfinite(rh), rh, self.rh_default)
        low = self.a + self.b * pm + self.c * h
        high = self.high_a + self.high_b * pm + self.high_b2 * pm * pm
        out: Floats = np.maximum(np.where(pm <= self.breakpoint, low, high), 0.0)
        return out


EPA_MODEL = EpaModel()


@dataclass(frozen=True)
class FitRules:
    folds: int = 5  # contiguous blocks holding equal numbers of usable hours
    gap_hours: int = 24  # training hours dropped on each side of a held-out block (hv-block CV)
    min_pairs: int = 72  # usable paired hours to try a fit at all
    min_fold_train: int = 24  # every fold must keep this many training hours
    huber_k: float = 1.345
    huber_iter: int = 10
    huber_tol: float = 1e-5
    huber_outlier_z: float = 3.5  # Huber is a candidate where outliers call for it: more than …
    huber_min_outliers: float = 0.01  # … 1 % of the least-squares residuals beyond 3.5 robust SD
    kappa_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    aw_cap: float = 0.98  # water activity cap of the Köhler factor (RH 98 %)
    rh_min_share: float = 0.5  # RH terms only if RH is usable on ≥ half of the usable pairs …
    rh_min_sd: float = 1.0  # … and varies by ≥ 1 %RH
    min_slope: float = 0.0  # b must exceed this: a sensor reading lower in dirtier air is broken
    ridge: float = 1e-12


def kohler_factor(rh: Floats, kappa: Floats | float, aw_cap: float) -> Floats:
    """Particle mass growth 1 + (κ/1.65)·a_w/(1 − a_w), a_w = RH/100 capped at `aw_cap`."""
    aw = np.clip(rh / 100.0, 0.0, aw_cap)
    out: Floats = 1.0 + (np.asarray(kappa, np.float64) / 1.65) * aw / (1.0 - aw)
    return out


def predict(method: Ints, a: Floats, b: Floats, c: Floats, kappa: Floats, raw: Floats, rh: Floats,
            aw_cap: float) -> Floats:
    """The reference estimate of candidate `method` per device (row; arrays broadcast to the
    (D, H) grid). RH where it is NaN enters as nothing: callers only use RH models on hours with
    usable RH. The Köhler factor and the EPA formula are computed for the rows that use them."""
    rhz = np.nan_to_num(rh)
    out: Floats = np.array(np.broadcast_to(a + b * raw + c * rhz, np.broadcast_shapes(raw.shape, rhz.shape)))
    rows = np.broadcast_to(method, out.shape)[:, 0]

    def part(x: Floats, idx: Ints) -> Floats:
        sub: Floats = np.broadcast_to(x, out.shape)[idx]
        return sub

    k = np.nonzero(rows == KOHLER)[0]
    if k.size:
        out[k] = part(a, k) + part(b, k) * part(raw, k) / kohler_factor(part(rhz, k), part(kappa, k), aw_cap) \
            + part(c, k) * part(rhz, k)
    e = np.nonzero(rows == EPA)[0]
    if e.size:
        out[e] = EPA_MODEL.predict(part(raw, e), part(rh, e))
    return out


@dataclass(frozen=True)
class CandidateFits:
    """Cross-validation evidence per device (D) and candidate (C)."""

    sse: Floats  # (D, C) pooled held-out squared error, inf where the candidate is not allowed
    sse_constant: Floats  # (D,) of the fold's training mean of the reference
    n_test: Floats  # (D,) held-out hours (the same for every candidate)
    coef: Floats  # (D, C, K+1, 4): a, b, c, κ per fold; index K = the whole training window
    fold: Int8s  # (D, H) held-out fold of each compared hour, −1 elsewhere
    n_pairs: Ints  # (D,) usable paired hours (before the RH restriction)
    rh_allowed: Bools  # (D,) RH terms allowed
    rh_hours: Ints  # (D,) usable pairs with usable RH
    rh_sd: Floats  # (D,) SD of RH over those hours
    enough: Bools  # (D,) enough hours for fitted candidates

    @property
    def folds(self) -> int:
        return int(self.coef.shape[2] - 1)

    def with_column(self, cand: int, sse: Floats, coef: Floats) -> CandidateFits:
        """A copy with candidate `cand` replaced (the network model, evaluated after the fits)."""
        new_sse = self.sse.copy()
        new_sse[:, cand] = sse
        new_coef = self.coef.copy()
        new_coef[:, cand] = coef[:, None, :]
        return _replace(self, sse=new_sse, coef=new_coef)



def _replace(fits: CandidateFits, **changes: Floats) -> CandidateFits:
    values = {f.name: getattr(fits, f.name) for f in fields(fits)}
    values.update(changes)
    return CandidateFits(**values)


def masked_median(x: Floats, mask: Bools) -> Floats:
    """Median along the last axis over the entries where `mask` holds (NaN where none), by one
    sort: masked-out entries become +inf and sort last (np.nanmedian takes a slow per-row path)."""
    v = np.sort(np.where(mask, x, np.inf), axis=-1)
    n = mask.sum(axis=-1)
    lo = np.take_along_axis(v, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(v, np.maximum(n // 2, 0)[..., None], axis=-1)[..., 0]
    out: Floats = np.where(n > 0, 0.5 * (lo + hi), np.nan)
    return out


def fold_weights(usable: Bools, k: int, gap: int) -> tuple[Floats, Int8s, Ints, Ints]:
    """Blocked CV: per device, k contiguous blocks holding equal numbers of usable hours; training
    hours within `gap` hours of a held-out block are dropped. Returns the training weights
    (D, k+1, H) (index k = every usable hour), the held-out fold per hour (−1 where unused), and
    each block's first and last hour (D, k) (h and −1 for an empty block)."""
    d, h = usable.shape
    n = usable.sum(axis=1)
    rank = np.cumsum(usable, axis=1) - 1
    fold = np.where(usable, (rank * k) // np.maximum(n, 1)[:, None], -1)
    test = fold[:, None, :] == np.arange(k)[None, :, None]
    j = np.arange(h)
    start = np.where(test, j, h).min(axis=2)
    end = np.where(test, j, -1).max(axis=2)
    far = (j < (start - gap)[..., None]) | (j > (end + gap)[..., None])
    train = np.concatenate([usable[:, None, :] & far, usable[:, None, :]], axis=1)
    return train.astype(np.float64), fold.astype(np.int8), start.astype(np.int64), end.astype(np.int64)


def _range_sums(cum: Floats, lo: Ints, hi: Ints) -> Floats:
    """Σ over hours lo..hi (inclusive; empty when lo > hi) of every row of a cumulative sum
    (D, M, H) along hours: (D, K, M)."""
    h = cum.shape[2]
    lo_c, hi_c = np.clip(lo, 0, h - 1), np.clip(hi, -1, h - 1)
    upper = np.take_along_axis(cum, np.maximum(hi_c, 0)[:, None, :], axis=2)
    lower = np.take_along_axis(cum, np.maximum(lo_c - 1, 0)[:, None, :], axis=2)
    upper = np.where((hi_c >= 0)[:, None, :], upper, 0.0)
    lower = np.where((lo_c >= 1)[:, None, :], lower, 0.0)
    out: Floats = np.where((lo_c <= hi_c)[:, None, :], upper - lower, 0.0).transpose(0, 2, 1)
    return out


def _solve(xtx: Floats, xty: Floats, ridge: float) -> Floats:
    p = xtx.shape[-1]
    scale = np.maximum(np.einsum("...ii->...", xtx), 1.0)
    a = xtx + (ridge * scale)[..., None, None] * np.eye(p)
    out: Floats = np.linalg.solve(a, xty[..., None])[..., 0]
    return out


_ORDER = ("1", "x", "r")


def _key(a: str, b: str) -> str:
    """Name of the sum of the product of regressors a and b ("1" is the constant)."""
    if a == "1":
        return b
    if b == "1":
        return a
    first, second = sorted((a, b), key=_ORDER.index)
    return first + second


def _normal(s: Mapping[str, Floats], cols: tuple[str, ...]) -> tuple[Floats, Floats]:
    xtx = np.stack([np.stack([s[_key(a, b)] for b in cols], axis=-1) for a in cols], axis=-2)
    xty = np.stack([s[c + "y"] if c != "1" else s["y"] for c in cols], axis=-1)
    return xtx, xty


def _quad_sse(s: Mapping[str, Floats], beta: Floats, cols: tuple[str, ...]) -> Floats:
    """Σw(y − Xβ)² from sums: yy − 2β'X'y + β'X'Xβ."""
    xtx, xty = _normal(s, cols)
    out: Floats = s["yy"] - 2 * (beta * xty).sum(-1) + np.einsum("...i,...ij,...j->...", beta, xtx, beta)
    return out


def rh_eligible(hours: Bools, rh: Floats, rh_usable: Bools, rules: FitRules) -> tuple[Bools, Ints, Floats]:
    """May RH be a regressor for each device, judged on `hours` (its usable pairs, or its hours
    with data)? RH must be usable on ≥ `rh_min_share` of them (and ≥ min_pairs) and vary by ≥
    `rh_min_sd`. Also returns the usable hours and the SD."""
    with np.errstate(invalid="ignore"):
        ok = rh_usable & np.isfinite(rh) & (rh >= 0) & (rh <= 100)
    both = hours & ok
    n_rh = both.sum(axis=1)
    mean = np.where(both, rh, 0.0).sum(axis=1) / np.maximum(n_rh, 1)
    sd: Floats = np.sqrt(np.where(both, (rh - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(n_rh - 1, 1))
    allowed: Bools = (n_rh >= rules.rh_min_share * hours.sum(axis=1)) & (sd >= rules.rh_min_sd) & (n_rh >= rules.min_pairs)
    return allowed, n_rh.astype(np.int64), sd


def fit_candidates(raw: Floats, ref: Floats, rh: Floats, *, usable_pair: Bools, rh_usable: Bools,
                   epa_allowed: Bools, rules: FitRules, chunk: int = 32) -> CandidateFits:
    """Every candidate but the network model (see `with_column`), cross-validated per device.
    `usable_pair`: paired hours not flagged as sensor faults; `rh_usable`: hours whose RH may be
    a regressor (finite, in range, not stuck)."""
    d, h = raw.shape
    pairs = (usable_pair & np.isfinite(raw) & np.isfinite(ref)).sum(axis=1)
    rows = np.nonzero(pairs >= rules.min_pairs)[0]  # most devices have no reference: nothing to fit
    parts = [_fit_chunk(raw[s], ref[s], rh[s], usable_pair[s], rh_usable[s], epa_allowed[s], rules)
             for s in (rows[i:i + chunk] for i in range(0, rows.size, chunk))]
    if len(parts) == 1 and rows.size == d:
        return parts[0]
    k = rules.folds
    out = {"sse": np.full((d, len(CANDIDATES)), np.inf), "sse_constant": np.full(d, np.nan), "n_test": np.zeros(d),
           "coef": np.zeros((d, len(CANDIDATES), k + 1, 4)), "fold": np.full((d, h), -1, np.int8),
           "n_pairs": pairs.astype(np.int64), "rh_allowed": np.zeros(d, bool), "rh_hours": np.zeros(d, np.int64),
           "rh_sd": np.zeros(d), "enough": np.zeros(d, bool)}
    out["coef"][:, IDENTITY, :, 1] = 1.0
    for s, p in zip((rows[i:i + chunk] for i in range(0, rows.size, chunk)), parts, strict=True):
        for f in fields(CandidateFits):
            out[f.name][s] = getattr(p, f.name)
    return CandidateFits(**out)


def _fit_chunk(raw: Floats, ref: Floats, rh: Floats, usable_pair: Bools, rh_usable: Bools,
               epa_allowed: Bools, rules: FitRules) -> CandidateFits:
    d, h = raw.shape
    k = rules.folds
    usable_pair = usable_pair & np.isfinite(raw) & np.isfinite(ref)
    with np.errstate(invalid="ignore"):
        rh_usable = rh_usable & np.isfinite(rh) & (rh >= 0) & (rh <= 100)
    n_pair = usable_pair.sum(axis=1)
    rh_ok, n_rh, rh_sd = rh_eligible(usable_pair, rh, rh_usable, rules)
    # every candidate is compared on the same held-out hours
    usable = usable_pair & np.where(rh_ok[:, None], rh_usable, True)
    n_use = usable.sum(axis=1)
    train, fold, start, end = fold_weights(usable, k, rules.gap_hours)

    x = np.where(usable, raw, 0.0)
    y = np.where(usable, ref, 0.0)
    use_r = usable & rh_ok[:, None]
    r = np.where(use_r, rh, 0.0)
    r_full = np.where(rh_usable & rh_ok[:, None], rh, np.nan)
    nu = np.maximum(n_use, 1)[:, None]
    mx, mr = x.sum(axis=1, keepdims=True) / nu, r.sum(axis=1, keepdims=True) / nu
    xc = np.where(usable, x - mx, 0.0)
    rc = np.where(use_r, r - mr, 0.0)
    epa = np.where(usable, EPA_MODEL.predict(raw, r_full), 0.0)
    kappas = np.asarray(rules.kappa_grid, np.float64)
    g = kappas.size
    inv_g = 1.0 / kohler_factor(np.where(usable, np.nan_to_num(r_full), 0.0)[:, None, :], kappas[None, :, None],
                                rules.aw_cap)
    u = x[:, None, :] * inv_g  # (D, G, H) Köhler regressors raw/g(RH; κ)
    one = usable.astype(np.float64)
    base = {"1": one, "x": xc, "r": rc, "y": y, "xx": xc * xc, "xr": xc * rc, "xy": xc * y,
            "rr": rc * rc, "ry": rc * y, "yy": y * y, "eid": (y - x) ** 2, "eepa": (y - epa) ** 2}
    names = list(base)
    # Z (D, M, H) is zero outside the usable hours, and every fold's blocks are contiguous: one
    # cumulative sum along the hours gives every sum of every fold (the held-out block, and the
    # whole window minus the block and its gaps) by differences, with no product over folds.
    z = np.concatenate([np.stack([base[n] for n in names], axis=1), u, u * u, u * y[:, None, :]], axis=1)
    del u, inv_g
    np.cumsum(z, axis=2, out=z)
    total = z[:, :, -1][:, None, :]  # (D, 1, M)
    held = _range_sums(z, start, end)  # (D, K, M)
    dropped = _range_sums(z, start - rules.gap_hours, end + rules.gap_hours)
    sums = np.concatenate([total - dropped, total, held], axis=1)  # (D, 2K+1, M)
    nb = len(names)
    s_all = {n: sums[..., i] for i, n in enumerate(names)}
    su, suu, suy = sums[..., nb:nb + g], sums[..., nb + g:nb + 2 * g], sums[..., nb + 2 * g:nb + 3 * g]
    tr, te = slice(0, k + 1), slice(k + 1, 2 * k + 1)
    s_tr = {n: v[:, tr] for n, v in s_all.items()}
    s_te = {n: v[:, te] for n, v in s_all.items()}
    n_tr, n_te = s_tr["1"], s_te["1"]

    c_n = len(CANDIDATES)
    sse = np.full((d, c_n), np.inf)
    coef = np.zeros((d, c_n, k + 1, 4))
    sse[:, IDENTITY] = s_te["eid"].sum(1)
    coef[:, IDENTITY, :, 1] = 1.0
    sse[:, EPA] = np.where(epa_allowed, s_te["eepa"].sum(1), np.inf)
    coef[:, EPA, :, :3] = (EPA_MODEL.a, EPA_MODEL.b, EPA_MODEL.c)  # for the record; applied by its formula
    m = s_tr["y"][:, :k] / np.maximum(n_tr[:, :k], 1)
    sse_const = (s_te["yy"] - 2 * m * s_te["y"] + m * m * n_te).sum(1)

    for cand, cols in ((OLS, ("1", "x")), (OLS_RH, ("1", "x", "r"))):
        xtx, xty = _normal(s_tr, cols)
        beta = _solve(xtx, xty, rules.ridge)
        sse[:, cand] = _quad_sse(s_te, beta[:, :k], cols).sum(1)
        coef[:, cand, :, :len(cols)] = beta
    _huber(coef, sse, s_te, one, xc, rc, y, train, usable, rules)
    for cand in (OLS, HUBER, OLS_RH, HUBER_RH):  # back to raw units: a = a_c − b·mean(raw) − c·mean(RH)
        coef[:, cand, :, 0] -= coef[:, cand, :, 1] * mx + coef[:, cand, :, 2] * mr
    _kohler(coef, sse, s_tr, s_te, su, suu, suy, n_tr, n_te, rh_ok, kappas, rules)

    enough = (n_use >= rules.min_pairs) & (n_tr[:, :k].min(axis=1) >= rules.min_fold_train) & (n_te.min(axis=1) > 0)
    sse[:, FITTED] = np.where(enough[:, None], sse[:, FITTED], np.inf)
    sse[:, USES_RH & FITTED] = np.where(rh_ok[:, None], sse[:, USES_RH & FITTED], np.inf)
    sse = np.where(coef[:, :, k, 1] <= rules.min_slope, np.inf, sse)  # slope of the whole-window fit
    total_te = n_te.sum(axis=1)
    sse = np.where((total_te > 0)[:, None], sse, np.inf)
    return CandidateFits(sse=sse, sse_constant=sse_const, n_test=total_te, coef=coef,
                         fold=np.where(usable, fold, -1).astype(np.int8), n_pairs=n_pair.astype(np.int64),
                         rh_allowed=rh_ok, rh_hours=n_rh.astype(np.int64), rh_sd=rh_sd, enough=enough)


def _huber(coef: Floats, sse: Floats, s_te: Mapping[str, Floats], one: Floats, xc: Floats, rc: Floats, y: Floats,
           train: Floats, usable: Bools, rules: FitRules) -> None:
    """Huber M-estimates per fold by IRLS from the least-squares fits (coefficients still centred),
    for the devices whose least-squares residuals show outliers (more than `huber_min_outliers`
    of the hours beyond `huber_outlier_z` robust SD; Gaussian residuals have 0.05 % beyond 3.5):
    elsewhere Huber would only repeat least squares, and is not a candidate. The scale is the
    normalised MAD of the fold's least-squares residuals, held."""
    k = train.shape[1] - 1
    for cand, cols, start in ((HUBER, ("1", "x"), OLS), (HUBER_RH, ("1", "x", "r"), OLS_RH)):
        p = len(cols)
        full = coef[:, start, k, :p]
        xs = np.stack([one, xc, rc][:p], axis=1)  # (D, p, H)
        res = np.where(usable, y - np.einsum("dp,dph->dh", full, xs), 0.0)
        s = MAD_TO_SD * masked_median(np.abs(res), usable)
        far = np.abs(res) > rules.huber_outlier_z * np.maximum(np.nan_to_num(s, nan=np.inf), 1e-6)[:, None]
        share = (far & usable).sum(axis=1) / np.maximum(usable.sum(axis=1), 1)
        rows = np.nonzero(share > rules.huber_min_outliers)[0]
        coef[:, cand, :, :p] = coef[:, start, :, :p]  # for the record where Huber is not a candidate
        if rows.size == 0:
            continue
        beta = _irls(coef[rows, start, :, :p].copy(), xs[rows], y[rows], train[rows], one[rows], xc[rows], rc[rows],
                     cols, rules)
        s_rows = {n: v[rows] for n, v in s_te.items()}
        sse[rows, cand] = _quad_sse(s_rows, beta[:, :k], cols).sum(1)
        coef[rows, cand, :, :p] = beta


def _irls(beta: Floats, xs: Floats, y: Floats, train: Floats, one: Floats, xc: Floats, rc: Floats,
          cols: tuple[str, ...], rules: FitRules) -> Floats:
    zt = np.stack([one, xc, rc, y, xc * xc, xc * rc, xc * y, rc * rc, rc * y], axis=1).transpose(0, 2, 1)
    keys = ("1", "x", "r", "y", "xx", "xr", "xy", "rr", "ry")
    xt = np.ascontiguousarray(xs)
    resid = y[:, None, :] - np.matmul(beta, xt)
    scale = MAD_TO_SD * masked_median(np.abs(resid), train > 0)
    ks = rules.huber_k * np.maximum(np.nan_to_num(scale, nan=1.0), 1e-6)[..., None]
    wts, fit = np.empty_like(resid), np.empty_like(resid)
    for _ in range(rules.huber_iter):
        np.abs(resid, out=wts)  # wts = train · min(1, k·s/|r|) = train · k·s / max(|r|, k·s), in place
        np.maximum(wts, ks, out=wts)
        np.divide(ks, wts, out=wts)
        wts *= train
        sw = np.matmul(wts, zt)  # (D, K+1, 9)
        xtx, xty = _normal({n: sw[..., i] for i, n in enumerate(keys)}, cols)
        new = _solve(xtx, xty, rules.ridge)
        done = bool(np.abs(new - beta).max(initial=0.0) < rules.huber_tol * (1 + np.abs(beta).max(initial=0.0)))
        beta = new
        np.matmul(beta, xt, out=fit)
        np.subtract(y[:, None, :], fit, out=resid)
        if done:
            break
    return beta


def _kohler(coef: Floats, sse: Floats, s_tr: Mapping[str, Floats], s_te: Mapping[str, Floats], su: Floats,
            suu: Floats, suy: Floats, n_tr: Floats, n_te: Floats, rh_ok: Bools, kappas: Floats,
            rules: FitRules) -> None:
    """ref = a + b·raw/g(RH; κ): least squares in (a, b) for every κ of the grid, the κ of least
    training error per fold, its held-out error."""
    k = n_te.shape[1]
    tr, te = slice(0, k + 1), slice(k + 1, 2 * k + 1)
    n = n_tr[..., None]
    with np.errstate(all="ignore"):
        s_u, s_y = su[:, tr], s_tr["y"][..., None]
        s_uu, s_uy, s_yy = suu[:, tr], suy[:, tr], s_tr["yy"][..., None]
        det = n * s_uu - s_u * s_u
        b_k = (n * s_uy - s_u * s_y) / det
        a_k = (s_y - b_k * s_u) / n
        sse_tr = (s_yy - 2 * a_k * s_y - 2 * b_k * s_uy + a_k * a_k * n + 2 * a_k * b_k * s_u
                  + b_k * b_k * s_uu)
    sse_tr = np.where(np.isfinite(sse_tr) & (b_k > rules.min_slope), sse_tr, np.inf)
    gi = np.argmin(sse_tr, axis=2)  # (D, K+1)

    def take(arr: Floats, idx: Ints) -> Floats:
        out: Floats = np.take_along_axis(arr, idx[..., None], axis=2)[..., 0]
        return out

    a_sel, b_sel = take(a_k, gi), take(b_k, gi)
    gk = gi[:, :k]
    su_te, suu_te, suy_te = take(su[:, te], gk), take(suu[:, te], gk), take(suy[:, te], gk)
    a_f, b_f = a_sel[:, :k], b_sel[:, :k]
    with np.errstate(all="ignore"):
        sse_k = (s_te["yy"] - 2 * a_f * s_te["y"] - 2 * b_f * suy_te + a_f * a_f * n_te + 2 * a_f * b_f * su_te
                 + b_f * b_f * suu_te).sum(1)
    sse[:, KOHLER] = np.where(rh_ok, np.nan_to_num(sse_k, nan=np.inf), np.inf)
    coef[:, KOHLER, :, 0] = np.nan_to_num(a_sel)
    coef[:, KOHLER, :, 1] = np.nan_to_num(b_sel)
    coef[:, KOHLER, :, 3] = kappas[gi]
