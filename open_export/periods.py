"""Export periods (a UTC day or month) and the stable file names derived from them. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from civicair.core.errors import InvalidParameter

PeriodKind = Literal["day", "month"]
FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "geojson": "application/geo+json"}
FILE_RE = re.compile(r"^(?P<dataset>[a-z0-9][a-z0-9-]*)_(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?P<ext>csv|parquet|geojson)$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    start: datetime  # inclusive, UTC midnight
    end: datetime  # exclusive
    kind: PeriodKind

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m-%d" if self.kind == "day" else "%Y-%m")

    def file_name(self, dataset_id: str, ext: str) -> str:
        return f"{dataset_id}_{self.label}.{ext}"


def period_for(kind: PeriodKind, day: date) -> Period:
    """The day, or the month containing `day`."""
    if kind == "day":
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return Period(start, start + timedelta(days=1), "day")
    if kind == "month":
        start = datetime(day.year, day.month, 1, tzinfo=UTC)
        nxt = datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=UTC)
        return Period(start, nxt, "month")
    raise InvalidParameter("period", f"must be day or month, got {kind!r}")


def parse_label(label: str) -> Period:
    try:
        if len(label) == 10:
            return period_for("day", date.fromisoformat(label))
        return period_for("month", date.fromisoformat(label + "-01"))
    except ValueError:
        raise InvalidParameter("period", f"not a YYYY-MM-DD or YYYY-MM period: {label!r}") from None


@dataclass(frozen=True, slots=True)
class ExportFile:
    dataset: str
    period: Period
    ext: str

    @property
    def name(self) -> str:
        return self.period.file_name(self.dataset, self.ext)

    @property
    def media_type(self) -> str:
        return FORMATS[self.ext]


def parse_file_name(name: str) -> ExportFile | None:
    """`zone-hourly_2026-11-22.csv` → ExportFile; None for anything that is not an export file."""
    m = FILE_RE.match(name)
    if m is None:
        return None
    try:
        period = parse_label(m["period"])
    except InvalidParameter:
        return None
    return ExportFile(m["dataset"], period, m["ext"])


def newest(files: list[ExportFile]) -> ExportFile | None:
    """The file covering the most recent data: latest period end; on a tie the longer period
    (a complete month beats its last day)."""
    if not files:
        return None
    return max(files, key=lambda f: (f.period.end, -f.period.start.timestamp()))
