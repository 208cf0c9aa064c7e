"""The calibration job on database data: co-location, Huber refit, network model, EPA fallback,
flags, status history and calibrated means written into `hourly`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.calibration.synthetic import make_network
from civicair.core import tables
from civicair.core.security import pseudonym

pytestmark = pytest.mark.db

END = datetime(2026, 3, 15, tzinfo=UTC)
HOURS = 10 * 24
STATION = ("FR01011", 48.58, 7.75)


def seed(db, faults=None):
    net = make_network(4, HOURS, seed=7, faults=faults or {})
    start = END - timedelta(hours=HOURS)
    offsets = [(0.0, 0.0001), (0.0, -0.0002), (0.008, 0.0), (0.2, 0.2)]  # ~10 m, ~15 m, ~900 m, ~27 km
    models = ["SDS011", "SDS011", "SDS011", "PMS5003"]
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.reference_stations).values(code=STATION[0], name="Metz-Centre", lat=STATION[1],
                                                                 lon=STATION[2], pollutants=["pm25"],
                                                                 station_type="Urbaine / Fond"))
        # a traffic station ~150 m from device 2: nearer, but not a background station
        conn.execute(sa.insert(tables.reference_stations).values(code="FR99999", name="Boulevard", lat=STATION[1] + 0.0094,
                                                                 lon=STATION[2], station_type="Urbaine / Trafic"))
        conn.execute(sa.insert(tables.reference_readings), [
            {"station_code": STATION[0], "quantity": 2, "time": start + timedelta(hours=j),
             "value": float(net.ref[0, j]), "validity": 1, "source": "e2"} for j in range(HOURS)])
        ids = []
        for i in range(4):
            uid = f"ca-test{i}"
            ids.append(conn.execute(sa.insert(tables.devices).values(
                uid=uid, pseudonym=pseudonym("test-secret", uid), name=f"d{i}", kind="fixed", transport="mqtt",
                sensor_models=[models[i]], lat=STATION[1] + offsets[i][0], lon=STATION[2] + offsets[i][1],
            ).returning(tables.devices.c.id)).scalar_one())
        # the hourly rollup as the ingest maintains it: 4 readings per hour
        rows = []
        for i, dev in enumerate(ids):
            for j in range(HOURS):
                for q, v in ((2, net.raw[i, j]), (7, net.rh[i, j])):
                    if np.isfinite(v):
                        rows.append({"device_id": dev, "quantity": q, "hour": start + timedelta(hours=j), "n": 4,
                                     "sum": 4 * float(v), "sum_sq": 4 * float(v) ** 2, "min": float(v),
                                     "max": float(v), "mean": float(v), "n_flagged": 0, "flags_any": 0})
        # one hour with 2 of 4 readings fails the 75 % coverage rule; one has a clock-flagged reading
        rows[10]["n"] = 2
        rows[2 * 2 * HOURS + 12].update(n_flagged=1, flags_any=2)  # device 2, hour 6
        conn.execute(sa.insert(tables.hourly), rows)
    # all devices see the same station series for this test
    net.ref[:] = net.ref[0]
    return net, ids


def test_calibration_job_writes_models_means_flags_and_status(db, settings) -> None:
    net, ids = seed(db, faults={1: "stuck"})
    summary = run_calibration(settings, db, since=END - timedelta(hours=HOURS), now=END - timedelta(minutes=30))
    assert summary.devices == 4 and summary.colocated == 2
    with db.engine.connect() as conn:
        cal = {r.device_id: r for r in conn.execute(sa.select(tables.calibrations).where(tables.calibrations.c.active))}
        hourly = conn.execute(sa.select(tables.hourly.c.device_id, tables.hourly.c.hour, tables.hourly.c.mean,
                                        tables.hourly.c.calibrated_mean).where(tables.hourly.c.quantity == 2)
                               .order_by(tables.hourly.c.hour)).all()
        devs = {r.id: r for r in conn.execute(sa.select(tables.devices))}
        flags = conn.execute(sa.select(tables.device_flags)).all()
        hist = conn.execute(sa.select(tables.device_status_history)).all()
    assert cal[ids[0]].method == "huber" and cal[ids[0]].n_pairs >= 72
    assert cal[ids[0]].station_code == STATION[0]
    assert abs(cal[ids[0]].b - net.true_b[0]) < 0.05 * net.true_b[0]
    assert cal[ids[2]].method == "network"  # same type, not co-located
    assert cal[ids[2]].station_code == STATION[0]  # cross-checked against the background station
    assert len(cal[ids[0]].metrics["daily_stars"]) == HOURS // 24
    assert min(cal[ids[0]].metrics["daily_stars"].values()) >= 4
    assert cal[ids[3]].method == "epa"  # other type, no donor
    calibrated = np.array([h.calibrated_mean for h in hourly if h.device_id == ids[0] and h.calibrated_mean is not None])
    assert calibrated.size == HOURS - 1  # the under-covered hour gets no calibrated mean
    assert [h.calibrated_mean for h in hourly if h.device_id == ids[0]][5] is None
    rmse = np.sqrt(np.mean((calibrated - np.delete(net.ref[0], 5)) ** 2))
    raw_rmse = np.sqrt(np.mean((net.raw[0] - net.ref[0]) ** 2))
    print(f"device 0: RMSE raw {raw_rmse:.2f} → calibrated {rmse:.2f} µg/m³")
    assert rmse < 1.5 < raw_rmse
    clock = [f for f in flags if f.flag == "clock"]
    assert [(f.device_id, f.period_start, f.evidence) for f in clock] == [
        (ids[2], END - timedelta(hours=HOURS - 6), {"readings_with_bad_time": 1})]
    stuck = [f for f in flags if f.flag == "stuck"]
    assert [f.device_id for f in stuck] == [ids[1]] and stuck[0].evidence["hours"] >= 6
    assert devs[ids[0]].status == "reliable", [h.reasons for h in hist if h.device_id == ids[0]]
    assert devs[ids[1]].status in ("suspect", "unreliable")
    assert any("stuck" in r for h in hist if h.device_id == ids[1] for r in h.reasons)
    assert devs[ids[0]].stars is not None and devs[ids[0]].stars >= 4
    assert {h.device_id for h in hist} == set(ids)

    # a second run over the same window is idempotent for flags/history and keeps one active model
    run_calibration(settings, db, since=END - timedelta(hours=HOURS), now=END - timedelta(minutes=30))
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.device_flags)).scalar() == len(flags)
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.device_status_history)).scalar() == len(hist)
        active = conn.execute(sa.select(sa.func.count()).select_from(tables.calibrations)
                              .where(tables.calibrations.c.active, tables.calibrations.c.device_id == ids[0])).scalar()
        assert active == 1


def test_background_station_types() -> None:
    from civicair.calibration.service import is_background

    assert is_background("Urbaine / Fond") and is_background("suburban background") and is_background(None)
    assert not is_background("Urbaine / Trafic") and not is_background("industrial")


def test_envelope_uses_only_the_nearest_neighbours() -> None:
    from civicair.calibration.service import _nearest_only

    dist = np.array([[0, 5, 1, 3, 2], [5, 0, 1, 1, 1], [1, 1, 0, 1, 1], [3, 1, 1, 0, 1], [2, 1, 1, 1, 0]], float)
    nb = dist > 0
    kept = _nearest_only(nb, dist, 2)
    assert kept[0].tolist() == [False, False, True, False, True]  # distances 1 and 2, not 3 and 5
    assert not kept.diagonal().any()
