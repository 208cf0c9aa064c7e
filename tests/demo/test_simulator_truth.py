"""The demo's clean simulated sensors must look clean to the calibration's QA rules: their
synthetic rush-hour peaks must not read as spikes (they did when the peaks were 1.2 h wide)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from civicair.calibration.flags import FlagRules, spike_scores
from civicair.demo.simulator import make_sensors, sensor_values


def test_clean_simulated_sensors_raise_no_spike_flag_over_a_fortnight() -> None:
    rules = FlagRules()
    clean = [s for s in make_sensors() if s.kind == "fixed" and not s.fault]
    rng = random.Random(3)
    start = datetime(2026, 11, 9, tzinfo=UTC)
    hourly = np.array([
        [np.mean([sensor_values(s, start + timedelta(hours=h, minutes=15 * q), rng, start)["pm25"] for q in range(4)])
         for h in range(14 * 24)]
        for s in clean])
    z, _ = spike_scores(hourly, rules.spike_window, rules.spike_min_mad)
    assert np.nanmax(np.abs(z)) < rules.spike_z
    # and a real spike on one of them is still found
    hourly[0, 100] += 40
    z, _ = spike_scores(hourly, rules.spike_window, rules.spike_min_mad)
    assert abs(z[0, 100]) > rules.spike_z
