"""The batched cross-validation against plain per-device loops: every fold of every candidate
recomputed with np.linalg.lstsq, an explicit IRLS loop and an explicit κ loop; the folds."""

from __future__ import annotations

import numpy as np
import pytest
from civicair.bench.calibration_data import scenario
from civicair.calibration.fit import (
    EPA_MODEL,
    HUBER,
    HUBER_RH,
    IDENTITY,
    KOHLER,
    MAD_TO_SD,
    OLS,
    OLS_RH,
    FitRules,
    fit_candidates,
    fold_weights,
    kohler_factor,
)

RULES = FitRules()


def _net(seed: int = 3, d: int = 6, h: int = 400):
    net = scenario("measurement", d, h, seed)
    raw, ref, rh = net.raw.copy(), net.ref.copy(), net.rh.copy()
    raw[0, 50:70] = np.nan  # a gap
    ref[1, 100:130] = np.nan
    rh[2, ::7] = np.nan  # RH missing now and then
    rng = np.random.default_rng(seed)
    for i in (3, 4)[: max(d - 3, 0)]:  # gross errors in 3 % of the hours: Huber becomes a candidate
        hit = rng.random(h) < 0.03
        raw[i, hit] += 40 + 30 * rng.random(hit.sum())
    return raw, ref, rh


def _loop_fits(raw, ref, rh, usable, rh_ok, i, rules):
    """Held-out SSE of OLS, OLS+RH, Huber, Huber+RH, Köhler and identity for device i, plainly."""
    use = usable[i] & (rh_ok[i] if True else True)
    train_w, fold, start, end = fold_weights(use[None], rules.folds, rules.gap_hours)
    out = {c: 0.0 for c in (IDENTITY, OLS, OLS_RH, HUBER, HUBER_RH, KOHLER)}
    x, y, r = raw[i], ref[i], rh[i]
    for k in range(rules.folds):
        tr = train_w[0, k] > 0
        te = fold[0] == k
        X1 = np.c_[np.ones(tr.sum()), x[tr]]
        X2 = np.c_[X1, r[tr]]
        for cand, X, cols in ((OLS, X1, 2), (OLS_RH, X2, 3)):
            beta = np.linalg.lstsq(X, y[tr], rcond=None)[0]
            Xt = np.c_[np.ones(te.sum()), x[te], r[te]][:, :cols]
            out[cand] += float(((y[te] - Xt @ beta) ** 2).sum())
            # Huber: IRLS from the least-squares fit, scale = normalised MAD of its residuals, held
            res = y[tr] - X @ beta
            s = MAD_TO_SD * np.median(np.abs(res))
            b = beta
            for _ in range(rules.huber_iter):
                w = np.minimum(1.0, rules.huber_k * s / np.maximum(np.abs(y[tr] - X @ b), 1e-12))
                new = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y[tr]))
                done = np.abs(new - b).max() < rules.huber_tol * (1 + np.abs(b).max())
                b = new
                if done:
                    break
            out[HUBER if cand == OLS else HUBER_RH] += float(((y[te] - Xt @ b) ** 2).sum())
        best = (np.inf, 0.0, 0.0)
        for kappa in rules.kappa_grid:
            u = x[tr] / kohler_factor(r[tr], kappa, rules.aw_cap)
            beta = np.linalg.lstsq(np.c_[np.ones(u.size), u], y[tr], rcond=None)[0]
            sse = float(((y[tr] - beta[0] - beta[1] * u) ** 2).sum())
            if beta[1] > 0 and sse < best[0]:
                best = (sse, beta[0], beta[1], kappa)
        ut = x[te] / kohler_factor(r[te], best[3], rules.aw_cap)
        out[KOHLER] += float(((y[te] - best[1] - best[2] * ut) ** 2).sum())
        out[IDENTITY] += float(((y[te] - x[te]) ** 2).sum())
    return out


