"""QA flags through the pipeline: injected faults are flagged and clean devices are not
(precision/recall printed and asserted); the columnar evidence equals a per-run computation; a
clean device's status does not depend on a faulty neighbour; real sensor.community files (stuck
99.9 % RH, a spike episode)."""

from __future__ import annotations

import numpy as np
import pytest
from civicair.bench.calibration_data import FAULTS, make_network
from civicair.calibration import flags as fl
from civicair.calibration.assess import assess
from civicair.calibration.campaign_files import read_samples, sample_spikes
from civicair.calibration.grids import CalibrationInput
from civicair.calibration.pairing import hourly_means

EXPECTED_FLAG = {"stuck": "stuck", "spike": "spike", "drift": "drift", "gap": "gap", "humid": "high_humidity",
                 "clock": "clock"}


def _input(net, neighbours=None) -> CalibrationInput:
    d = net.raw.shape[0]
    nb = np.zeros((d, d), bool) if neighbours is None else neighbours
    return CalibrationInput("pm25", net.raw, net.ref, net.rh, net.ref, nb, ("SDS011",) * d, np.zeros(d, bool))


def test_injected_faults_are_flagged_and_clean_devices_are_not() -> None:
    n_dev = 120
    faults = {i: FAULTS[i % len(FAULTS)] for i in range(0, 60)}  # 60 faulty (10 of each), 60 clean
    net = make_network(n_dev, 30 * 24, seed=11, faults=faults)
    a = assess(_input(net))
    t = a.flags.table
    flagged = {(int(d), f) for d, f in zip(t.device.tolist(), t.flag, strict=True)}
    lines = []
    for kind in FAULTS:
        name = EXPECTED_FLAG[kind]
        truth = np.array([faults.get(i) == kind for i in range(n_dev)])
        pred = np.array([(i, name) in flagged for i in range(n_dev)])
        tp = int((truth & pred).sum())
        precision, recall = tp / max(pred.sum(), 1), tp / truth.sum()
        lines.append((name, precision, recall))
        print(f"{name:>14}: precision {precision:.2f} recall {recall:.2f} (flagged {int(pred.sum())})")
    clean = [i for i in range(n_dev) if i not in faults]
    false_alarms = sum(1 for i in clean if any(d == i for d, _ in flagged))
    print(f"clean devices with any flag: {false_alarms}/{len(clean)}")
    for name, precision, recall in lines:
        assert recall >= 0.9 and precision >= 0.9, (name, precision, recall)
    assert false_alarms <= 0.05 * len(clean)
    assert all(t.evidence_of(i) for i in range(len(t)))  # every flag carries evidence
    assert {a.status[i] for i in clean} == {"reliable"}
    assert a.status[0] == "unreliable" or a.status[0] == "suspect"  # stuck 12 h: suspect
    drift = [i for i, k in faults.items() if k == "drift"]
    assert {a.status[i] for i in drift} == {"unreliable"}
    assert all(a.stars[i] <= 2 for i in range(n_dev) if a.status[i] == "unreliable")


def test_columnar_evidence_equals_a_per_run_computation() -> None:
    faults = {i: FAULTS[i % len(FAULTS)] for i in range(12)}
    net = make_network(20, 20 * 24, seed=4, faults=faults, max_rh=100.0)
    net.rh[:] = np.clip(net.rh + 25, 0, 100)  # humid nights: many humid runs
    flags = fl.hour_flags(net.raw, rules=fl.FlagRules(), rh=net.rh, ref=net.ref)
    t = flags.table
    z, med = fl.spike_scores(net.raw, 25, 1.0)
    assert len(t) > 50
    for i in range(len(t)):
        d, s, e, ev = int(t.device[i]), int(t.start[i]), int(t.end[i]), t.evidence_of(i)
        seg = net.raw[d, s:e]
        assert flags.masks[t.flag[i]][d, s:e].all()
        if t.flag[i] == "high_humidity":
            assert ev["max_rh"] == pytest.approx(np.nanmax(net.rh[d, s:e]))
            ratio = seg / np.where(net.ref[d, s:e] > 0, net.ref[d, s:e], np.nan)
            assert ev["median_ratio_to_reference"] == pytest.approx(np.nanmedian(ratio))
            assert ev["hours"] == e - s
        elif t.flag[i] == "stuck":
            assert ev["value"] == seg[0] and ev["hours"] == e - s
        elif t.flag[i] == "spike":
            k = s + int(np.argmax(np.abs(z[d, s:e])))
            assert ev["value"] == net.raw[d, k] and ev["robust_z"] == pytest.approx(z[d, k])
            assert ev["rolling_median"] == pytest.approx(med[d, k])
    # run boundaries are those of the masks
    for name, m in flags.masks.items():
        r, s, e = fl.runs(m)
        rows = t.rows_of(name)
        assert sorted(zip(t.device[rows].tolist(), t.start[rows].tolist(), t.end[rows].tolist(), strict=True)) == \
            sorted(zip(r.tolist(), s.tolist(), e.tolist(), strict=True))


