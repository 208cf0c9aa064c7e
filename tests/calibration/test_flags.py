"""QA flags: injected faults are flagged and clean devices are not (precision/recall printed and
asserted), each flag carries evidence; real sensor.community files (stuck 99.9 % RH, spike)."""

from __future__ import annotations

import numpy as np
from civicair.calibration.batch import assess
from civicair.calibration.campaign import read_samples, sample_flags
from civicair.calibration.fit import fit_huber
from civicair.calibration.flags import FlagRules, detect_flags, lag_correlations, runs, stuck_mask
from civicair.calibration.pairing import hourly_means
from civicair.calibration.synthetic import FAULTS, make_network

EXPECTED_FLAG = {"stuck": "stuck", "spike": "spike", "drift": "drift", "gap": "gap", "humid": "high_humidity",
                 "clock": "clock"}


def test_injected_faults_are_flagged_and_clean_devices_are_not() -> None:
    n_dev = 120
    faults = {i: FAULTS[i % len(FAULTS)] for i in range(0, 60)}  # 60 faulty (10 of each), 60 clean
    net = make_network(n_dev, 30 * 24, seed=11, faults=faults)
    calibrated = fit_huber(net.raw, net.ref, net.rh).apply(net.raw, net.rh)
    res = detect_flags(net.raw, rh=net.rh, ref=net.ref, env_low=net.ref, env_high=net.ref, calibrated=calibrated)
    by_dev = res.by_device(n_dev)
    lines = []
    for kind in FAULTS:
        name = EXPECTED_FLAG[kind]
        truth = np.array([faults.get(i) == kind for i in range(n_dev)])
        pred = np.array([any(f.flag == name for f in by_dev[i]) for i in range(n_dev)])
        tp = int((truth & pred).sum())
        precision = tp / max(pred.sum(), 1)
        recall = tp / truth.sum()
        lines.append(f"{name:>14}: precision {precision:.2f} recall {recall:.2f} (flagged {int(pred.sum())})")
    clean = [i for i in range(n_dev) if i not in faults]
    false_alarms = sum(1 for i in clean if by_dev[i])
    lines.append(f"clean devices with any flag: {false_alarms}/{len(clean)} "
                 f"{sorted({f.flag for i in clean for f in by_dev[i]})}")
    print("\n" + "\n".join(lines))
    for line in lines[:-1]:
        precision, recall = float(line.split("precision ")[1][:4]), float(line.split("recall ")[1][:4])
        assert recall >= 0.9 and precision >= 0.9, line
    assert false_alarms <= 0.05 * len(clean)
    # every flag carries evidence
    assert all(f.evidence for f in res.flags)


def test_status_separates_faulty_from_clean_devices() -> None:
    faults = {0: "stuck", 1: "drift", 2: "spike"}
    net = make_network(8, 21 * 24, seed=5, faults=faults)
    a = assess(net.raw, net.ref, net.rh)
    assert a.status[0] in ("suspect", "unreliable") and a.status[1] == "unreliable" and a.status[2] == "suspect"
    assert set(a.status[3:].tolist()) == {"reliable"}, a.reasons[3:]
    assert (a.stars[3:] >= 4).all()
    assert (a.sensor_class[3:] == 1).all()


def test_detectors_on_tiny_grids() -> None:
    x = np.array([[1, 2, 5, 5, 5, 5, 5, 5, 3, 3, 3]], float)
    assert stuck_mask(x, 6)[0].tolist() == [False, False] + [True] * 6 + [False] * 3
    r, s, e = runs(np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 0]], bool))
    assert list(zip(r.tolist(), s.tolist(), e.tolist(), strict=True)) == [(0, 1, 3), (0, 4, 5), (1, 0, 1)]
    ref = np.sin(np.arange(200) / 5.0)[None, :] * 10 + 20
    lagged = np.roll(ref, 2, axis=1)
    corr = lag_correlations(lagged, ref, 4)
    assert int(np.nanargmax(corr[0])) - 4 == 2
    out = detect_flags(np.array([[10, 1200, 10, -5] + [10.0] * 20]), rules=FlagRules(low=0, high=1000))
    oor = [f for f in out.flags if f.flag == "out_of_range"]
    assert [(f.start, f.end) for f in oor] == [(1, 2), (3, 4)]
    assert oor[0].evidence["max"] == 1200
    clock = detect_flags(np.full((1, 24), 10.0) + np.arange(24), clock_counts=np.eye(1, 24, 5))
    assert [(f.flag, f.start, f.evidence) for f in clock.flags if f.flag == "clock"] == [
        ("clock", 5, {"readings_with_bad_time": 1})]


def test_real_sensor_community_stuck_humidity_and_spike(shared_data) -> None:
    dht = read_samples((shared_data / "2018-11-05_dht22_sensor_5332.csv").read_bytes())
    assert dht.rh is not None and np.all(dht.rh == 99.9)
    rh = hourly_means(dht.rh_times, dht.rh)
    res = detect_flags(rh.mean[None, :], rules=FlagRules(low=0, high=100), rh=rh.mean[None, :])
    names = {f.flag for f in res.flags}
    assert "stuck" in names and "high_humidity" in names
    stuck = next(f for f in res.flags if f.flag == "stuck")
    assert abs(stuck.evidence["value"] - 99.9) < 1e-6 and stuck.evidence["hours"] >= 6

    sds = read_samples((shared_data / "2018-11-05_sds011_sensor_5331.csv").read_bytes(), quantity="pm10")
    assert sds.source == "sensor.community" and sds.values.size > 500
    spikes = sample_flags(sds, 0, 1000)
    print(spikes)
    worst = max(spikes, key=lambda f: f["evidence"]["max_value"])
    assert worst["evidence"]["max_value"] > 200  # the Bonfire Night episode (PM10 222 µg/m³)
    assert worst["start"] >= "2018-11-05T17"  # in the evening
    assert worst["evidence"]["robust_z"] > 6
