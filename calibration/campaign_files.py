"""The files of an offline co-location campaign (docs/calibration.md#offline-campaign-evaluation):
sensor samples (a generic CSV, with an optional preamble, time format, UTC offset and unit; or
sensor.community archive CSVs) and the reference (E2, EEA, AirNow-Tech or a generic hourly CSV).
Pure apart from the bytes handed in."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
from civicair.calibration.flags import spike_scores
from civicair.calibration.grids import Bools, Floats
from civicair.calibration.importers import (
    PPB_FACTORS,
    decode_text,
    detect_format,
    parse_airnowtech,
    parse_e2,
    parse_eea,
)
from civicair.calibration.pairing import HourlySeries, hourly_means
from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.errors import InvalidInput

SC_VALUE_COLUMNS = {"pm25": "P2", "pm10": "P1", "pm1": "P0", "no2": "NO2", "o3": "O3"}


@dataclass(frozen=True)
class SensorFormat:
    """How to read a generic sensor CSV: column names, the time format (strptime; empty: ISO
    8601), the UTC offset of times without one (e.g. "-05:00"), and the unit of the values
    (µg/m³, or ppb for NO2/O3)."""

    time_col: str = "time"
    value_col: str = "value"
    rh_col: str = "rh"
    time_format: str = ""
    utc_offset: str = ""
    unit: str = "µg/m³"


@dataclass
class Samples:
    times: np.ndarray  # datetime64[s], UTC
    values: Floats
    rh_times: np.ndarray | None = None
    rh: Floats | None = None
    source: str = "generic"
    bad_rows: list[tuple[int, str]] = field(default_factory=list)

    def span(self) -> tuple[str, str] | None:
        ok = np.isfinite(self.values)
        if not ok.any():
            return None
        t = self.times[ok]
        return f"{t.min()}Z", f"{t.max()}Z"


def parse_offset(value: str) -> timezone:
    s = value.strip().upper().removeprefix("UTC")
    if not s:
        return UTC
    try:
        sign = -1 if s[0] == "-" else 1
        hh, _, mm = s.lstrip("+-").partition(":")
        return timezone(sign * timedelta(hours=int(hh), minutes=int(mm or 0)))
    except ValueError:
        raise InvalidInput(f"--utc-offset: not an offset like -05:00 or +01:00: {value!r}") from None


def _unit_factor(unit: str, quantity: str) -> float:
    u = unit.strip().lower().replace("ug", "µg").replace("³", "3")
    if u in ("µg/m3", "µg-m3"):
        return 1.0
    if u == "ppb" and quantity in PPB_FACTORS:
        return PPB_FACTORS[quantity]
    raise InvalidInput(f"--unit: {unit!r} is not a unit for {quantity} (µg/m³" +
                       (", ppb)" if quantity in PPB_FACTORS else ")"))


def read_samples(data: bytes, *, quantity: str = "pm25", fmt: SensorFormat | None = None) -> Samples:
    """A generic CSV (time, value, optional RH) or a sensor.community archive CSV (auto-detected;
    a DHT22/BME280 file contributes RH only). Lines before the header (an instrument's export
    block) are skipped: the header is the first line naming the time column."""
    fmt = fmt or SensorFormat()
    text, _ = decode_text(data)
    kind = detect_format(text)
    time_col, value_col, rh_col = fmt.time_col, fmt.value_col, fmt.rh_col
    if kind == "sensor_community":
        time_col, value_col, rh_col = "timestamp", SC_VALUE_COLUMNS.get(quantity, "P2"), "humidity"
    lines = text.splitlines()
    head = next((i for i, line in enumerate(lines[:50]) if time_col in _fields(line)), None)
    if head is None:
        first = _fields(lines[0]) if lines else []
        raise InvalidInput(f"sensor file has no time column {time_col!r} (columns: {', '.join(first)})")
    delim = ";" if lines[head].count(";") > lines[head].count(",") else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines[head:])), delimiter=delim))
    header = [h.strip() for h in rows[0]]
    body = [(head + 2 + i, r) for i, r in enumerate(rows[1:]) if r and any(c.strip() for c in r)]
    idx = {h: i for i, h in enumerate(header)}
    bad: list[tuple[int, str]] = []
    tz = parse_offset(fmt.utc_offset)
    times = np.empty(len(body), "datetime64[s]")
    for k, (lineno, r) in enumerate(body):
        s = r[idx[time_col]].strip() if len(r) > idx[time_col] else ""
        try:
            if fmt.time_format:
                dt = datetime.strptime(s, fmt.time_format)
                dt = dt.replace(tzinfo=dt.tzinfo or tz).astimezone(UTC)
            else:
                dt = _iso(s, tz)
            times[k] = np.datetime64(dt.replace(tzinfo=None), "s")
        except ValueError:
            times[k] = np.datetime64("NaT")
            bad.append((lineno, f"bad time {s!r}"))

    def column(name: str) -> Floats:
        out = np.full(len(body), np.nan)
        j = idx[name]
        for k, (lineno, r) in enumerate(body):
            s = r[j].strip() if len(r) > j else ""
            if s:
                try:
                    out[k] = float(s)
                except ValueError:
                    bad.append((lineno, f"bad number {s!r} in {name}"))
        return out

    ok = ~np.isnat(times)
    factor = _unit_factor(fmt.unit, quantity) if kind != "sensor_community" else 1.0
    values = column(value_col)[ok] * factor if value_col in idx else np.full(int(ok.sum()), np.nan)
    rh = column(rh_col)[ok] if rh_col in idx else None
    if value_col not in idx and rh is None:
        raise InvalidInput(f"sensor file has neither value column {value_col!r} nor RH column {rh_col!r} "
                           f"(columns: {', '.join(header)})")
    return Samples(times[ok], values, times[ok] if rh is not None else None, rh,
                   "sensor.community" if kind == "sensor_community" else "generic", bad)


def _fields(line: str) -> list[str]:
    delim = ";" if line.count(";") > line.count(",") else ","
    return [c.strip().strip('"') for c in line.split(delim)]


def _iso(s: str, tz: timezone) -> datetime:
    """ISO 8601; a time without an offset is in `tz`."""
    t = s.strip().replace(" +", "+")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)


def merge_samples(parts: list[Samples]) -> Samples:
    """Several sensor files (e.g. an SDS011 and the DHT22 of the same node) → one sample set."""
    val = [p for p in parts if np.isfinite(p.values).any()]
    if not val:
        raise InvalidInput("no sensor file has values of the requested quantity")
    rhp = [p for p in parts if p.rh is not None and p.rh_times is not None and np.isfinite(p.rh).any()]
    return Samples(np.concatenate([p.times for p in val]), np.concatenate([p.values for p in val]),
                   np.concatenate([p.rh_times for p in rhp if p.rh_times is not None]) if rhp else None,
                   np.concatenate([p.rh for p in rhp if p.rh is not None]) if rhp else None,
                   "+".join(sorted({p.source for p in parts})), [b for p in parts for b in p.bad_rows])


@dataclass(frozen=True)
class Reference:
    series: HourlySeries
    name: str  # e.g. "e2:FR01011"
    station_code: str | None
    station_name: str | None


def read_reference(data: bytes, *, quantity: str = "pm25", station: str | None = None, time_col: str = "time",
                   value_col: str = "value") -> Reference:
    """An E2, EEA or AirNow-Tech file (auto-detected; one station) or a generic hourly CSV."""
    text, _ = decode_text(data)
    kind = detect_format(text)
    if kind in ("e2", "eea", "airnowtech"):
        parse = {"e2": parse_e2, "eea": parse_eea, "airnowtech": parse_airnowtech}[kind]
        res = parse(data)
        code = QUANTITY_BY_NAME[quantity].code
        rows = [r for r in res.rows if r.quantity == code]
        stations = sorted({r.station_code for r in rows})
        if not rows:
            raise InvalidInput(f"reference file has no valid {quantity} rows")
        chosen = station or stations[0]
        if chosen not in stations:
            raise InvalidInput(f"station {chosen!r} has no {quantity} rows; stations: {', '.join(stations)}")
        rows = [r for r in rows if r.station_code == chosen]
        hours = np.array([int(r.time.timestamp()) // 3600 for r in rows], np.int64)
        vals = np.array([r.value for r in rows])
        order = np.argsort(hours, kind="stable")
        hours, first = np.unique(hours[order], return_index=True)
        st = res.stations.get(chosen)
        return Reference(HourlySeries(hours, vals[order][first], np.ones_like(hours), np.ones(hours.size)),
                         f"{kind}:{chosen}", chosen, st.name if st else None)
    header = set(_fields(text.splitlines()[0])) if text else set()
    # the --time-col/--value-col names apply when the reference uses them, else the defaults
    fmt = SensorFormat(time_col=time_col if time_col in header else "time",
                       value_col=value_col if value_col in header else "value", rh_col="\x00none")
    s = read_samples(data, quantity=quantity, fmt=fmt)
    return Reference(hourly_means(s.times, s.values), "generic", None, None)


def sample_spikes(sensor: Samples, *, z: float = 6.0) -> tuple[Bools, list[dict[str, object]]]:
    """Spikes among the raw sub-hourly samples (robust z against a rolling median of 25 samples):
    the samples to leave out of the hourly means, and one flag per hour holding any."""
    order = np.argsort(sensor.times, kind="stable")
    t, v = sensor.times[order], sensor.values[order]
    mask = np.zeros(v.size, bool)
    if v.size < 25:
        return mask, []
    scores, _ = spike_scores(v[None, :], 25, 1.0)
    az = np.abs(np.nan_to_num(scores[0]))
    hit = az > z
    mask[order[hit]] = True
    hours = t[hit].astype("datetime64[h]")
    out: list[dict[str, object]] = []
    for hh in np.unique(hours):
        sel = hours == hh
        k = int(np.argmax(az[hit][sel]))
        out.append({"flag": "spike", "scope": "samples", "start": f"{hh.astype('datetime64[s]')}Z",
                    "end": f"{(hh + 1).astype('datetime64[s]')}Z",
                    "evidence": {"samples": int(sel.sum()), "max_value": float(v[hit][sel][k]),
                                 "robust_z": round(float(scores[0][hit][sel][k]), 2), "threshold": z}})
    return mask, out
