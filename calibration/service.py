"""The calibration job as load → compute → store (docs/calibration.md#the-calibration-run), and the
reference imports. `run_calibration` reads the window through the repository, runs the one pure
computation (`assess.assess`) per quantity, and writes the results; it runs in the transaction
of its caller (the scheduled job, `civicair calibrate`), which commits or rolls back."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from civicair.calibration import repository as repo
from civicair.calibration.assess import Assessment, CalibrationRules, assess, cv_of, model_of
from civicair.calibration.colocation import Colocation, colocate, is_background, nearest_only
from civicair.calibration.fit import FitRules
from civicair.calibration.flags import FlagTable
from civicair.calibration.geo import distance_matrix_m
from civicair.calibration.grids import CalibrationInput, covered_means, empty_grid
from civicair.calibration.importers import ParseResult, parse_reference, parse_stations
from civicair.calibration.metrics import metrics_of
from civicair.calibration.reliability import ReliabilityRules
from civicair.calibration.select import SelectionRules
from civicair.calibration.sensor_types import epa_eligible, sensor_type
from civicair.core.db import Database
from civicair.core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from civicair.core.errors import DeviceNotFound
from civicair.core.settings import Settings
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
CALIBRATED_QUANTITIES = ("pm25", "pm10", "no2", "o3")
RH_CODE = QUANTITY_BY_NAME["humidity"].code
MAX_NEIGHBOURS = 10  # the envelope and the neighbours' median use at most the 10 nearest
STATUS_ORDER = ("unreliable", "suspect", "reliable", "insufficient_data")


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
    not_calibrated: int = 0
    flags: int = 0
    hourly_written: int = 0
    status_changes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # another process was running the calibration

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["window_start"] = self.window_start.isoformat()
        d["window_end"] = self.window_end.isoformat()
        return d


def rules_from(settings: Settings) -> CalibrationRules:
    return CalibrationRules(fit=FitRules(min_pairs=settings.calibration_min_pairs),
                            select=SelectionRules(network_min_donors=settings.calibration_network_min_donors),
                            reliability=ReliabilityRules(min_valid_hours=settings.calibration_min_pairs))


def _hour_floor(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class LoadedWindow:
    """Everything the computation needs, as arrays on the (devices × hours) grid of the window."""

    start: datetime
    hours: int
    devices: list[Any]
    stations: list[Any]
    colocation: Colocation
    distances: np.ndarray  # device × device (m)
    means: dict[int, np.ndarray]  # quantity → covered hourly means
    present: dict[int, np.ndarray]  # quantity → a rollup row exists (a calibrated mean can be written)
    reference: dict[int, np.ndarray]  # quantity → station × hours
    clock: dict[int, np.ndarray]  # quantity → CLOCK readings per hour


def load_window(conn: Connection, settings: Settings, start: datetime, end: datetime,
                device_uid: str | None = None) -> LoadedWindow:
    devices = repo.fixed_devices(conn, device_uid)
    if device_uid is not None and not devices:
        raise DeviceNotFound(f"no fixed device with uid {device_uid!r}")
    devices = [d for d in devices if d.lat is not None and d.lon is not None]
    stations = [s for s in repo.stations(conn) if s.lat is not None and s.lon is not None]
    h = int((end - start).total_seconds() // 3600)
    d = len(devices)
    lat, lon = np.array([x.lat for x in devices], float), np.array([x.lon for x in devices], float)
    col = colocate(lat, lon, np.array([s.lat for s in stations], float), np.array([s.lon for s in stations], float),
                   np.array([is_background(s.station_type) for s in stations], bool),
                   colocation_m=settings.colocation_distance_m, crosscheck_m=settings.calibration_crosscheck_distance_m)
    index = {x.id: i for i, x in enumerate(devices)}
    codes = [QUANTITY_BY_NAME[q].code for q in CALIBRATED_QUANTITIES]
    n_grid: dict[int, np.ndarray] = {}
    m_grid: dict[int, np.ndarray] = {}
    for r in repo.hourly_arrays(conn, list(index), [*codes, RH_CODE], start, end):
        if r.quantity not in n_grid:
            n_grid[r.quantity], m_grid[r.quantity] = empty_grid(d, h), empty_grid(d, h)
        j = np.asarray(r.hours, np.int64)
        n_grid[r.quantity][index[r.device_id], j] = np.asarray(r.n, float)
        m_grid[r.quantity][index[r.device_id], j] = np.array([np.nan if v is None else v for v in r.mean], float)
    means = {q: covered_means(n_grid[q], m_grid[q], settings.coverage_min) for q in n_grid}
    present = {q: np.isfinite(n_grid[q]) for q in n_grid}
    st_index = {s.code: k for k, s in enumerate(stations)}
    reference = {q: empty_grid(len(stations), h) for q in codes}
    for r in repo.reference_series(conn, list(st_index), codes, start, end):
        reference[r.quantity][st_index[r.station_code], int((r.time - start).total_seconds() // 3600)] = r.value
    clock = {q: np.zeros((d, h)) for q in codes}
    for r in repo.clock_counts(conn, list(index), codes, start, end):
        clock[r.quantity][index[r.device_id], int((r.hour - start).total_seconds() // 3600)] = r.n
    return LoadedWindow(start, h, devices, stations, col, distance_matrix_m(lat, lon, lat, lon), means, present,
                        reference, clock)


def calibration_input(w: LoadedWindow, quantity: str, settings: Settings) -> CalibrationInput:
    code = QUANTITY_BY_NAME[quantity].code
    d = len(w.devices)
    raw = w.means.get(code, empty_grid(d, w.hours))
    st = w.reference[code]
    c = w.colocation
    if st.shape[0]:
        ref = np.where(c.colocated[:, None], st[c.nearest], np.nan)
        cross = np.where(c.has_crosscheck[:, None], st[c.crosscheck], np.nan)
    else:
        ref = cross = empty_grid(d, w.hours)
    types = tuple(sensor_type(x.sensor_models or [], quantity) for x in w.devices)
    t = np.array(types, dtype=object)
    nb = (w.distances <= settings.calibration_neighbour_distance_m) & (t[:, None] == t[None, :]) & (t[:, None] != "")
    np.fill_diagonal(nb, False)
    return CalibrationInput(quantity, raw, ref, w.means.get(RH_CODE, empty_grid(d, w.hours)), cross,
                            nearest_only(nb, w.distances, MAX_NEIGHBOURS), types,
                            np.array([epa_eligible(x.sensor_models or [], quantity) for x in w.devices], bool),
                            clock_counts=w.clock[code], devices=tuple(x.pseudonym for x in w.devices))


def run_calibration(conn: Connection, settings: Settings, *, since: datetime | None = None,
                    device_uid: str | None = None, now: datetime | None = None, wait: bool = True) -> CalibrationSummary:
    """Load the window, assess every calibrated quantity, store the results (caller's transaction).
    One run at a time: with wait=False a run already going on elsewhere makes this one a no-op."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    end = _hour_floor(now) + timedelta(hours=1)
    start = _hour_floor(since) if since else end - timedelta(days=settings.calibration_window_days)
    summary = CalibrationSummary(start, end)
    if not repo.lock_run(conn, wait=wait):
        summary.skipped = True
        return summary
    w = load_window(conn, settings, start, end, device_uid)
    summary.devices = len(w.devices)
    summary.colocated = int(w.colocation.colocated.sum())
    if not w.devices:
        return summary
    rules = rules_from(settings)
    assessed = {q: assess(calibration_input(w, q, settings), rules) for q in CALIBRATED_QUANTITIES
                if QUANTITY_BY_NAME[q].code in w.means}
    store(conn, w, assessed, now, summary)
    log.info("calibration %s → %s: %s", start.isoformat(), end.isoformat(), summary.as_dict())
    return summary


# --- store ---------------------------------------------------------------------------------------
def _flag_rows(w: LoadedWindow, table: FlagTable, code: int) -> list[tuple[Any, ...]]:
    ids = [d.id for d in w.devices]
    hour = timedelta(hours=1)
    return [(ids[int(table.device[i])], code, table.flag[i], table.scope[i], w.start + int(table.start[i]) * hour,
             w.start + int(table.end[i]) * hour, json.dumps(table.evidence_of(i))) for i in range(len(table))]


def _station(w: LoadedWindow, i: int) -> tuple[str | None, str | None]:
    c = w.colocation
    if not w.stations:
        return None, None
    if c.colocated[i]:
        return w.stations[int(c.nearest[i])].code, "co-located"
    if c.has_crosscheck[i]:
        return w.stations[int(c.crosscheck[i])].code, "cross-check"
    return None, None


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def store(conn: Connection, w: LoadedWindow, assessed: dict[str, Assessment], now: datetime,
          summary: CalibrationSummary) -> None:
    ids = [d.id for d in w.devices]
    codes = [QUANTITY_BY_NAME[q].code for q in assessed]
    flags: list[tuple[Any, ...]] = []
    means: list[tuple[int, int, datetime, float | None]] = []
    models: list[dict[str, Any]] = []
    hour = timedelta(hours=1)
    day_labels = [(w.start + timedelta(days=k)).date().isoformat() for k in range(-(-w.hours // 24))]
    per_device: dict[int, list[tuple[str, str, int, list[dict[str, str]]]]] = {i: [] for i in range(len(ids))}
    for q, a in assessed.items():
        code = QUANTITY_BY_NAME[q].code
        flags += _flag_rows(w, a.flags.table, code)
        present = w.present[code]
        di, hj = np.nonzero(present)
        cal = a.calibrated[di, hj]
        means += [(ids[i], code, w.start + j * hour, None if not np.isfinite(v) else float(v))
                  for i, j, v in zip(di.tolist(), hj.tolist(), cal.tolist(), strict=True)]
        for i in np.nonzero(present.any(axis=1))[0].tolist():
            model = model_of(a, i)
            code_st, role = _station(w, i)
            reasons = [r.as_dict(q) for r in a.reasons[i]]
            stars = int(a.stars[i])
            models.append({
                "device_id": ids[i], "quantity": code, "window_start": w.start, "window_end": w.start + w.hours * hour,
                "method": a.method_name(i), "a": model["a"] if model else None, "b": model["b"] if model else None,
                "c": model["c"] if model else 0.0, "kappa": model["kappa"] if model else None,
                "n_pairs": int(a.paired_hours[i]), "station_code": code_st,
                "metrics": {"kind": a.kind[i], "station_role": role, "model": model, "cv": cv_of(a, i),
                            "out_of_fold": metrics_of(a.metrics, i) if a.sensor_class[i] else None,
                            "valid_hours": int(a.valid_hours[i]), "window_hours": w.hours,
                            "sensor_type": sensor_type(w.devices[i].sensor_models or [], q),
                            "daily_stars": {day: int(s) for day, s in zip(day_labels, a.daily_stars[i].tolist(),
                                                                          strict=True) if s}},
                "uncertainty_pct": _num(float(a.uncertainty_pct[i])), "sensor_class": int(a.sensor_class[i]) or None,
                "status": a.status[i], "stars": stars or None, "reasons": reasons})
            per_device[i].append((q, a.status[i], stars, reasons))
            kind = a.kind[i]
            summary.fitted += kind == "colocated"
            summary.network_models += kind == "network"
            summary.epa_fallback += kind == "epa"
            summary.not_calibrated += kind == "none"
    first = next(iter(assessed.values()), None)
    if first is not None:  # the RH channel's own flags (the same for every quantity)
        flags += _flag_rows(w, first.rh_flags.table, RH_CODE)
    repo.replace_flags(conn, ids, [*codes, RH_CODE], w.start, flags)
    summary.flags = len(flags)
    summary.hourly_written = repo.write_calibrated_means(conn, means)
    repo.store_calibrations(conn, models, ids, codes, now)
    statuses = []
    for i, dev_id in enumerate(ids):
        status, dev_stars, reasons = device_status(per_device[i])
        summary.statuses[status] = summary.statuses.get(status, 0) + 1
        statuses.append((dev_id, status, dev_stars, reasons))
    summary.status_changes = repo.set_statuses(conn, statuses)


def device_status(per_quantity: list[tuple[str, str, int, list[dict[str, str]]]]
                  ) -> tuple[str, int | None, list[dict[str, str]]]:
    """The device's status is the worst over its quantities (insufficient_data only when every
    quantity is); its stars the lowest rated quantity's, at most 2 when unreliable."""
    if not per_quantity:
        return "insufficient_data", None, [{"code": "no_data", "level": "insufficient_data",
                                            "text": "no PM, NO2 or O3 data in the window"}]
    statuses = [s for _, s, _, _ in per_quantity]
    judged = [s for s in statuses if s != "insufficient_data"]
    status = min(judged, key=STATUS_ORDER.index) if judged else "insufficient_data"
    rated = [st for _, _, st, _ in per_quantity if st > 0]
    stars = min(rated) if rated else None
    if status == "unreliable" and stars is not None:
        stars = min(stars, 2)
    return status, stars, [r for _, _, _, rs in per_quantity for r in rs]
