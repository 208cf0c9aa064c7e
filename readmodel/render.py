"""Aggregate rows → the published shape of a series row (docs/open-data.md#series-rows). Pure.

Each series row: `period` {`datetime_from`, `datetime_to`, `interval`}, `value` (the calibrated
mean when calibrated, else the raw mean; `calibrated` says which), `calibrated_mean` (`None` when
absent), `raw_mean`, `unit`, `n_readings`, `coverage` {`expected_count`, `observed_count`,
`percent_complete`}, `summary` {`min`, `median`, `max`, `mean`, `sd`}, `flags`
{`flagged_readings`, `out_of_range`, `clock`, `sensor_error`, `no_position`} (device-hours
carrying each flag); zone rows add `n_devices`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from civicair.core.domain import QUANTITY_BY_CODE, Flag
from civicair.readmodel.params import EXPECTED_HOURS, STEP, Interval

DECIMALS = 3  # published values: 0.001 of the unit, far below any sensor's resolution

FLAG_BITS = {str(f.name).lower(): int(f.value) for f in Flag}
_FLAG_COLUMNS = tuple((name, f"f_{name}") for name in FLAG_BITS)


def rounded(x: float | None) -> float | None:
    return None if x is None else round(x, DECIMALS)


def series_row(r: Any, interval: Interval, unit: str, expected: int) -> dict[str, Any]:
    """One aggregate row (`statements.aggregates` columns and `period`) → the published shape
    (hot path: ~1000 rows per request)."""
    m = r._mapping
    n = int(m["n_readings"] or 0)  # numeric (Decimal) when summed over counts
    total = m["s"]
    mean = total / n if n else None
    sd = None
    if n > 1 and m["ss"] is not None:
        var = (m["ss"] - total * total / n) / (n - 1)
        sd = math.sqrt(var) if var > 0 else 0.0
    observed = m["device_hours"] or 0
    calibrated, mean, sd = rounded(m["calibrated"]), rounded(mean), rounded(sd)
    period = m["period"]
    flags = {"flagged_readings": int(m["n_flagged"] or 0)}
    for name, column in _FLAG_COLUMNS:
        flags[name] = m[column]
    return {
        "period": {"datetime_from": period, "datetime_to": period + STEP[interval], "interval": interval.value},
        "value": calibrated if calibrated is not None else mean,
        "calibrated": calibrated is not None,
        "calibrated_mean": calibrated,
        "raw_mean": mean,
        "unit": unit,
        "n_readings": n,
        "coverage": {
            "expected_count": expected,
            "observed_count": observed,
            "percent_complete": round(100.0 * observed / expected, 1) if expected else None,
        },
        "summary": {"min": rounded(m["min"]), "median": rounded(m["median"]), "max": rounded(m["max"]),
                    "mean": mean, "sd": sd},
        "flags": flags,
    }


def zone_doc(r: Any, interval: Interval) -> bytes:
    """One aggregate row of `statements.zone_aggregates` → its published JSON."""
    n_devices = int(r.n_devices)
    row = series_row(r, interval, QUANTITY_BY_CODE[r.quantity].unit, EXPECTED_HOURS[interval] * n_devices)
    row["n_devices"] = n_devices
    return orjson.dumps(row)


def station_row(r: Any, interval: Interval, unit: str) -> dict[str, Any]:
    """One reference-station aggregate (n, mean, min, max, median, sd, period) → a series row."""
    expected = EXPECTED_HOURS[interval]
    return {"period": {"datetime_from": r.period, "datetime_to": r.period + STEP[interval],
                       "interval": interval.value},
            "value": r.mean, "unit": unit, "n_readings": int(r.n),
            "coverage": {"expected_count": expected, "observed_count": int(r.n),
                         "percent_complete": round(100.0 * int(r.n) / expected, 1)},
            "summary": {"min": r.min, "median": r.median, "max": r.max, "mean": r.mean, "sd": r.sd}}


@dataclass(frozen=True)
class SeriesPage:
    results: list[dict[str, Any]]
    suppressed: int  # zone-hours withheld (fewer than k devices) in the span of this page
    next_after: datetime | None


@dataclass(frozen=True)
class SeriesJson:
    """A page of zone series rows already rendered: `docs` holds fragments of comma-joined row
    JSON objects (the response joins them once, without intermediate copies of the ~0.5 MB)."""

    docs: list[bytes]
    count: int
    suppressed: int  # zone-hours withheld (fewer than k devices) in the span of this page
    next_after: datetime | None


def parse_rows(docs: list[bytes]) -> list[dict[str, Any]]:
    """Rendered rows back to dicts with `datetime` periods (exports, tests)."""
    rows: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(docs) + b"]")
    for row in rows:
        period = row["period"]
        period["datetime_from"] = datetime.fromisoformat(period["datetime_from"])
        period["datetime_to"] = datetime.fromisoformat(period["datetime_to"])
    return rows



def quantity_list() -> list[dict[str, Any]]:
    """The published quantities: name, unit, label and plausible range."""
    return [{"name": q.name, "unit": q.unit, "label": q.label, "plausible_range": [q.low, q.high]}
            for q in sorted(QUANTITY_BY_CODE.values(), key=lambda q: q.code)]
