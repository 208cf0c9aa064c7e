"""Export periods (a UTC day or month), the stable file names derived from them, and which files
the catalogue and the stable URLs publish at a given time (docs/open-data.md#freshness). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from civicair.core.errors import InvalidParameter

PeriodKind = Literal["day", "month"]
FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "geojson": "application/geo+json"}
ALIASES = ("latest", "today")  # stable URL names: the last finished day, the day in progress
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


def day_start(now: datetime) -> datetime:
    """UTC midnight starting the day of `now`."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def latest_day(files: list[ExportFile], now: datetime) -> ExportFile | None:
    """`latest`: the file of the last finished UTC day (a complete day, never the partial one)."""
    done = [f for f in files if f.period.kind == "day" and f.period.end <= day_start(now)]
    return max(done, key=lambda f: f.period.start) if done else None


def today_file(files: list[ExportFile], now: datetime) -> ExportFile | None:
    """`today`: the file of the day in progress (rewritten by every export run)."""
    start = day_start(now)
    return next((f for f in files if f.period.kind == "day" and f.period.start == start), None)


PublishedRole = Literal["latest", "today", "day", "month"]


@dataclass(frozen=True, slots=True)
class Published:
    """A file as the catalogue announces it: `name` is its URL name (`latest.csv`, `today.csv` or
    the file name), `until` the end of the data it holds (exclusive)."""

    name: str
    file: ExportFile
    role: PublishedRole
    until: datetime


def published(files: list[ExportFile], now: datetime) -> list[Published]:
    """What the catalogue lists of one dataset's files at `now`: `latest` and `today` per format,
    each finished day of the current month, and every month file (the current month's holds the
    finished days only)."""
    start = day_start(now)
    month = period_for("month", start.date())
    out: list[Published] = []
    for ext in FORMATS:
        mine = [f for f in files if f.ext == ext]
        if (last := latest_day(mine, now)) is not None:
            out.append(Published(f"latest.{ext}", last, "latest", last.period.end))
        if (current := today_file(mine, now)) is not None:
            out.append(Published(f"today.{ext}", current, "today", max(now, current.period.start)))
        for f in mine:
            if f.period.kind == "day" and month.start <= f.period.start and f.period.end <= start:
                out.append(Published(f.name, f, "day", f.period.end))
            elif f.period.kind == "month" and f.period.start <= start:
                out.append(Published(f.name, f, "month", min(f.period.end, start)))
    return out
