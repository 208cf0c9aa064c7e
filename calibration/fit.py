"""Calibration models ``ref = a + b·raw + c·RH`` (docs/calibration.md#device-model), vectorised over devices.

Inputs are (devices × hours) grids with NaN for missing hours, so one call fits every device:
the normal equations of all devices are built with one ``einsum`` and solved with one batched
``numpy.linalg.solve``. The sensor is the noisy instrument, so the fit is done in the measurement
direction ``raw = α + β·ref + γ·RH`` (robust to sensor outliers, no errors-in-variables
attenuation) and inverted: a = −α/β, b = 1/β, c = −γ/β. The robust fit is Huber M-estimation by iteratively reweighted least
squares (k = 1.345, scale = normalised MAD of the residuals), the estimator scipy/statsmodels
call ``HuberT``, polished by three Tukey-bisquare steps at the Huber scale (an MM-style finish:
gross outliers get zero weight instead of Huber's 1/|r|); OLS is its first iteration. The US-EPA correction (Barkjohn et al. 2021) is the
fallback for PM2.5 sensors with no co-location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from civicair.calibration import nanstats

HUBER_K = 1.345
BISQUARE_C = 4.685
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class LinearModel:
    a: float
    b: float
    c: float
    method: str  # huber | ols | epa | network | identity
    n: int = 0

    def apply(self, raw: np.ndarray, rh: np.ndarray | None = None) -> np.ndarray:
        if self.method == "epa":
            return epa_correction(raw, rh)
        rh_term = 0.0 if rh is None or self.c == 0 else self.c * np.nan_to_num(np.asarray(rh, float))
        return self.a + self.b * np.asarray(raw, float) + rh_term

    def as_dict(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "c": self.c, "method": self.method, "n": self.n}


@dataclass(frozen=True)
class BatchFit:
    """One model per device (row of the input grids); NaN coefficients where too few pairs."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    n: np.ndarray  # pairs used
    method: str

    def model(self, i: int) -> LinearModel:
        return LinearModel(float(self.a[i]), float(self.b[i]), float(self.c[i]), self.method, int(self.n[i]))

    def apply(self, raw: np.ndarray, rh: np.ndarray | None = None) -> np.ndarray:
        rh_term = 0.0 if rh is None else self.c[:, None] * np.nan_to_num(rh)
        return self.a[:, None] + self.b[:, None] * raw + rh_term


def _design(raw: np.ndarray, ref: np.ndarray, rh: np.ndarray | None, use_rh: bool):
    raw = np.atleast_2d(np.asarray(raw, float))
    ref = np.atleast_2d(np.asarray(ref, float))
    valid = np.isfinite(raw) & np.isfinite(ref)
    if use_rh and rh is not None:
        rh = np.atleast_2d(np.asarray(rh, float))
        has_rh = valid & np.isfinite(rh)
        # A device uses the RH term only when most of its pairs carry RH.
        device_rh = has_rh.sum(axis=1) >= np.maximum(0.8 * valid.sum(axis=1), 3)
        valid = np.where(device_rh[:, None], has_rh, valid)
        rh_col = np.where(device_rh[:, None] & valid, rh, 0.0)
    else:
        device_rh = np.zeros(raw.shape[0], bool)
        rh_col = np.zeros_like(raw)
    # Measurement model: the sensor is the noisy side, so regress raw on (1, ref, RH) and invert.
    X = np.stack([valid.astype(float), np.where(valid, ref, 0.0), np.where(valid, rh_col, 0.0)], axis=-1)
    y = np.where(valid, raw, 0.0)
    return X, y, valid, device_rh


def _solve(X: np.ndarray, y: np.ndarray, w: np.ndarray, device_rh: np.ndarray) -> np.ndarray:
    xw = X * w[..., None]
    xtwx = np.matmul(xw.transpose(0, 2, 1), X)  # batched BLAS: (d,3,h) @ (d,h,3)
    xtwy = np.matmul(xw.transpose(0, 2, 1), y[..., None])[..., 0]
    # Devices without RH: pin c to 0; a tiny ridge keeps degenerate devices solvable.
    xtwx[~device_rh, 2, 2] += 1.0
    scale = np.maximum(np.einsum("dii->d", xtwx), 1.0)
    xtwx += (1e-10 * scale)[:, None, None] * np.eye(3)
    return np.linalg.solve(xtwx, xtwy[..., None])[..., 0]


