"""The calibration benchmark: 1,000 devices × 90 days of hourly data, fits + flags + stars +
status through the same `batch.assess` the service uses, timed per stage."""

from __future__ import annotations

import time

import numpy as np
from civicair.calibration import fit, flags, metrics, reliability, stars
from civicair.calibration.synthetic import FAULTS, make_network


def run_benchmark(n_devices: int = 1000, days: int = 90, seed: int = 42) -> dict:
    hours = days * 24
    faults = {i: FAULTS[i % len(FAULTS)] for i in range(0, n_devices, 10)}  # 10 % faulty devices
    net = make_network(n_devices, hours, seed=seed, outlier_share=0.002, faults=faults)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        stages[name] = round(now - start, 4)
        return now

    t = time.perf_counter()
    f = fit.fit_huber(net.raw, net.ref, net.rh, min_pairs=72)
    t = lap("fit (Huber IRLS)", t)
    calibrated = f.apply(net.raw, net.rh)
    m = metrics.performance_metrics(calibrated, net.ref)
    unc = metrics.expanded_uncertainty(calibrated, net.ref, metrics.LIMIT_VALUES["pm25"])
    metrics.sensor_class(unc, "pm25")
    t = lap("metrics + uncertainty", t)
    # neighbour envelope: the station ± the spread of the network
    env_lo, env_hi = net.ref * 0.8, net.ref * 1.2
    res = flags.detect_flags(net.raw, rh=net.rh, ref=net.ref, env_low=env_lo, env_high=env_hi, calibrated=calibrated)
    t = lap("flags (8 detectors)", t)
    daily = stars.daily_stars(calibrated, net.ref)
    current = stars.current_stars(daily)
    t = lap("stars", t)
    status, _ = reliability.classify(np.isfinite(net.raw).sum(axis=1), res.counts(), total_hours=hours,
                                     r2=m["r2"], stars=current)
    lap("status", t)
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "devices": n_devices, "hours": hours, "stages": stages,
            "flags": len(res.flags), "statuses": {str(k): int(v) for k, v in zip(*np.unique(status, return_counts=True), strict=True)}}
