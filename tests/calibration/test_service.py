"""The calibration job on database data (load → assess → store in the caller's transaction):
co-location, own models, the network model, the US-EPA correction for a Plantower sensor, nothing
for a sensor nobody can calibrate; flags, status history and calibrated means; runs repeated over a
sliding window change nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from civicair.bench.calibration_data import make_network
from civicair.calibration.service import run_calibration
from civicair.core import tables
from civicair.core.security import pseudonym

pytestmark = pytest.mark.db

END = datetime(2026, 3, 15, tzinfo=UTC)
HOURS = 10 * 24
STATION = ("FR01011", 48.58, 7.75)
START = END - timedelta(hours=HOURS)
# ~10 m, ~15 m, ~900 m, ~27 km, ~700 m
OFFSETS = [(0.0, 0.0001), (0.0, -0.0002), (0.008, 0.0), (0.2, 0.2), (-0.006, 0.003)]
MODELS = [["BME280", "SDS011"], ["SDS011", "BME280"], ["SDS011"], ["PMS5003", "BME280"], ["SPS30"]]
NO_RH_HOURS = range(100, 110)  # device 0's RH channel is silent for these hours


def seed(db, faults=None):
    net = make_network(5, HOURS, seed=7, faults=faults or {})
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.reference_stations).values(code=STATION[0], name="Metz-Centre", lat=STATION[1],
                                                                 lon=STATION[2], pollutants=["pm25"],
                                                                 station_type="Urbaine / Fond"))
        # a traffic station ~150 m from device 2: nearer, but not a background station
        conn.execute(sa.insert(tables.reference_stations).values(code="FR99999", name="Boulevard", lat=STATION[1] + 0.0094,
                                                                 lon=STATION[2], station_type="Urbaine / Trafic"))
        conn.execute(sa.insert(tables.reference_readings), [
            {"station_code": STATION[0], "quantity": 2, "time": START + timedelta(hours=j),
             "value": float(net.ref[0, j]), "validity": 1, "source": "e2"} for j in range(HOURS)])
        ids = []
        for i in range(5):
            uid = f"ca-test{i}"
            ids.append(conn.execute(sa.insert(tables.devices).values(
                uid=uid, pseudonym=pseudonym("test-secret", uid), name=f"d{i}", kind="fixed", transport="mqtt",
                sensor_models=MODELS[i], lat=STATION[1] + OFFSETS[i][0], lon=STATION[2] + OFFSETS[i][1],
            ).returning(tables.devices.c.id)).scalar_one())
        # the hourly rollup as the ingest maintains it: 4 readings per hour
        rows = []
        for i, dev in enumerate(ids):
            for j in range(HOURS):
                for q, v in ((2, net.raw[i, j]), (7, net.rh[i, j])):
                    if np.isfinite(v) and not (i == 0 and q == 7 and j in NO_RH_HOURS):
                        rows.append({"device_id": dev, "quantity": q, "hour": START + timedelta(hours=j), "n": 4,
                                     "sum": 4 * float(v), "sum_sq": 4 * float(v) ** 2, "min": float(v),
                                     "max": float(v), "mean": float(v), "n_flagged": 0, "flags_any": 0})
        rows[10]["n"] = 2  # device 0, hour 5: 2 of 4 readings fails the 75 % coverage rule
        # device 2, hour 6: three flagged readings, only one of them for a bad clock
        clock_row = next(r for r in rows if r["device_id"] == ids[2] and r["quantity"] == 2
                         and r["hour"] == START + timedelta(hours=6))
        clock_row.update(n_flagged=3, flags_any=1 | 2)
        conn.execute(sa.insert(tables.hourly), rows)
        t = START + timedelta(hours=6)
        conn.execute(sa.insert(tables.readings), [
            {"device_id": ids[2], "quantity": 2, "time": t + timedelta(minutes=5), "value": 9.0, "flags": 2},
            {"device_id": ids[2], "quantity": 2, "time": t + timedelta(minutes=20), "value": 5000.0, "flags": 1},
            {"device_id": ids[2], "quantity": 2, "time": t + timedelta(minutes=35), "value": 4000.0, "flags": 1}])
        # stale calibrated means of the uncalibratable device, from an earlier model
        conn.execute(sa.update(tables.hourly).where(tables.hourly.c.device_id == ids[4]).values(calibrated_mean=999.0))
    net.ref[:] = net.ref[0]  # every device sees the one station's series
    return net, ids


def calibrate(db, settings, now=END - timedelta(minutes=30)):
    with db.engine.begin() as conn:
        return run_calibration(conn, settings, since=START, now=now)


def test_calibration_job_writes_models_means_flags_and_status(db, settings) -> None:
    net, ids = seed(db, faults={1: "stuck"})
    summary = calibrate(db, settings)
    assert summary.devices == 5 and summary.colocated == 2
    with db.engine.connect() as conn:
        cal = {r.device_id: r for r in conn.execute(sa.select(tables.calibrations).where(
            tables.calibrations.c.active, tables.calibrations.c.quantity == 2))}
        hourly = conn.execute(sa.select(tables.hourly.c.device_id, tables.hourly.c.hour, tables.hourly.c.mean,
                                        tables.hourly.c.calibrated_mean).where(tables.hourly.c.quantity == 2)
                              .order_by(tables.hourly.c.hour)).all()
        devs = {r.id: r for r in conn.execute(sa.select(tables.devices))}
        flags = conn.execute(sa.select(tables.device_flags)).all()
        hist = conn.execute(sa.select(tables.device_status_history)).all()
    kinds = {i: cal[d].metrics["kind"] for i, d in enumerate(ids)}
    assert kinds == {0: "colocated", 1: "colocated", 2: "network", 3: "epa", 4: "none"}
    c0 = cal[ids[0]]
    assert c0.method in ("ols", "ols_rh", "huber", "huber_rh", "kohler") and c0.n_pairs >= 72
    assert c0.station_code == STATION[0] and c0.metrics["station_role"] == "co-located"
    assert c0.metrics["cv"]["skill"] > 0.9 and c0.sensor_class in (1, 2) and c0.status == "reliable"
    assert c0.metrics["sensor_type"] == "SDS011"  # its PM sensor, though BME280 is registered first
    assert cal[ids[2]].method == "network" and cal[ids[2]].metrics["model"]["donors"] == 2
    assert cal[ids[2]].station_code == STATION[0] and cal[ids[2]].metrics["station_role"] == "cross-check"
    assert cal[ids[3]].method == "epa" and cal[ids[3]].station_code is None  # 27 km: nothing to cross-check
    assert cal[ids[4]].method == "none" and cal[ids[4]].a is None
    assert any(r["code"] == "not_calibrated" for r in cal[ids[4]].reasons)
    assert len(c0.metrics["daily_stars"]) == HOURS // 24 and min(c0.metrics["daily_stars"].values()) >= 4

    by_dev: dict[int, list] = {}
    for h in hourly:
        by_dev.setdefault(h.device_id, []).append(h)
    d0 = by_dev[ids[0]]
    assert d0[5].calibrated_mean is None  # the under-covered hour
    calibrated = np.array([h.calibrated_mean for h in d0 if h.calibrated_mean is not None])
    assert calibrated.size == HOURS - 1
    rmse = np.sqrt(np.mean((calibrated - np.delete(net.ref[0], 5)) ** 2))
    raw_rmse = np.sqrt(np.mean((net.raw[0] - net.ref[0]) ** 2))
    print(f"device 0 ({c0.method}): RMSE raw {raw_rmse:.2f} → calibrated {rmse:.2f} µg/m³")
    assert rmse < 1.5 < raw_rmse
    if c0.metrics["model"]["rh_used"]:  # hours without RH: the RH-free fallback, never RH = 0
        fb = c0.metrics["model"]["fallback"]
        for j in NO_RH_HOURS:
            assert d0[j].calibrated_mean == pytest.approx(fb["a"] + fb["b"] * d0[j].mean)
    assert all(h.calibrated_mean is None for h in by_dev[ids[4]])  # stale values cleared
    epa = by_dev[ids[3]][50]
    assert epa.calibrated_mean == pytest.approx(0.524 * epa.mean - 0.0862 * net.rh[3, 50] + 5.75, abs=0.05)

    clock = [f for f in flags if f.flag == "clock"]
    assert [(f.device_id, f.period_start, f.evidence) for f in clock] == [
        (ids[2], START + timedelta(hours=6), {"readings_with_bad_time": 1})]  # not the 3 flagged readings
    stuck = [f for f in flags if f.flag == "stuck" and f.quantity == 2]
    assert [f.device_id for f in stuck] == [ids[1]] and stuck[0].evidence["hours"] >= 6
    assert devs[ids[0]].status == "reliable" and devs[ids[0]].stars >= 4
    assert devs[ids[1]].status == "suspect" and any(r["code"] == "stuck" for r in cal[ids[1]].reasons)
    assert {h.device_id for h in hist} == set(ids)
    assert all(isinstance(r, dict) and r["quantity"] for h in hist for r in h.reasons)

    # a second run over the same window changes nothing and keeps one active model
    again = calibrate(db, settings)
    assert again.status_changes == 0 and again.hourly_written == 0
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.device_flags)).scalar() == len(flags)
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.device_status_history)).scalar() == len(hist)
        active = conn.execute(sa.select(sa.func.count()).select_from(tables.calibrations).where(
            tables.calibrations.c.active, tables.calibrations.c.device_id == ids[0])).scalar()
        rows = conn.execute(sa.select(sa.func.count()).select_from(tables.calibrations).where(
            tables.calibrations.c.device_id == ids[0])).scalar()
    assert active == 1 and rows == 1  # the same day's earlier row is superseded, not piled up


def test_a_sliding_window_never_duplicates_flags(db, settings) -> None:
    """Each hourly run slides the window by one hour: whole-window verdicts are replaced, runs of
    hours that began before the window start are continued, not copied."""
    net, ids = seed(db, faults={0: "drift", 1: "clock"})
    with db.engine.begin() as conn:  # device 4 stuck over the first 30 h of the window
        conn.execute(sa.update(tables.hourly).where(tables.hourly.c.device_id == ids[4], tables.hourly.c.quantity == 2,
                                                    tables.hourly.c.hour < START + timedelta(hours=30))
                     .values(mean=17.3, sum=4 * 17.3))

    def flags():
        with db.engine.connect() as conn:
            return conn.execute(sa.select(tables.device_flags.c.device_id, tables.device_flags.c.flag,
                                          tables.device_flags.c.scope, tables.device_flags.c.period_start,
                                          tables.device_flags.c.period_end)
                                .where(tables.device_flags.c.quantity == 2)).all()

    for k in range(4):
        with db.engine.begin() as conn:
            run_calibration(conn, settings, since=START + timedelta(hours=k), now=END - timedelta(minutes=30) + timedelta(hours=k))
        f = flags()
        window = [x for x in f if x.scope == "window"]
        assert sorted((x.device_id, x.flag) for x in window) == [(ids[0], "drift"), (ids[1], "clock")], k
        stuck = [x for x in f if x.flag == "stuck" and x.device_id == ids[4]]
        assert len(stuck) == 1, (k, stuck)
        assert stuck[0].period_start == START and stuck[0].period_end == START + timedelta(hours=30)


def test_a_device_id_that_does_not_exist_is_one_clear_error(db, settings) -> None:
    from civicair.core.errors import DeviceNotFound

    with db.engine.begin() as conn, pytest.raises(DeviceNotFound):
        run_calibration(conn, settings, device_uid="nope")