def fit_ols(raw, ref, rh=None, *, use_rh: bool = True, min_pairs: int = 3) -> BatchFit:
    X, y, valid, device_rh = _design(raw, ref, rh, use_rh)
    beta = _solve(X, y, valid.astype(float), device_rh)
    return _result(beta, valid, min_pairs, "ols")


def fit_huber(
    raw, ref, rh=None, *, use_rh: bool = True, min_pairs: int = 3, k: float = HUBER_K,
    max_iter: int = 50, tol: float = 1e-7, bisquare_steps: int = 3,
) -> BatchFit:
    """Huber IRLS for every device at once (rows are devices, columns hours), then a few
    Tukey-bisquare steps from the Huber solution with the same scale (an MM-style polish that
    gives zero weight to gross outliers, which Huber only down-weights)."""
    X, y, valid, device_rh = _design(raw, ref, rh, use_rh)
    w0 = valid.astype(float)
    beta = _solve(X, y, w0, device_rh)
    scale = np.ones(X.shape[0])
    for it in range(max_iter):
        resid = np.where(valid, y - np.matmul(X, beta[..., None])[..., 0], np.nan)
        if it < 3:  # re-estimate the scale early, then hold it (standard IRLS)
            med = nanstats.nanmedian(np.where(valid, resid, np.nan), axis=1) if valid.any() else 0.0
            mad = nanstats.nanmedian(np.abs(resid - np.atleast_1d(med)[:, None]), axis=1)
            scale = np.maximum(np.nan_to_num(MAD_TO_SD * mad, nan=1.0), 1e-6)
        a = np.abs(np.nan_to_num(resid)) / scale[:, None]
        w = np.where(valid, np.minimum(1.0, k / np.maximum(a, 1e-12)), 0.0)
        new = _solve(X, y, w, device_rh)
        done = nanstats.nanmax(np.abs(new - beta)) < tol * (1 + nanstats.nanmax(np.abs(beta)))
        beta = new
        if done:
            break
    for _ in range(bisquare_steps):
        resid = np.where(valid, y - np.matmul(X, beta[..., None])[..., 0], 0.0)
        a = np.abs(resid) / scale[:, None]
        w = np.where(valid & (a < BISQUARE_C), (1 - (a / BISQUARE_C) ** 2) ** 2, 0.0)
        beta = _solve(X, y, w, device_rh)
    return _result(beta, valid, min_pairs, "huber")


def _result(beta: np.ndarray, valid: np.ndarray, min_pairs: int, method: str) -> BatchFit:
    """Invert raw = α + β·ref + γ·RH into ref = a + b·raw + c·RH."""
    n = valid.sum(axis=1)
    alpha, beta_, gamma = beta[:, 0], beta[:, 1], beta[:, 2]
    bad = (n < min_pairs) | (np.abs(beta_) < 1e-6)
    with np.errstate(all="ignore"):
        a = np.where(bad, np.nan, -alpha / beta_)
        b = np.where(bad, np.nan, 1.0 / beta_)
        c = np.where(bad, np.nan, -gamma / beta_)
    return BatchFit(a, b, c, n, method)


def fit_robust_linear(raw, ref, rh=None, *, min_pairs: int = 3) -> LinearModel:
    """One device: the Huber model ``ref = a + b·raw + c·RH``."""
    return fit_huber(raw, ref, rh, min_pairs=min_pairs).model(0)



def epa_correction(pm25, rh=None) -> np.ndarray:
    """US-EPA PurpleAir correction (Barkjohn et al. 2021), as docs/calibration.md#us-epa-fallback states it:
    ``0.524·PM − 0.0862·RH + 5.75`` up to 343 µg/m³, ``0.46·PM + 3.93e-4·PM² + 2.97`` above.
    Missing RH is taken as 50 %; the result is never negative."""
    pm = np.asarray(pm25, float)
    h = np.full_like(pm, 50.0) if rh is None else np.where(np.isfinite(rh), np.asarray(rh, float), 50.0)
    low = 0.524 * pm - 0.0862 * h + 5.75
    high = 0.46 * pm + 3.93e-4 * pm**2 + 2.97
    return np.maximum(np.where(pm <= 343, low, high), 0.0)


EPA_MODEL = LinearModel(5.75, 0.524, -0.0862, "epa")
