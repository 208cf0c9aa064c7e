"""Known-truth synthetic networks for tests and the benchmark (pure, seeded).

The reference follows a diurnal cycle plus weather-like noise; each sensor reads
``raw = alpha + beta·ref + gamma·RH + noise`` with gross outliers, so the true calibration is
``ref = a + b·raw + c·RH`` with a = −alpha/beta, b = 1/beta, c = −gamma/beta. Faults can be
injected into chosen devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAULTS = ("stuck", "spike", "drift", "gap", "humid", "clock")


@dataclass
class Network:
    ref: np.ndarray  # (devices × hours): the co-located reference each device sees
    rh: np.ndarray
    raw: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    faults: dict[int, str]

    @property
    def true_a(self) -> np.ndarray:
        return -self.alpha / self.beta

    @property
    def true_b(self) -> np.ndarray:
        return 1.0 / self.beta

    @property
    def true_c(self) -> np.ndarray:
        return -self.gamma / self.beta


def make_network(
    n_devices: int, n_hours: int, *, seed: int = 0, noise_sd: float = 1.0, outlier_share: float = 0.0,
    outlier_size: float = 60.0, faults: dict[int, str] | None = None, max_rh: float = 80.0,
) -> Network:
    rng = np.random.default_rng(seed)
    t = np.arange(n_hours)
    diurnal = 6.0 * np.sin(2 * np.pi * (t - 8) / 24.0) + 4.0 * np.sin(2 * np.pi * t / (24 * 7))
    # weather: a smooth random walk shared by the area, plus a local component per device
    area = np.convolve(rng.normal(0, 3.0, n_hours + 48), np.ones(48) / 48 ** 0.5, "same")[:n_hours]
    base = np.clip(14.0 + diurnal + area, 2.0, None)
    ref = np.clip(base[None, :] + rng.normal(0, 1.0, (n_devices, n_hours)), 1.0, None)
    rh = np.clip(60 + 15 * np.sin(2 * np.pi * (t - 3) / 24.0)[None, :] + rng.normal(0, 4, (n_devices, n_hours)),
                 20, max_rh)
    alpha = rng.uniform(-3, 3, n_devices)
    beta = rng.uniform(1.2, 2.0, n_devices)
    gamma = rng.uniform(0.02, 0.12, n_devices)
    raw = alpha[:, None] + beta[:, None] * ref + gamma[:, None] * rh + rng.normal(0, noise_sd, ref.shape)
    if outlier_share:
        out = rng.random(ref.shape) < outlier_share
        raw = np.where(out, raw + outlier_size * rng.uniform(0.5, 1.5, ref.shape), raw)
    faults = dict(faults or {})
    for i, kind in faults.items():
        inject_fault(raw, rh, ref, i, kind, rng)
    raw = np.round(raw, 2)
    return Network(ref, rh, raw, alpha, beta, gamma, faults)


def inject_fault(raw, rh, ref, i: int, kind: str, rng: np.random.Generator) -> None:
    h = raw.shape[1]
    mid = h // 2
    if kind == "stuck":
        raw[i, mid: mid + 12] = raw[i, mid]
    elif kind == "spike":
        raw[i, mid] += 40 * raw[i].std() + 150
    elif kind == "drift":
        days = np.arange(h) / 24.0
        raw[i] *= 1.0 + 0.6 * days / 30.0
    elif kind == "gap":
        raw[i, mid: mid + 20] = np.nan
    elif kind == "humid":
        humid = slice(mid, mid + 18)
        rh[i, humid] = 95.0
        raw[i, humid] *= 2.5
    elif kind == "clock":
        raw[i] = np.roll(raw[i], 3)
    else:  # pragma: no cover
        raise ValueError(kind)