def test_batched_cross_validation_equals_a_plain_loop_per_device() -> None:
    raw, ref, rh = _net()
    usable = np.isfinite(raw) & np.isfinite(ref)
    rh_ok = np.isfinite(rh)
    fits = fit_candidates(raw, ref, rh, usable_pair=usable, rh_usable=rh_ok, epa_allowed=np.ones(raw.shape[0], bool),
                          rules=RULES, chunk=4)  # two chunks: the concatenation is exercised too
    assert fits.rh_allowed.all()
    for i in range(raw.shape[0]):
        want = _loop_fits(raw, ref, rh, usable & rh_ok, rh_ok, i, RULES)
        for cand, sse in want.items():
            if cand in (HUBER, HUBER_RH) and not np.isfinite(fits.sse[i, cand]):
                assert i not in (3, 4), "outliers: Huber must be a candidate"
                continue  # no outliers: Huber would repeat least squares and is not a candidate
            tol = 3e-3 if cand in (HUBER, HUBER_RH) else 1e-7  # IRLS stops at its tolerance
            assert fits.sse[i, cand] == pytest.approx(sse, rel=tol), (i, cand)
        ok = usable[i] & rh_ok[i]
        assert fits.n_test[i] == ok.sum()
        epa = EPA_MODEL.predict(raw[i], rh[i])
        assert fits.sse[i, 2] == pytest.approx(float(((ref[i] - epa)[ok] ** 2).sum()), rel=1e-9)


def test_whole_window_coefficients_are_the_least_squares_fit() -> None:
    raw, ref, rh = _net(seed=5, d=3)
    usable = np.isfinite(raw) & np.isfinite(ref) & np.isfinite(rh)
    fits = fit_candidates(raw, ref, rh, usable_pair=usable, rh_usable=np.isfinite(rh),
                          epa_allowed=np.zeros(3, bool), rules=RULES)
    for i in range(3):
        ok = usable[i]
        beta = np.linalg.lstsq(np.c_[np.ones(ok.sum()), raw[i, ok], rh[i, ok]], ref[i, ok], rcond=None)[0]
        assert fits.coef[i, OLS_RH, RULES.folds, :3] == pytest.approx(beta, rel=1e-7, abs=1e-9)


def test_folds_are_contiguous_equal_blocks_with_gaps_around_the_held_out_one() -> None:
    usable = np.ones((1, 500), bool)
    usable[0, 100:160] = False
    train, fold, start, end = fold_weights(usable, 5, 24)
    n = usable.sum()
    sizes = [(fold[0] == k).sum() for k in range(5)]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
    for k in range(5):
        held = np.nonzero(fold[0] == k)[0]
        assert (start[0, k], end[0, k]) == (held.min(), held.max())
        t = train[0, k] > 0
        assert not t[held].any()  # no held-out hour in training
        near = (np.arange(500) >= held.min() - 24) & (np.arange(500) <= held.max() + 24)
        assert not (t & near).any()  # nor any hour within 24 h of the block
        assert (t == (usable[0] & ~near)).all()
    assert (train[0, 5] > 0).sum() == n


def test_a_fit_that_makes_the_sensor_fall_with_the_reference_is_not_allowed() -> None:
    rng = np.random.default_rng(0)
    ref = 10 + 5 * np.sin(np.arange(400) / 9)[None, :] + rng.normal(0, 1, (1, 400))
    raw = 40 - 2 * ref + rng.normal(0, 1, (1, 400))  # anti-correlated
    fits = fit_candidates(raw, ref, np.full_like(raw, np.nan), usable_pair=np.ones_like(raw, bool),
                          rh_usable=np.zeros_like(raw, bool), epa_allowed=np.zeros(1, bool), rules=RULES)
    assert np.isinf(fits.sse[0, [OLS, HUBER, KOHLER]]).all()
    assert np.isinf(fits.sse[0, [OLS_RH, HUBER_RH]]).all()  # no RH at all: RH terms not allowed
    assert not fits.rh_allowed[0] and np.isfinite(fits.sse[0, IDENTITY])
