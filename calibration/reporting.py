"""Device and station reports for partners, built from stored results (read-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from civicair.calibration import repository as repo
from civicair.calibration.geo import distance_matrix_m
from civicair.calibration.report import json_safe
from civicair.core import tables
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.errors import DeviceNotFound, InvalidParameter, StationNotFound
from sqlalchemy.engine import Connection


def _iso(dt) -> str | None:
    return None if dt is None else dt.isoformat()


def _quantity(name: str) -> int:
    q = QUANTITY_BY_NAME.get(name)
    if q is None:
        raise InvalidParameter("quantity", f"unknown quantity {name!r}")
    return q.code


def device_report(conn: Connection, pseudonym: str, quantity: str = "pm25") -> dict[str, Any]:
    dev = repo.device_by_pseudonym(conn, pseudonym)
    if dev is None:
        raise DeviceNotFound(f"no device {pseudonym!r}")
    qcode = _quantity(quantity)
    history = [c for c in repo.calibration_history(conn, dev.id) if c.quantity == qcode]
    current = next((c for c in history if c.active), None)
    report: dict[str, Any] = {
        "device": dev.pseudonym, "kind": dev.kind, "sensor_type": dev.sensor_models[0] if dev.sensor_models else None,
        "quantity": quantity, "status": dev.status, "stars": dev.stars,
        "model": None, "metrics_calibrated": None, "uncertainty_pct": None, "class": None,
        "calibrations": [_calibration(c) for c in history],
        "status_history": [{"changed_at": _iso(h.changed_at), "status": h.status, "stars": h.stars,
                            "reasons": h.reasons} for h in repo.status_history(conn, dev.id)],
        "flags": [{"flag": f.flag, "quantity": QUANTITY_BY_CODE[f.quantity].name if f.quantity else None,
                   "start": _iso(f.period_start), "end": _iso(f.period_end), "evidence": f.evidence}
                  for f in repo.device_flags(conn, dev.id)],
    }
    if current is not None:
        report.update(model={"a": current.a, "b": current.b, "c": current.c, "method": current.method},
                      metrics_calibrated=current.metrics, uncertainty_pct=current.uncertainty_pct,
                      **{"class": current.sensor_class},
                      window={"start": _iso(current.window_start), "end": _iso(current.window_end),
                              "station": current.station_code, "pairs": current.n_pairs})
        if current.window_start and current.window_end:
            report["series"] = _series(conn, dev.id, qcode, current.station_code, current.window_start,
                                       current.window_end)
    return json_safe(report)


def _calibration(c) -> dict[str, Any]:
    return {"fitted_at": _iso(c.fitted_at), "window_start": _iso(c.window_start), "window_end": _iso(c.window_end),
            "method": c.method, "a": c.a, "b": c.b, "c": c.c, "n_pairs": c.n_pairs, "station": c.station_code,
            "metrics": c.metrics, "uncertainty_pct": c.uncertainty_pct, "class": c.sensor_class, "active": c.active}


def _series(conn: Connection, device_id: int, qcode: int, station: str | None, start, end) -> dict[str, list]:
    rows = repo.hourly_series(conn, device_id, qcode, start, end)
    ref = {}
    if station:
        ref = {r.time: r.value for r in repo.reference_series(conn, [station], qcode, start, end)}
    rh_code = QUANTITY_BY_NAME["humidity"].code
    rh = {r.hour: r.mean for r in repo.hourly_series(conn, device_id, rh_code, start, end)}
    keep = [r for r in rows if r.hour in ref and r.calibrated_mean is not None]
    return {"hours": [r.hour.isoformat() for r in keep], "raw": [r.mean for r in keep],
            "calibrated": [r.calibrated_mean for r in keep], "reference": [ref[r.hour] for r in keep],
            "rh": [rh.get(r.hour) for r in keep]}


def station_report(conn: Connection, code: str, colocation_m: float, quantity: str = "pm25") -> dict[str, Any]:
    import sqlalchemy as sa

    st = conn.execute(sa.select(tables.reference_stations).where(tables.reference_stations.c.code == code)).first()
    if st is None:
        raise StationNotFound(f"no reference station {code!r}")
    qcode = _quantity(quantity)
    devices = []
    fixed = [d for d in repo.fixed_devices(conn) if d.lat is not None and d.lon is not None]
    if st.lat is not None and fixed:
        dist = distance_matrix_m([st.lat], [st.lon], [d.lat for d in fixed], [d.lon for d in fixed])[0]
        active = {(c.device_id, c.quantity): c for c in
                  conn.execute(sa.select(tables.calibrations).where(tables.calibrations.c.active)).all()}
        for d, m in zip(fixed, dist, strict=True):
            if m > colocation_m:
                continue
            c = active.get((d.id, qcode))
            devices.append({"pseudonym": d.pseudonym, "distance_m": round(float(m), 1), "status": d.status,
                            "stars": d.stars, "sensor_type": d.sensor_models[0] if d.sensor_models else None,
                            "method": c.method if c else None, "r2": (c.metrics or {}).get("r2") if c else None,
                            "uncertainty_pct": c.uncertainty_pct if c else None, "class": c.sensor_class if c else None,
                            "model": {"a": c.a, "b": c.b, "c": c.c} if c else None})
    last = conn.execute(sa.select(sa.func.min(tables.reference_readings.c.time),
                                  sa.func.max(tables.reference_readings.c.time), sa.func.count())
                        .where(tables.reference_readings.c.station_code == code,
                               tables.reference_readings.c.quantity == qcode)).one()
    return json_safe({
        "station": {"code": st.code, "name": st.name, "network": st.network, "lat": st.lat, "lon": st.lon,
                    "type": st.station_type, "pollutants": st.pollutants},
        "quantity": quantity, "colocation_distance_m": colocation_m, "devices": devices,
        "window": {"first_reading": _iso(last[0]), "last_reading": _iso(last[1] + timedelta(hours=1) if last[1] else None),
                   "readings": last[2]},
    })