def test_a_clean_device_is_never_suspect_for_a_neighbours_fault() -> None:
    net = make_network(6, 20 * 24, seed=9)
    nb = ~np.eye(6, dtype=bool)
    base = assess(_input(net, nb))
    assert set(base.status) == {"reliable"}
    for fault in ("stuck", "drift", "spike", "clock", "humid"):
        bad = make_network(6, 20 * 24, seed=9, faults={0: fault})
        a = assess(_input(bad, nb))
        assert a.status[1:] == base.status[1:], (fault, [r.text for rs in a.reasons[1:] for r in rs])
        assert (a.stars[1:] == base.stars[1:]).all(), fault


def test_detectors_on_tiny_grids() -> None:
    x = np.array([[1, 2, 5, 5, 5, 5, 5, 5, 3, 3, 3]], float)
    assert fl.stuck_mask(x, 6)[0].tolist() == [False, False] + [True] * 6 + [False] * 3
    gappy = np.array([[1, 5, 5, np.nan, 5, 5, np.nan, np.nan, 5, 5, 2]], float)
    assert fl.stuck_mask(gappy, 6)[0].tolist() == [False, True, True, False, True, True, False, False, True, True,
                                                   False]  # a missing hour does not end a stuck run
    r, s, e = fl.runs(np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]], bool))
    assert list(zip(r.tolist(), s.tolist(), e.tolist(), strict=True)) == [(0, 1, 3), (0, 4, 5), (1, 0, 1)]
    ref = np.sin(np.arange(200) / 5.0)[None, :] * 10 + 20
    corr = fl.lag_correlations(np.roll(ref, 2, axis=1), ref, 4)
    assert int(np.nanargmax(corr[0])) - 4 == 2
    out = fl.hour_flags(np.array([[10, 1200, 10, -5] + [10.0] * 20]), rules=fl.FlagRules(low=0, high=1000))
    oor = out.table.rows_of("out_of_range")
    assert [(int(out.table.start[i]), int(out.table.end[i])) for i in oor] == [(1, 2), (3, 4)]
    assert out.table.evidence_of(int(oor[0]))["max"] == 1200
    clock = fl.hour_flags(np.full((1, 24), 10.0) + np.arange(24), rules=fl.FlagRules(),
                          clock_counts=3 * np.eye(1, 24, 5))
    rows = clock.table.rows_of("clock")
    assert [(int(clock.table.start[i]), clock.table.evidence_of(int(i))) for i in rows] == [
        (5, {"readings_with_bad_time": 3.0})]


def test_drift_is_a_trend_at_a_given_reference_level_not_a_rise_of_pollution() -> None:
    rng = np.random.default_rng(1)
    h = 20 * 24
    t = np.arange(h)
    ref = (12 + 10 * t / h + 8 * np.sin(2 * np.pi * t / 24))[None, :] + rng.normal(0, 1, (1, h))  # rising pollution
    shrunk = 0.7 * ref + 0.3 * ref.mean() + rng.normal(0, 1, (1, h))  # a calibration shrinking to the mean
    pct, _, _ = fl.drift_pct_per_30d(shrunk, ref)
    assert abs(pct[0]) < 5
    drifting = ref * (1 + 0.4 * np.arange(h) / h) + rng.normal(0, 1, (1, h))
    pct, span, t = fl.drift_pct_per_30d(drifting, ref)
    assert pct[0] > 20 and span[0] >= 19 and t[0] > 3


def test_real_sensor_community_stuck_humidity_and_spike(shared_data) -> None:
    dht = read_samples((shared_data / "2018-11-05_dht22_sensor_5332.csv").read_bytes())
    assert dht.rh is not None and np.all(dht.rh == 99.9)
    rh = hourly_means(dht.rh_times, dht.rh).mean[None, :]
    channel = fl.rh_channel_flags(rh)
    assert channel.masks["stuck"].all()  # saturated for 24 h: a failed channel, not fog
    assert fl.rh_unusable(rh).all()
    humid = fl.hour_flags(rh, rules=fl.FlagRules(low=0, high=100), rh=rh)
    assert humid.masks["high_humidity"].all()
    sds = read_samples((shared_data / "2018-11-05_sds011_sensor_5331.csv").read_bytes(), quantity="pm10")
    assert sds.source == "sensor.community" and sds.values.size > 500
    mask, spikes = sample_spikes(sds)
    worst = max(spikes, key=lambda f: f["evidence"]["max_value"])  # type: ignore[index]
    print(worst)
    assert worst["evidence"]["max_value"] > 200  # the Bonfire Night episode (PM10 222 µg/m³)
    assert str(worst["start"]) >= "2018-11-05T17" and worst["evidence"]["robust_z"] > 6
    assert mask.sum() == sum(f["evidence"]["samples"] for f in spikes)
