"""Synthetic co-location networks for the calibration benchmark and tests, generated several ways
so that no single model is baked into what the method is judged on (seeded, numpy only).

The atmosphere is its own process: log-normal PM with a daily cycle, a multi-day synoptic AR(1)
and an hourly AR(1); relative humidity follows a daily cycle plus weather, humid at night (RH >
85 % is common). Each scenario then derives what the sensor reads from it differently:

* ``measurement``: raw = α + β·ref + γ·RH + ε (the sensor is the noisy instrument)
* ``prediction``: ref = 1 + b·raw^p + c·(RH − 60) + ε, curved and heteroscedastic
* ``low_r2``: raw = α + β·ref + ε with R² 0.2–0.4
* ``kohler``: raw = β·ref·(1 + κ/1.65·a_w/(1 − a_w)) + ε (hygroscopic growth)
* ``stuck_rh``: the measurement model with the RH channel stuck at 99.9 % for 5–10 days
* ``gaps``: outages of sensor and reference; ``spikes``: single hours and bursts of gross errors
* ``no_signal``: raw an independent process; ``latent``: both instruments see a latent truth
* ``drift``: the sensitivity grows by 25 % over the window

`make_network` keeps the earlier measurement-direction generator with injected faults (stuck,
spike, drift, gap, humid, clock) for the flag detectors' precision and recall.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

SCENARIOS = ("measurement", "prediction", "low_r2", "kohler", "stuck_rh", "gaps", "spikes", "no_signal", "latent",
             "drift")
FAULTS = ("stuck", "spike", "drift", "gap", "humid", "clock")


@dataclass
class Net:
    raw: np.ndarray
    ref: np.ndarray
    rh: np.ndarray  # as the sensor reports it
    scenario: str
    truth: np.ndarray | None = None  # the best predictor of ref, when known


def _ar1(rng: np.random.Generator, d: int, h: int, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(0, sd * np.sqrt(1 - phi**2), (d, h))
    x = np.empty((d, h))
    x[:, 0] = rng.normal(0, sd, d)
    for t in range(1, h):  # a generator, not product code: a loop over hours is fine here
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def atmosphere(rng: np.random.Generator, d: int, h: int, mean_pm: float = 9.0,
               humid: bool = False) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(h)
    diurnal = 0.25 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 2 * np.pi, (d, 1)))
    synoptic = _ar1(rng, d, h, np.exp(-1 / 72), 0.45)
    ref = mean_pm * np.exp(diurnal + synoptic + _ar1(rng, d, h, 0.7, 0.2) - 0.15)
    rh = (68 + (10 if humid else 0) - 15 * np.sin(2 * np.pi * (t - 9) / 24) + _ar1(rng, d, h, np.exp(-1 / 48), 10.0)
          + rng.normal(0, 3, (d, h)) + 4 * synoptic / 0.45)  # stagnant episodes are moist
    return ref, np.clip(rh, 15, 100)


def scenario(name: str, d: int = 200, h: int = 720, seed: int = 0) -> Net:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}")
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    ref, rh = atmosphere(rng, d, h, humid=name == "kohler")
    truth = None

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (d, 1))

    def noise() -> np.ndarray:
        return rng.normal(0, 1, (d, h))

    if name in ("measurement", "stuck_rh", "gaps", "spikes", "drift"):
        alpha, beta, gamma, sd = u(-3, 3), u(0.5, 2.0), u(0.0, 0.1), u(0.5, 2.0)
        if name == "stuck_rh":
            gamma = u(0.05, 0.15)
        gain = 1 + 0.25 * np.arange(h) / h if name == "drift" else 1.0
        raw = alpha + beta * ref * gain + gamma * rh + noise() * sd
    elif name == "prediction":  # the sensor is its own process; the reference follows from it
        s, rh = atmosphere(rng, d, h)
        b, p, c, sd = u(0.3, 0.9), u(0.8, 1.0), u(-0.08, 0.0), u(0.5, 2.0)
        truth = 1.0 + b * s**p + c * (rh - 60)
        ref = np.maximum(truth + noise() * sd * np.sqrt(np.maximum(truth, 1) / 8), 0.5)
        raw = s
    elif name == "low_r2":
        r2, beta, alpha = u(0.2, 0.4), u(0.6, 1.6), u(-2, 2)
        raw = alpha + beta * ref + noise() * beta * ref.std(axis=1, keepdims=True) * np.sqrt((1 - r2) / r2)
    elif name == "kohler":
        kappa, beta, sd = u(0.2, 0.6), u(0.7, 1.5), u(0.3, 1.0)
        aw = np.clip(rh / 100, 0, 0.97)
        raw = beta * ref * (1 + kappa / 1.65 * aw / (1 - aw)) + noise() * sd
    elif name == "no_signal":
        other, _ = atmosphere(rng, d, h)
        raw = other * u(0.5, 1.5)
    else:  # latent: errors in variables on both sides
        true = ref
        ref = np.maximum(true + noise(), 0.2)
        alpha, beta, gamma, sd = u(-2, 2), u(0.6, 1.8), u(0.0, 0.08), u(0.5, 2.0)
        raw = alpha + beta * true + gamma * rh + noise() * sd
    rh_rep = rh.copy()
    if name == "stuck_rh":
        s0, length = rng.integers(0, h // 2, d), rng.integers(5 * 24, 10 * 24, d)
        j = np.arange(h)
        rh_rep = np.where((j >= s0[:, None]) & (j < (s0 + length)[:, None]), 99.9, rh_rep)
    if name == "gaps":
        starts, lengths = rng.random((d, h)) < 0.05, rng.geometric(1 / 6, (d, h))
        miss = np.zeros((d, h), bool)
        for i, j in zip(*np.nonzero(starts), strict=True):
            miss[i, j:j + lengths[i, j]] = True
        o = rng.integers(0, max(h - 72, 1), d)
        miss |= (np.arange(h) >= o[:, None]) & (np.arange(h) < (o + 72)[:, None])
        raw = np.where(miss, np.nan, raw)
        ref = np.where(rng.random((d, h)) < 0.05, np.nan, ref)
    if name == "spikes":
        raw = np.where(rng.random((d, h)) < 0.01, raw + rng.uniform(50, 200, (d, h)), raw)
        burst = rng.random((d, h)) < 0.003
        burst = burst | np.roll(burst, 1, axis=1) | np.roll(burst, 2, axis=1)
        raw = np.where(burst, raw * 4, raw)
    return Net(np.round(raw, 2), ref, np.round(rh_rep, 1), name, truth)


def mixed_network(d: int, h: int, seed: int = 0) -> Net:
    """A network of devices drawn from every scenario in turn (the benchmark's grids)."""
    per = -(-d // len(SCENARIOS))
    nets = [scenario(s, per, h, seed) for s in SCENARIOS]
    order = np.argsort(np.arange(per * len(SCENARIOS)) % per, kind="stable")[:d]  # interleave scenarios

    def cat(f: str) -> np.ndarray:
        return np.concatenate([getattr(n, f) for n in nets])[order]

    return Net(cat("raw"), cat("ref"), cat("rh"), "mixed")


# --- the earlier generator, with injected faults ----------------------------------------------
@dataclass
class Network:
    ref: np.ndarray
    rh: np.ndarray
    raw: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    faults: dict[int, str]


def make_network(n_devices: int, n_hours: int, *, seed: int = 0, noise_sd: float = 1.0, outlier_share: float = 0.0,
                 outlier_size: float = 60.0, faults: dict[int, str] | None = None, max_rh: float = 80.0) -> Network:
    """raw = α + β·ref + γ·RH + noise around a smooth reference, with chosen faults injected."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_hours)
    diurnal = 6.0 * np.sin(2 * np.pi * (t - 8) / 24.0) + 4.0 * np.sin(2 * np.pi * t / (24 * 7))
    area = np.convolve(rng.normal(0, 3.0, n_hours + 48), np.ones(48) / 48 ** 0.5, "same")[:n_hours]
    base = np.clip(14.0 + diurnal + area, 2.0, None)
    ref = np.clip(base[None, :] + rng.normal(0, 1.0, (n_devices, n_hours)), 1.0, None)
    rh = np.clip(60 + 15 * np.sin(2 * np.pi * (t - 3) / 24.0)[None, :] + rng.normal(0, 4, (n_devices, n_hours)),
                 20, max_rh)
    alpha, beta, gamma = rng.uniform(-3, 3, n_devices), rng.uniform(1.2, 2.0, n_devices), rng.uniform(0.02, 0.12, n_devices)
    raw = alpha[:, None] + beta[:, None] * ref + gamma[:, None] * rh + rng.normal(0, noise_sd, ref.shape)
    if outlier_share:
        out = rng.random(ref.shape) < outlier_share
        raw = np.where(out, raw + outlier_size * rng.uniform(0.5, 1.5, ref.shape), raw)
    faults = dict(faults or {})
    for i, kind in faults.items():
        inject_fault(raw, rh, i, kind)
    return Network(ref, rh, np.round(raw, 2), alpha, beta, gamma, faults)


def inject_fault(raw: np.ndarray, rh: np.ndarray, i: int, kind: str) -> None:
    h = raw.shape[1]
    mid = h // 2
    if kind == "stuck":
        raw[i, mid: mid + 12] = raw[i, mid]
    elif kind == "spike":
        raw[i, mid] += 40 * raw[i].std() + 150
    elif kind == "drift":
        raw[i] *= 1.0 + 0.6 * (np.arange(h) / 24.0) / 30.0
    elif kind == "gap":
        raw[i, mid: mid + 20] = np.nan
    elif kind == "humid":
        rh[i, mid: mid + 18] = 95.0
        raw[i, mid: mid + 18] *= 2.5
    elif kind == "clock":
        raw[i] = np.roll(raw[i], 3)
    else:
        raise ValueError(kind)
