"""What `civicair bench calibration` runs (docs in bench/calibration.py): the production
computation on synthetic grids against a plain numpy OLS of the same grids, timed in the same run.
Imported only when the benchmark runs (numpy and the pipeline are heavy for `civicair --help`)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np
from civicair.bench.calibration_data import mixed_network
from civicair.calibration.assess import assess
from civicair.calibration.fit import FitRules, fit_candidates
from civicair.calibration.flags import FlagRules, hour_flags, rh_unusable
from civicair.calibration.grids import CalibrationInput


def plain_ols(raw: np.ndarray, ref: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """The baseline: one OLS ref ~ 1 + raw + RH per device, by the normal equations, batched."""
    ok = np.isfinite(raw) & np.isfinite(ref) & np.isfinite(rh)
    x = np.stack([ok.astype(float), np.where(ok, raw, 0), np.where(ok, rh, 0)], axis=-1)
    y = np.where(ok, ref, 0)
    xtx = np.matmul(x.transpose(0, 2, 1), x) + 1e-9 * np.eye(3)
    out: np.ndarray = np.linalg.solve(xtx, np.matmul(x.transpose(0, 2, 1), y[..., None]))[..., 0]
    return out


def bench_input(devices: int, days: int, seed: int = 7) -> CalibrationInput:
    net = mixed_network(devices, days * 24, seed=seed)
    group = np.arange(devices) // 8
    neighbours = (group[:, None] == group[None, :]) & ~np.eye(devices, dtype=bool)
    types = tuple("PMS5003" if i % 4 == 0 else "SDS011" for i in range(devices))
    return CalibrationInput("pm25", net.raw, net.ref, net.rh, net.ref, neighbours, types,
                            np.array([t == "PMS5003" for t in types]))


def run_benchmark(devices: int = 1000, days: int = 90, repeat: int = 3) -> dict[str, Any]:
    inp = bench_input(devices, days)
    best, best_ols = float("inf"), float("inf")
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        plain_ols(inp.raw, inp.ref, inp.rh)
        best_ols = min(best_ols, time.perf_counter() - t)
        t = time.perf_counter()
        result = assess(inp)
        best = min(best, time.perf_counter() - t)
    assert result is not None
    # where the time goes: the two heaviest stages, timed again on their own
    t = time.perf_counter()
    flags = hour_flags(inp.raw, rules=FlagRules(), rh=inp.rh, ref=inp.ref)
    t_flags = time.perf_counter() - t
    usable = np.isfinite(inp.raw) & np.isfinite(inp.ref) & ~(flags.masks["stuck"] | flags.masks["spike"]
                                                            | flags.masks["out_of_range"])
    t = time.perf_counter()
    fit_candidates(inp.raw, inp.ref, inp.rh, usable_pair=usable, rh_usable=~rh_unusable(inp.rh),
                   epa_allowed=inp.epa_eligible, rules=FitRules())
    t_fit = time.perf_counter() - t
    humid = int(result.flags.hours("high_humidity").sum())
    return {"devices": devices, "hours": days * 24, "seconds": round(best, 3), "plain_ols_seconds": round(best_ols, 6),
            "ratio_to_plain_ols": round(best / best_ols, 1), "repeat": repeat, "target_seconds": 10.0,
            "stages_alone": {"flags": round(t_flags, 3), "candidate fits (8 candidates, 5 folds)": round(t_fit, 3)},
            "flags": len(result.flags.table), "humid_hours_flagged": humid,
            "methods": dict(Counter(result.method_name(i) for i in range(devices))),
            "statuses": dict(Counter(result.status))}
