"""Calibration rules: reference imports, co-location, rolling refit, network models,
cross-checks, flags, stars, status, calibrated hourly means. Loads data through the repository,
computes with the pure modules, stores the results. The caller passes the Database; each public
function owns one transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from civicair.calibration import nanstats
from civicair.calibration import repository as repo
from civicair.calibration.batch import fault_hours
from civicair.calibration.fit import BatchFit, epa_correction, fit_huber
from civicair.calibration.flags import FlagRules, detect_flags
from civicair.calibration.geo import distance_matrix_m
from civicair.calibration.importers import ParseResult, parse_reference, parse_stations
from civicair.calibration.metrics import (
    LIMIT_VALUES,
    expanded_uncertainty,
    performance_metrics,
    sensor_class,
)
from civicair.calibration.reliability import ReliabilityRules, classify
from civicair.calibration.stars import comparison_series, current_stars, daily_stars
from civicair.core.db import Database
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.errors import DeviceNotFound
from civicair.core.settings import Settings

log = logging.getLogger(__name__)
CALIBRATED_QUANTITIES = ("pm25", "pm10", "no2", "o3")
RH_CODE = QUANTITY_BY_NAME["humidity"].code


# --- imports ------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    file: str
    parse: ParseResult
    written: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, **self.parse.summary(), "written": self.written,
                "bad_row_details": [{"line": n, "reason": r} for n, r in self.parse.bad_rows[:100]]}


def import_reference_file(db: Database, path: Path, fmt: str = "auto") -> ImportReport:
    result = parse_reference(path.read_bytes(), fmt)
    with db.engine.begin() as conn:
        repo.upsert_stations(conn, result.stations.values(), overwrite=False)
        pollutants: dict[str, set[str]] = {}
        for r in result.rows:
            pollutants.setdefault(r.station_code, set()).add(QUANTITY_BY_CODE[r.quantity].name)
        repo.add_station_pollutants(conn, pollutants)
        written = repo.upsert_reference_readings(conn, result.rows)
    return ImportReport(str(path), result, written)


def import_station_file(db: Database, path: Path) -> ImportReport:
    result = parse_stations(path.read_bytes())
    with db.engine.begin() as conn:
        written = repo.upsert_stations(conn, result.rows, overwrite=True)
    return ImportReport(str(path), result, written)


# --- the calibration job -------------------------------------------------------------------------
@dataclass
class CalibrationSummary:
    window_start: datetime
    window_end: datetime
    devices: int = 0
    colocated: int = 0
    fitted: int = 0
    network_models: int = 0
    epa_fallback: int = 0
    flags: int = 0
    hourly_written: int = 0
    status_changes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["window_start"] = self.window_start.isoformat()
        d["window_end"] = self.window_end.isoformat()
        return d


def _hour_floor(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def run_calibration(settings: Settings, db: Database, *, since: datetime | None = None,
                    device_uid: str | None = None, now: datetime | None = None,
                    progress: Callable[[str], None] | None = None) -> CalibrationSummary:
    end = _hour_floor(now or datetime.now(UTC)) + timedelta(hours=1)
    start = _hour_floor(since) if since else end - timedelta(days=settings.calibration_window_days)
    summary = CalibrationSummary(start, end)
    n_hours = int((end - start).total_seconds() // 3600)
    with db.engine.begin() as conn:
        devices = repo.fixed_devices(conn, device_uid)
        if device_uid is not None and not devices:
            raise DeviceNotFound(f"no fixed device with uid {device_uid!r}")
        devices = [d for d in devices if d.lat is not None and d.lon is not None]
        stations = [s for s in repo.stations(conn) if s.lat is not None and s.lon is not None]
        summary.devices = len(devices)
        if not devices:
            return summary
        ids = [d.id for d in devices]
        index = {d.id: i for i, d in enumerate(devices)}
        D = len(devices)
        if stations:
            dist = distance_matrix_m([d.lat for d in devices], [d.lon for d in devices],
                                     [s.lat for s in stations], [s.lon for s in stations])
            nearest = dist.argmin(axis=1)
            nearest_m = dist[np.arange(D), nearest]
            # cross-checks of non-co-located devices use the nearest background station
            # (regional background conditions); a station of unknown type is accepted
            background = np.array([is_background(s.station_type) for s in stations])
            dist_bg = np.where(background[None, :], dist, np.inf)
            nearest_bg = dist_bg.argmin(axis=1)
            nearest_bg_m = dist_bg[np.arange(D), nearest_bg]
        else:
            nearest = nearest_bg = np.zeros(D, int)
            nearest_m = nearest_bg_m = np.full(D, np.inf)
        colocated = nearest_m <= settings.colocation_distance_m
        crosscheck_at = np.where(colocated, nearest, nearest_bg)
        crosscheck = colocated | (nearest_bg_m <= settings.calibration_crosscheck_distance_m)
        summary.colocated = int(colocated.sum())
        dd = distance_matrix_m([d.lat for d in devices], [d.lon for d in devices],
                               [d.lat for d in devices], [d.lon for d in devices])
        types = np.array([(d.sensor_models[0] if d.sensor_models else "") for d in devices])
        neighbours = (dd <= settings.calibration_neighbour_distance_m) & (types[:, None] == types[None, :])
        np.fill_diagonal(neighbours, False)
        neighbours = _nearest_only(neighbours, dd, MAX_NEIGHBOURS)

        codes = [QUANTITY_BY_NAME[q].code for q in CALIBRATED_QUANTITIES]
        rows = repo.hourly_raw(conn, ids, [*codes, RH_CODE], start, end)
        grids = _to_grids(rows, index, start, D, n_hours)
        rh = _covered(grids[RH_CODE], settings.coverage_min) if RH_CODE in grids else None

        all_flags: list[dict] = []
        device_results: dict[int, dict] = {}
        hourly_rows: list[tuple] = []
        for qcode in codes:
            if qcode not in grids:
                continue
            qname = QUANTITY_BY_CODE[qcode].name
            g = grids[qcode]
            raw = _covered(g, settings.coverage_min)
            ref_near = np.full((D, n_hours), np.nan)
            if stations:
                series = repo.reference_series(conn, [s.code for s in stations], qcode, start, end)
                st_index = {s.code: k for k, s in enumerate(stations)}
                st_grid = np.full((len(stations), n_hours), np.nan)
                for s in series:
                    st_grid[st_index[s.station_code], int((s.time - start).total_seconds() // 3600)] = s.value
                ref_near = st_grid[nearest]
                ref_bg = st_grid[crosscheck_at]
            else:
                ref_bg = ref_near
            ref_co = np.where(colocated[:, None], ref_near, np.nan)
            ref_cross = np.where(crosscheck[:, None], ref_bg, np.nan)
            use_rh = qname.startswith("pm") and rh is not None
            fit = fit_huber(raw, ref_co, rh if use_rh else None, use_rh=use_rh, min_pairs=settings.calibration_min_pairs)
            fitted = np.isfinite(fit.b)
            a, b, c = fit.a.copy(), fit.b.copy(), fit.c.copy()
            method = np.where(fitted, "huber", "").astype(object)
            for t in np.unique(types):  # network model per sensor type: median of fitted devices
                members = (types == t) & ~fitted
                donors = (types == t) & fitted
                if not members.any():
                    continue
                if donors.any():
                    a[members], b[members], c[members] = (np.median(fit.a[donors]), np.median(fit.b[donors]),
                                                          np.median(fit.c[donors]))
                    method[members] = "network"
                elif qname == "pm25":
                    method[members] = "epa"
            calibrated = BatchFit(np.nan_to_num(a), np.where(np.isfinite(b), b, 1.0), np.nan_to_num(c), fit.n,
                                  "mixed").apply(raw, rh if use_rh else None)
            is_epa = method == "epa"
            if is_epa.any():
                calibrated[is_epa] = epa_correction(raw[is_epa], None if rh is None else rh[is_epa])
            calibrated[method == ""] = np.nan
            summary.fitted += int(fitted.sum())
            summary.network_models += int((method == "network").sum())
            summary.epa_fallback += int(is_epa.sum())

            env_low, env_high, neigh_med = _envelope(calibrated, ref_cross, neighbours)
            low, high = QUANTITY_BY_CODE[qcode].low, QUANTITY_BY_CODE[qcode].high
            flags = detect_flags(raw, rules=FlagRules(low=low, high=high), rh=rh if use_rh else None, ref=ref_co,
                                 env_low=env_low, env_high=env_high, clock_counts=np.nan_to_num(g["n_clock"]),
                                 calibrated=calibrated)
            judged = np.where(fault_hours(flags), np.nan, calibrated)
            metrics = performance_metrics(judged, ref_co)
            unc = expanded_uncertainty(judged, ref_co, LIMIT_VALUES.get(qname, 25.0))
            cls = sensor_class(unc, qname)
            comp = comparison_series(ref_cross, neigh_med)
            daily = daily_stars(calibrated, comp)
            stars = current_stars(daily)
            day_labels = [(start + timedelta(days=k)).date().isoformat() for k in range(daily.shape[1])]
            status, reasons = classify(np.isfinite(raw).sum(axis=1), flags.counts(), total_hours=n_hours,
                                       r2=np.where(fitted, metrics["r2"], np.nan), stars=stars,
                                       rules=ReliabilityRules(min_valid_hours=settings.calibration_min_pairs))
            for f in flags.flags:
                all_flags.append({"device_id": ids[f.device], "quantity": qcode, "flag": f.flag,
                                  "period_start": start + timedelta(hours=int(f.start)),
                                  "period_end": start + timedelta(hours=int(f.end)), "evidence": f.evidence})
            for i, dev in enumerate(devices):
                if fitted[i]:
                    m: dict[str, object] = {k: (None if not np.isfinite(v[i]) else float(v[i]))
                                            for k, v in metrics.items()}
                    m["daily_stars"] = {d: int(x) for d, x in zip(day_labels, daily[i], strict=True) if x}
                    repo.store_calibration(conn, {
                        "device_id": dev.id, "quantity": qcode, "window_start": start, "window_end": end,
                        "method": "huber", "a": float(a[i]), "b": float(b[i]), "c": float(c[i]),
                        "n_pairs": int(fit.n[i]), "station_code": stations[nearest[i]].code, "metrics": m,
                        "uncertainty_pct": None if not np.isfinite(unc[i]) else float(unc[i]),
                        "sensor_class": int(cls[i]) or None})
                elif method[i] in ("network", "epa"):
                    repo.store_calibration(conn, {
                        "device_id": dev.id, "quantity": qcode, "window_start": start, "window_end": end,
                        "method": method[i], "a": float(a[i]) if method[i] == "network" else 5.75,
                        "b": float(b[i]) if method[i] == "network" else 0.524,
                        "c": float(c[i]) if method[i] == "network" else -0.0862, "n_pairs": 0,
                        "station_code": stations[crosscheck_at[i]].code if crosscheck[i] else None,
                        "metrics": {"daily_stars": {d: int(x) for d, x in zip(day_labels, daily[i], strict=True) if x}}})
                res = device_results.setdefault(dev.id, {"status": [], "stars": [], "reasons": []})
                res["status"].append(str(status[i]))
                if stars[i] > 0:
                    res["stars"].append(int(stars[i]))
                res["reasons"].extend(f"{qname}: {r}" for r in reasons[i])
            di, hj = np.nonzero(np.isfinite(calibrated) & np.isfinite(raw))
            hours = [start + timedelta(hours=j) for j in range(n_hours)]
            id_arr = np.asarray(ids)
            hourly_rows.extend(zip(  # rows to write (COPY), not a computation
                id_arr[di].tolist(), [qcode] * di.size, [hours[j] for j in hj.tolist()],
                g["n"][di, hj].astype(int).tolist(), g["sum"][di, hj].tolist(), g["sum_sq"][di, hj].tolist(),
                [_opt(v) for v in g["min"][di, hj].tolist()], [_opt(v) for v in g["max"][di, hj].tolist()],
                raw[di, hj].tolist(), calibrated[di, hj].tolist(), strict=True))

        repo.replace_flags(conn, ids, start, end, all_flags)
        summary.flags = len(all_flags)
        summary.hourly_written = repo.write_calibrated_means(conn, hourly_rows)
        order = ["unreliable", "suspect", "reliable", "insufficient_data"]
        for dev in devices:
            outcome = device_results.get(dev.id)
            dev_status: str = "insufficient_data"
            dev_stars: int | None = None
            dev_reasons: list[str] = ["no PM/NO2/O3 data in the window"]
            if outcome is not None:
                # the worst status over the quantities; stars: the lowest rated quantity
                if any(s != "insufficient_data" for s in outcome["status"]):
                    dev_status = min(outcome["status"], key=order.index)
                dev_stars = min(outcome["stars"]) if outcome["stars"] else None
                dev_reasons = outcome["reasons"]
            summary.statuses[dev_status] = summary.statuses.get(dev_status, 0) + 1
            if repo.set_status(conn, dev.id, dev_status, dev_stars, dev_reasons, (dev.status, dev.stars)):
                summary.status_changes += 1
    if progress:
        progress(f"calibrated {summary.devices} devices")
    return summary


def is_background(station_type: str | None) -> bool:
    """Background stations ("Fond" in E2, "background" in EEA); unknown type counts as one."""
    if not station_type:
        return True
    t = station_type.lower()
    return "fond" in t or "background" in t


MAX_NEIGHBOURS = 10  # the envelope and the neighbours' median use at most the 10 nearest


def _nearest_only(neighbours: np.ndarray, dist: np.ndarray, k: int) -> np.ndarray:
    """Keep, per row, only the k nearest of the True entries."""
    if neighbours.shape[1] <= k:
        return neighbours
    d = np.where(neighbours, dist, np.inf)
    kth = np.partition(d, k - 1, axis=1)[:, k - 1: k]
    return neighbours & (d <= kth)


GRID_COLUMNS = ("mean", "n", "sum", "sum_sq", "min", "max", "n_clock")


def _to_grids(rows, index: dict[int, int], start: datetime, D: int, H: int) -> dict[int, dict[str, np.ndarray]]:
    """Rollup rows → per quantity, one (devices × hours) grid per column (NaN where absent)."""
    grids: dict[int, dict[str, np.ndarray]] = {}
    if not rows:
        return grids
    q = np.array([r.quantity for r in rows])
    di = np.array([index[r.device_id] for r in rows])
    t0 = start.timestamp()
    hj = ((np.array([r.hour.timestamp() for r in rows]) - t0) // 3600).astype(int)
    cols = {k: np.array([getattr(r, k) for r in rows], dtype=float) for k in GRID_COLUMNS}
    for code in np.unique(q).tolist():
        sel = q == code
        grids[code] = {}
        for k in GRID_COLUMNS:
            grid = np.full((D, H), np.nan)
            grid[di[sel], hj[sel]] = cols[k][sel]
            grids[code][k] = grid
    return grids


def _opt(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def _covered(g: dict[str, np.ndarray], min_coverage: float) -> np.ndarray:
    """Hourly means where the hour holds ≥ min_coverage of the device's usual readings per hour
    (its 90th percentile of readings per hour, i.e. its sampling rate)."""
    n = g["n"]
    expected = nanstats.nanpercentile(np.where(n > 0, n, np.nan), 90, axis=1)
    coverage = n / np.where(np.isfinite(expected) & (expected > 0), expected, np.nan)[:, None]
    return np.where(np.nan_to_num(coverage) >= min_coverage, g["mean"], np.nan)


def _envelope(calibrated: np.ndarray, station: np.ndarray, neighbours: np.ndarray):
    """Per device and hour: min/max over the nearest station and neighbours' calibrated values,
    and the neighbours' median (loop over devices, vectorised over hours)."""
    D = calibrated.shape[0]
    low = station.copy()
    high = station.copy()
    med = np.full_like(calibrated, np.nan)
    for i in range(D):
        nb = np.nonzero(neighbours[i])[0]
        if nb.size == 0:
            continue
        vals = np.vstack([calibrated[nb], station[i][None, :]])
        low[i] = nanstats.nanmin(vals, axis=0)
        high[i] = nanstats.nanmax(vals, axis=0)
        med[i] = nanstats.nanmedian(calibrated[nb], axis=0)
    return low, high, med
