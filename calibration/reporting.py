"""Partner reports built from stored results (read-only): one device and quantity in whatever
state the last calibration run left it, a station with its co-located devices, the device list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from civicair.calibration import repository as repo
from civicair.calibration.geo import distance_matrix_m
from civicair.calibration.metrics import epa_target_results
from civicair.calibration.report import document, json_safe, state_of
from civicair.calibration.sensor_types import sensor_type
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.errors import DeviceNotFound, InvalidParameter, StationNotFound
from sqlalchemy.engine import Connection

RH_CODE = QUANTITY_BY_NAME["humidity"].code


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def quantity_code(name: str) -> int:
    q = QUANTITY_BY_NAME.get(name)
    if q is None:
        raise InvalidParameter("quantity", f"unknown quantity {name!r}; one of {', '.join(QUANTITY_BY_NAME)}")
    return q.code


def _flag(f: Any) -> dict[str, Any]:
    return {"flag": f.flag, "quantity": QUANTITY_BY_CODE[f.quantity].name if f.quantity else None,
            "scope": f.scope, "start": _iso(f.period_start), "end": _iso(f.period_end), "evidence": f.evidence}


def device_report(conn: Connection, pseudonym: str, quantity: str = "pm25") -> dict[str, Any]:
    dev = repo.device_by_pseudonym(conn, pseudonym)
    if dev is None:
        raise DeviceNotFound(f"no device {pseudonym!r}")
    code = quantity_code(quantity)
    history = repo.calibration_history(conn, dev.id, code)
    current = next((c for c in history if c.active), None)
    m: dict[str, Any] = (current.metrics or {}) if current is not None else {}
    model_type = m.get("sensor_type") or sensor_type(dev.sensor_models or [], quantity) or None
    station = None
    if current is not None and current.station_code:
        st = repo.station(conn, current.station_code)
        station = {"code": current.station_code, "name": st.name if st else None, "role": m.get("station_role")}
    if current is None:
        why = ("mobile devices are not calibrated" if dev.kind == "mobile"
               else f"no calibration run has assessed this device for {quantity} yet (no {quantity} data in a window)")
        reasons = [{"code": "not_assessed", "level": "note", "text": why}]
        window: dict[str, Any] = {}
        status, stars, kind = dev.status, dev.stars, "none"
    else:
        reasons = list(current.reasons or [])
        window = {"start": _iso(current.window_start), "end": _iso(current.window_end),
                  "hours_with_data": m.get("valid_hours"), "hours_paired_with_reference": current.n_pairs,
                  "window_hours": m.get("window_hours")}
        status, stars, kind = current.status or dev.status, current.stars, m.get("kind", "none")
    oof = m.get("out_of_fold")
    flags = [_flag(f) for f in repo.device_flags(conn, dev.id, [code, RH_CODE],
                                                 since=current.window_start if current is not None else None)]
    series = None
    if current is not None and current.window_start is not None and current.window_end is not None:
        series = _series(conn, dev.id, code, current.station_code, current.window_start, current.window_end)
    hours, valid = m.get("window_hours"), m.get("valid_hours")
    doc = document(
        title=f"Calibration report — device {dev.pseudonym} — {QUANTITY_BY_NAME[quantity].label}",
        device=dev.pseudonym, sensor_model=model_type, quantity=quantity, station=station, window=window, kind=kind,
        status=status, stars=stars, model=m.get("model"), cv=m.get("cv"), metrics={"out_of_fold": oof}, basis="cv",
        uncertainty_pct=current.uncertainty_pct if current is not None else None,
        sensor_class=current.sensor_class if current is not None else None,
        epa_targets=epa_target_results(oof) if oof and quantity == "pm25" else None, reasons=reasons, warnings=[],
        flags=flags, series=series, daily_stars=m.get("daily_stars"),
        extra={**({"state": "none"} if current is None else {}),  # never assessed (mobile, or no data)
               "completeness_pct": round(100 * valid / hours, 1) if hours and valid is not None else None,
               "device_status": dev.status, "device_stars": dev.stars, "kind_of_device": dev.kind,
               "calibrations": [_calibration(c) for c in history],
               "status_history": [{"changed_at": _iso(h.changed_at), "status": h.status, "stars": h.stars,
                                   "reasons": [_reason_text(r) for r in (h.reasons or [])]}
                                  for h in repo.status_history(conn, dev.id)]})
    return dict(json_safe(doc))


def _reason_text(r: Any) -> str:
    if not isinstance(r, dict):
        return str(r)
    return f"{r['quantity']}: {r.get('text', '')}" if r.get("quantity") else str(r.get("text", ""))


def _calibration(c: Any) -> dict[str, Any]:
    m = c.metrics or {}
    return {"fitted_at": _iso(c.fitted_at), "window_start": _iso(c.window_start), "window_end": _iso(c.window_end),
            "method": c.method, "kind": m.get("kind"), "a": c.a, "b": c.b, "c": c.c, "kappa": c.kappa,
            "n_pairs": c.n_pairs, "station": c.station_code, "uncertainty_pct": c.uncertainty_pct,
            "class": c.sensor_class, "status": c.status, "stars": c.stars, "active": c.active}


def _series(conn: Connection, device_id: int, code: int, station: str | None, start: datetime,
            end: datetime) -> dict[str, list[Any]] | None:
    if not station:
        return None
    rows = repo.hourly_series(conn, device_id, code, start, end)
    ref = {r.time: r.value for r in repo.reference_series(conn, [station], [code], start, end)}
    rh = {r.hour: r.mean for r in repo.hourly_series(conn, device_id, RH_CODE, start, end)}
    keep = [r for r in rows if r.hour in ref and r.mean is not None]
    if not keep:
        return None
    return {"hours": [r.hour.isoformat() for r in keep], "raw": [r.mean for r in keep],
            "calibrated": [r.calibrated_mean for r in keep], "reference": [ref[r.hour] for r in keep],
            "rh": [rh.get(r.hour) for r in keep]}


def device_list(conn: Connection, *, status: str | None = None, sensor_type_filter: str | None = None,
                device_ids: list[int] | None = None) -> list[dict[str, Any]]:
    rows = repo.partner_devices(conn, status=status, sensor_type=sensor_type_filter, device_ids=device_ids)
    models: dict[int, list[dict[str, Any]]] = {}
    for c in repo.active_calibrations(conn, [r.id for r in rows]):
        models.setdefault(c.device_id, []).append({
            "quantity": QUANTITY_BY_CODE[c.quantity].name, "unit": QUANTITY_BY_CODE[c.quantity].unit,
            "method": c.method, "state": state_of(c.kind or "none", c.status or ""), "status": c.status,
            "stars": c.stars, "station": c.station_code, "class": c.sensor_class, "uncertainty_pct": c.uncertainty_pct})
    return [{"device": r.pseudonym, "kind": r.kind, "sensor_models": list(r.sensor_models or []),
             "sensor_type": sensor_type(r.sensor_models or [], "pm25") or None, "status": r.status, "stars": r.stars,
             "h3_cell": r.h3_cell, "last_seen": _iso(r.last_seen), "models": models.get(r.id, [])} for r in rows]


def devices_at_station(conn: Connection, code: str, colocation_m: float) -> list[int]:
    """Ids of the fixed devices co-located with station `code` (the device list's station filter)."""
    wanted = {d["pseudonym"] for d in station_report(conn, code, colocation_m)["devices"]}
    return [d.id for d in repo.fixed_devices(conn) if d.pseudonym in wanted]


def station_report(conn: Connection, code: str, colocation_m: float, quantity: str = "pm25") -> dict[str, Any]:
    st = repo.station(conn, code)
    if st is None:
        raise StationNotFound(f"no reference station {code!r}")
    qcode = quantity_code(quantity)
    devices = []
    fixed = [d for d in repo.fixed_devices(conn) if d.lat is not None and d.lon is not None]
    if st.lat is not None and fixed:
        dist = distance_matrix_m(np.array([st.lat]), np.array([st.lon]), np.array([d.lat for d in fixed]),
                                 np.array([d.lon for d in fixed]))[0]
        active = {(c.device_id, c.quantity): c for c in repo.active_calibrations(conn, [d.id for d in fixed])}
        for d, dm in zip(fixed, dist.tolist(), strict=True):
            if dm > colocation_m:
                continue
            c = active.get((d.id, qcode))
            devices.append({"pseudonym": d.pseudonym, "distance_m": round(dm, 1), "status": d.status, "stars": d.stars,
                            "sensor_type": sensor_type(d.sensor_models or [], quantity) or None,
                            "method": c.method if c else None, "r2": float(c.r2) if c and c.r2 else None,
                            "uncertainty_pct": c.uncertainty_pct if c else None, "class": c.sensor_class if c else None,
                            "model": {"a": c.a, "b": c.b, "c": c.c} if c and c.a is not None else None})
    first, last, n = repo.reference_span(conn, code, qcode)
    return dict(json_safe({
        "station": {"code": st.code, "name": st.name, "network": st.network, "lat": st.lat, "lon": st.lon,
                    "type": st.station_type, "pollutants": st.pollutants},
        "quantity": quantity, "unit": QUANTITY_BY_NAME[quantity].unit, "colocation_distance_m": colocation_m,
        "devices": devices, "window": {"first_reading": _iso(first), "last_reading": _iso(last), "readings": n},
    }))
