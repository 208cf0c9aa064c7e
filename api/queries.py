"""Reusable query parameters and the open-data queries, shared by api/ and open_export/.

Parameter models (pydantic, validate input and produce SQLAlchemy expressions; no database
needed to test them):

- ``Paging(limit=100, cursor=None)``: ``limit`` 1..1000; ``cursor`` is opaque (``encode_cursor``).
- ``TimeRange(datetime_from=None, datetime_to=None)``: ``.resolve(max_days, now=None)`` →
  ``(start, end)`` (UTC, end exclusive; default the last 7 days; naive times are UTC), raises
  ``core.errors.BadRange`` when reversed or longer than ``max_days``; ``.where(column)``.
- ``QuantityFilter(quantity="pm25")``: ``.info`` (``QuantityInfo``), ``.where(column)``;
  unknown names raise ``InvalidParameter("quantity", ...)``.
- ``ZoneFilter(zone_id=...)``: ``.kind`` is ``"h3"`` for a valid H3 cell, else ``"admin"``.
- ``Interval``: ``"hour"`` | ``"day"``.

Query functions (a SQLAlchemy ``Connection`` + ``Settings``; rows are plain dicts with
``datetime`` values; the privacy rules — consent, fixed only, unreliable excluded, k-anonymity,
mobile filtering — are applied here, so every caller publishes the same thing):

- ``device_list(conn, settings) -> list[dict]``: public (consenting) devices.
- ``device_detail(conn, settings, pseudonym) -> dict`` (``DeviceNotFound``).
- ``device_series(conn, settings, pseudonym, quantity, time_range, interval="hour",
  after=None, limit=None) -> list[dict]``: one fixed consenting device.
- ``zone_list(conn, settings) -> list[dict]``: admin zones + H3 cells holding public devices.
- ``zone_series(conn, settings, zone_id, quantity, time_range, interval="hour", after=None,
  limit=None) -> list[dict]``; ``zone_series_page(...)`` → ``SeriesPage`` (adds
  ``suppressed`` = zone-hours withheld for k-anonymity).
- ``mobile_cells(conn, settings, quantity, time_range) -> list[dict]``: (H3 cell, hour)
  aggregates of privacy-filtered mobile points with ≥ k devices.
- ``stations(conn, settings) -> list[dict]``; ``station_series(conn, settings, code,
  quantity, time_range, interval="hour", after=None, limit=None) -> list[dict]``.

Series paging: ``after`` (a period start, exclusive) and ``limit``; with a ``limit`` one call
covers at most ``limit`` periods of time (so it may return fewer rows when hours are missing or
suppressed) and ``*_page`` returns the next ``after`` or ``None`` at the end of the range. With
``limit=None`` (the export files) the whole range is returned.

Each series row: ``period`` {``datetime_from``, ``datetime_to``, ``interval``}, ``value``
(the calibrated mean when calibrated, else the raw mean; ``calibrated`` says which),
``calibrated_mean`` (``None`` when absent), ``raw_mean``, ``unit``, ``n_readings``,
``coverage`` {``expected_count``, ``observed_count``, ``percent_complete``}, ``summary``
{``min``, ``median``, ``max``, ``mean``, ``sd``}, ``flags`` {``flagged_readings``, ``out_of_range``,
``clock``, ``sensor_error``, ``no_position``} (device-hours carrying each flag); zone rows add
``n_devices``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import re
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import h3
import orjson
import psycopg
import pyarrow as pa
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from api import anonymise
from core import tables
from core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME, Flag, QuantityInfo
from core.errors import BadRange, DeviceNotFound, InvalidParameter, NotFound, StationNotFound
from core.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

MAX_LIMIT = 1000
DEFAULT_DAYS = 7


class Interval(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"


def encode_cursor(value: datetime | str) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("cursor", "not a cursor returned by this API") from None


class Paging(BaseModel):
    model_config = ConfigDict(frozen=True)
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)

    def after_time(self) -> datetime | None:
        """The period start the cursor points after (series paging)."""
        if not self.cursor:
            return None
        try:
            return as_utc(datetime.fromisoformat(decode_cursor(self.cursor)))
        except ValueError:
            raise InvalidParameter("cursor", "not a cursor returned by this API") from None

    def after_key(self) -> str | None:
        """The list key the cursor points after (list paging)."""
        return decode_cursor(self.cursor) if self.cursor else None


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class TimeRange(BaseModel):
    model_config = ConfigDict(frozen=True)
    datetime_from: datetime | None = None
    datetime_to: datetime | None = None

    def resolve(self, max_days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
        try:
            end = as_utc(self.datetime_to) if self.datetime_to else (now or datetime.now(UTC))
            start = as_utc(self.datetime_from) if self.datetime_from else end - timedelta(days=DEFAULT_DAYS)
            if self.datetime_from and not self.datetime_to and start > end:
                end = start + timedelta(days=DEFAULT_DAYS)
        except OverflowError:
            raise BadRange("datetime_from / datetime_to are outside the supported calendar range") from None
        if end <= start:
            raise BadRange(f"datetime_from ({start.isoformat()}) must be before datetime_to ({end.isoformat()})")
        if end - start > timedelta(days=max_days):
            raise BadRange(
                f"time range of {(end - start).days} days exceeds the maximum of {max_days} days; "
                "use the export files for bulk history"
            )
        return start, end

    def where(self, column: Any, max_days: int, now: datetime | None = None) -> sa.ColumnElement[bool]:
        start, end = self.resolve(max_days, now)
        return sa.and_(column >= start, column < end)


class QuantityFilter(BaseModel):
    model_config = ConfigDict(frozen=True)
    quantity: str = "pm25"

    @field_validator("quantity")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in QUANTITY_BY_NAME:
            raise InvalidParameter("quantity", f"unknown quantity {v[:40]!r}; one of {sorted(QUANTITY_BY_NAME)}")
        return v

    @property
    def info(self) -> QuantityInfo:
        return QUANTITY_BY_NAME[self.quantity]

    def where(self, column: Any) -> sa.ColumnElement[bool]:
        return column == self.info.code


class ZoneFilter(BaseModel):
    model_config = ConfigDict(frozen=True)
    zone_id: str = Field(min_length=1, max_length=64)

    @property
    def kind(self) -> str:
        return "h3" if is_h3_cell(self.zone_id) else "admin"


_HEX15 = re.compile(r"[0-9a-fA-F]{15}")


def is_h3_cell(value: str) -> bool:
    """True for a valid H3 cell id; False (never an exception) for anything else, including long
    hex-like strings on which h3 raises OverflowError. Anything but 15 hex digits is rejected
    before h3, which is slow on non-hex input (an exception inside: 9 % of a zone request)."""
    if len(value) != 15 or not _HEX15.fullmatch(value):
        return False
    try:
        return bool(h3.is_valid_cell(value))
    except (ValueError, OverflowError, TypeError):
        return False


def quantity_info(quantity: str | QuantityFilter) -> QuantityInfo:
    return quantity.info if isinstance(quantity, QuantityFilter) else QuantityFilter(quantity=quantity).info


# --- devices ------------------------------------------------------------------------------------

def public_cell(h3_cell: str | None, lat: float | None, lon: float | None, resolution: int) -> str | None:
    """The public H3 cell of a fixed device at `resolution` (never finer)."""
    if h3_cell and is_h3_cell(h3_cell):
        res = h3.get_resolution(h3_cell)
        if res == resolution:
            return h3_cell
        if res > resolution:
            return h3.cell_to_parent(h3_cell, resolution)
    if lat is not None and lon is not None:
        return anonymise.snap_to_cell(lat, lon, resolution)
    return None


def _public_devices_query() -> sa.Select[Any]:
    d, h = tables.devices, tables.hourly
    q = tables.quantities
    quantities = sa.func.array(
        sa.select(q.c.name)
        .where(sa.exists(sa.select(1).where(h.c.device_id == d.c.id, h.c.quantity == q.c.code)))
        .order_by(q.c.code)
        .scalar_subquery()
    )
    return sa.select(
        d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.h3_cell, d.c.lat, d.c.lon,
        d.c.status, d.c.stars, d.c.first_seen, d.c.last_seen, quantities.label("quantities"),
    ).where(d.c.consent_public.is_(True))


def _device_row(r: Any, settings: Settings) -> dict[str, Any]:
    cell = public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution) if r.kind == "fixed" else None
    centre = anonymise.cell_centre(cell) if cell else None
    return {
        "pseudonym": r.pseudonym,
        "kind": r.kind,
        "sensor_type": r.sensor_models[0] if r.sensor_models else None,
        "sensor_models": list(r.sensor_models or []),
        "h3_cell": cell,
        "coordinates": {"latitude": centre[0], "longitude": centre[1]} if centre else None,
        "status": r.status,
        "stars": r.stars,
        "first_seen": r.first_seen,
        "last_seen": r.last_seen,
        "quantities": list(r.quantities or []),
        "has_series": r.kind == "fixed",
    }


def device_list(conn: Connection, settings: Settings, after: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    d = tables.devices
    stmt = _public_devices_query().order_by(d.c.pseudonym)
    if after:
        stmt = stmt.where(d.c.pseudonym > after)
    if limit:
        stmt = stmt.limit(limit)
    return [_device_row(r, settings) for r in conn.execute(stmt)]


def device_detail(conn: Connection, settings: Settings, pseudonym: str) -> dict[str, Any]:
    r = conn.execute(_public_devices_query().where(tables.devices.c.pseudonym == pseudonym)).first()
    if r is None:
        raise DeviceNotFound(f"no public device {pseudonym[:40]!r}")
    return _device_row(r, settings)


# --- series aggregation -------------------------------------------------------------------------

_FLAG_NAMES = {str(f.name).lower(): int(f.value) for f in Flag}


def _period(column: Any, interval: Interval) -> Any:
    if interval == Interval.DAY:
        return sa.func.date_trunc("day", column, "UTC")
    return column


def _aggregates(h: Any, where: Any = None) -> list[Any]:
    """Aggregate columns over hourly device-rows `h` (a table or subquery); with `where`, over
    the rows meeting it only."""
    valid = h.c.n > 0

    def only(fn: Any, cond: Any = None) -> Any:
        conds = [c for c in (where, cond) if c is not None]
        return fn.filter(sa.and_(*conds)) if conds else fn

    cols = [
        only(sa.func.count(), valid).label("device_hours"),
        sa.func.coalesce(only(sa.func.sum(h.c.n)), 0).label("n_readings"),
        only(sa.func.sum(h.c.sum)).label("s"),
        only(sa.func.sum(h.c.sum_sq)).label("ss"),
        only(sa.func.min(h.c.min)).label("min"),
        only(sa.func.max(h.c.max)).label("max"),
        only(sa.func.avg(h.c.calibrated_mean), valid).label("calibrated"),
        only(sa.func.percentile_cont(0.5).within_group(h.c.mean), valid).label("median"),
        sa.func.coalesce(only(sa.func.sum(h.c.n_flagged)), 0).label("n_flagged"),
    ]
    for name, bit in _FLAG_NAMES.items():
        cols.append(only(sa.func.count(), h.c.flags_any.op("&")(bit) != 0).label(f"f_{name}"))
    return cols


_STEP = {Interval.HOUR: timedelta(hours=1), Interval.DAY: timedelta(days=1)}
_EXPECTED_HOURS = {Interval.HOUR: 1, Interval.DAY: 24}
_FLAG_COLUMNS = tuple((name, f"f_{name}") for name in _FLAG_NAMES)


def _series_row(r: Any, interval: Interval, unit: str, expected: int) -> dict[str, Any]:
    """One aggregate row → the published shape (hot path: ~1000 rows per request)."""
    m = r._mapping
    n = int(m["n_readings"] or 0)  # numeric (Decimal) when summed over counts
    total = m["s"]
    mean = total / n if n else None
    sd = None
    if n > 1 and m["ss"] is not None:
        var = (m["ss"] - total * total / n) / (n - 1)
        sd = math.sqrt(var) if var > 0 else 0.0
    observed = m["device_hours"] or 0
    calibrated, mean, sd = _rounded(m["calibrated"]), _rounded(mean), _rounded(sd)
    period = m["period"]
    flags = {"flagged_readings": int(m["n_flagged"] or 0)}
    for name, column in _FLAG_COLUMNS:
        flags[name] = m[column]
    return {
        "period": {"datetime_from": period, "datetime_to": period + _STEP[interval], "interval": interval.value},
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
        "summary": {"min": _rounded(m["min"]), "median": _rounded(m["median"]), "max": _rounded(m["max"]),
                    "mean": mean, "sd": sd},
        "flags": flags,
    }


DECIMALS = 3  # published values: 0.001 of the unit, far below any sensor's resolution


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, DECIMALS)


@dataclass(frozen=True)
class SeriesPage:
    results: list[dict[str, Any]]
    suppressed: int  # zone-hours withheld (fewer than k devices) in the span of this page
    next_after: datetime | None


def _window(start: datetime, end: datetime, after: datetime | None, limit: int | None,
            interval: Interval) -> tuple[datetime, datetime, datetime | None]:
    """The time span one page can cover, so a page never scans the whole range: periods after
    `after`, at most `limit` of them. Returns (lo, hi, cursor of the next page or None)."""
    step = timedelta(days=1) if interval == Interval.DAY else timedelta(hours=1)
    lo = max(start, after + step) if after is not None else start
    if limit is None:
        return lo, end, None
    floor = lo.replace(minute=0, second=0, microsecond=0)
    if interval == Interval.DAY:
        floor = floor.replace(hour=0)
    try:
        hi = floor + limit * step
    except OverflowError:
        return lo, end, None
    if hi >= end:
        return lo, end, None
    return lo, hi, hi - step


def _page(rows: list[dict[str, Any]], limit: int | None) -> tuple[list[dict[str, Any]], datetime | None]:
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1]["period"]["datetime_from"]
    return rows, None


def _hourly_from_readings(device_id: int, code: int, start: datetime, end: datetime) -> Any:
    """Readings of one device aggregated to the shape of the `hourly` table."""
    r = tables.readings
    ok = r.c.flags == 0
    hour = (sa.func.date_trunc("hour", r.c.time, "UTC")).label("hour")
    return (sa.select(
        r.c.device_id, r.c.quantity, hour,
        sa.func.count().filter(ok).label("n"),
        sa.func.coalesce(sa.func.sum(r.c.value).filter(ok), 0.0).label("sum"),
        sa.func.coalesce(sa.func.sum(r.c.value * r.c.value).filter(ok), 0.0).label("sum_sq"),
        sa.func.min(r.c.value).filter(ok).label("min"),
        sa.func.max(r.c.value).filter(ok).label("max"),
        sa.func.avg(r.c.value).filter(ok).label("mean"),
        sa.func.count().filter(sa.not_(ok)).label("n_flagged"),
        sa.func.coalesce(sa.func.bit_or(r.c.flags), 0).label("flags_any"),
        sa.cast(sa.null(), sa.Float).label("calibrated_mean"),
    ).where(r.c.device_id == device_id, r.c.quantity == code, r.c.time >= start, r.c.time < end)
     .group_by(r.c.device_id, r.c.quantity, hour).subquery("readings_hourly"))


def device_series_page(conn: Connection, settings: Settings, pseudonym: str,
                       quantity: str | QuantityFilter, time_range: TimeRange,
                       interval: Interval | str = Interval.HOUR, after: datetime | None = None,
                       limit: int | None = None) -> SeriesPage:
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    d, h = tables.devices, tables.hourly
    dev = conn.execute(sa.select(d.c.id, d.c.kind, d.c.consent_public).where(d.c.pseudonym == pseudonym)).first()
    if dev is None or dev.kind != "fixed" or not dev.consent_public:
        raise DeviceNotFound(f"no public fixed device {pseudonym[:40]!r} (mobile devices have no per-device series)")
    expected = 24 if interval == Interval.DAY else 1
    start, end, nxt = _window(start, end, after, limit, interval)
    rows: list[dict[str, Any]] = []
    for source in (h, _hourly_from_readings(dev.id, info.code, start, end)):
        # The rollup normally holds every hour; readings not rolled up yet (a fresh device, the
        # rollup job behind) are aggregated on the fly so the series is never silently empty.
        period = _period(source.c.hour, interval).label("period")
        stmt = (sa.select(period, *_aggregates(source))
                .where(source.c.device_id == dev.id, source.c.quantity == info.code,
                       source.c.hour >= start, source.c.hour < end)
                .group_by(period).order_by(period))
        if after is not None:
            stmt = stmt.having(period > after)
        rows = [_series_row(r, interval, info.unit, expected) for r in conn.execute(stmt).all()]
        if rows:
            break
    return SeriesPage(rows, 0, nxt)


def device_series(conn: Connection, settings: Settings, pseudonym: str, quantity: str | QuantityFilter,
                  time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                  after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return device_series_page(conn, settings, pseudonym, quantity, time_range, interval, after, limit).results


# --- zones --------------------------------------------------------------------------------------

def published_fixed() -> sa.ColumnElement[bool]:
    """Devices whose data enter zone series: consenting, fixed, not unreliable. Constants are
    inlined: as bind parameters the cached generic plan misjudged them (3.4 ms instead of 0.4)."""
    d = tables.devices
    return sa.and_(d.c.consent_public.is_(True), d.c.kind == sa.literal_column("'fixed'"),
                   d.c.status != sa.literal_column("'unreliable'"))


def eligible_fixed(conn: Connection) -> list[Any]:
    d = tables.devices
    return list(conn.execute(sa.select(d.c.id, d.c.h3_cell, d.c.lat, d.c.lon).where(published_fixed())).all())


def _admin_zone_devices() -> sa.TextClause:
    """Whether an administrative zone exists and its published devices, in one round trip (a
    prepared text statement: this runs on every zone request)."""
    d, dz = tables.devices, tables.device_zones
    members = (sa.select(dz.c.device_id).join(d, d.c.id == dz.c.device_id)
               .where(dz.c.zone_id == sa.bindparam("z"), published_fixed()).order_by(dz.c.device_id))
    sql = str(members.compile(compile_kwargs={"render_postcompile": True}))
    return sa.text(f"select exists (select 1 from zones where id = :z) as known, array({sql}) as ids")


_ADMIN_ZONE_DEVICES = _admin_zone_devices()

# A device's H3 cell as a bigint, when `devices.h3_cell` is a cell id (15 hex digits, mode 1).
# (CASE first: PostgreSQL does not promise to test the pattern before casting.)
_H3_BITS = ("(case when devices.h3_cell ~* '^8[0-9a-f]{14}$' "
            "then ('x' || lpad(devices.h3_cell, 16, '0'))::bit(64)::bigint end)")
_H3_USABLE = f"({_H3_BITS} >> 52) & 15 >= :res"


def _h3_zone_devices() -> sa.TextClause:
    """The published devices of an H3 zone, found in SQL: a stored cell at the zone's resolution
    or finer is a member when its parent is the zone (H3 bit layout: the resolution in bits
    52–55, a digit of 3 bits per finer resolution, 7 when unused). `unplaced`: published devices
    with coordinates in the zone's bounding box but no such cell (say the resolution setting
    became finer), as (id, lat, lon) arrays; `public_cell` snaps them in Python."""
    published = str(published_fixed().compile())
    unplaced = (f"from devices where {published} and not coalesce({_H3_USABLE}, false) "
                "and devices.lat between :lat_lo and :lat_hi and devices.lon between :lon_lo and :lon_hi")
    return sa.text(
        f"select true as known, array(select devices.id from devices where {published} and {_H3_USABLE} "
        f"and ({_H3_BITS} & :keep) | :set = :cell order by devices.id) as ids, "
        f"(select array[array_agg(devices.id::float8), array_agg(devices.lat), array_agg(devices.lon)] "
        f"{unplaced}) as unplaced")


def h3_zone_params(cell: str) -> dict[str, int | float]:
    """The parameters of `_h3_zone_devices` for a valid cell: its resolution, its index, the
    masks that turn a finer cell's index into its parent at that resolution, and a bounding box
    holding the cell (with a margin; whole longitudes across the antimeridian)."""
    value, res = int(cell, 16), h3.get_resolution(cell)
    unused = (1 << 3 * (15 - res)) - 1
    keep = ~((15 << 52) | unused) & ((1 << 64) - 1)
    lats, lons = zip(*h3.cell_to_boundary(cell), strict=True)
    margin = 0.1 * max(max(lats) - min(lats), 1e-6)
    lat_lo, lat_hi = min(lats) - margin, max(lats) + margin
    # Edges are great-circle arcs: beyond the margin only near the poles, where the box then
    # reaches the pole (and takes every longitude).
    if lat_hi > 60.0:
        lat_hi = 90.0
    if lat_lo < -60.0:
        lat_lo = -90.0
    lon_lo, lon_hi = min(lons), max(lons)
    if lon_hi - lon_lo > 180 or lat_hi == 90.0 or lat_lo == -90.0:
        lon_lo, lon_hi = -180.0, 180.0
    else:
        lon_margin = 0.1 * max(lon_hi - lon_lo, 1e-6)
        lon_lo, lon_hi = lon_lo - lon_margin, lon_hi + lon_margin
    return {"res": res, "cell": value, "keep": keep - (1 << 64) if keep >= 1 << 63 else keep,
            "set": (res << 52) | unused, "lat_lo": lat_lo, "lat_hi": lat_hi, "lon_lo": lon_lo, "lon_hi": lon_hi}


def _placed(cell: str, unplaced: list[list[float]] | None) -> list[int]:
    """The devices of `unplaced` (ids, lats, lons) whose coordinates fall in `cell`."""
    if not unplaced:
        return []
    res = h3.get_resolution(cell)
    return [int(i) for i, lat, lon in zip(*unplaced, strict=True) if anonymise.snap_to_cell(lat, lon, res) == cell]


# The zone-series hot path is one statement on the driver connection, so a refresh committing
# meanwhile cannot pair one version's validity with another's rows: does the zone exist, its
# published devices (`m`: found in SQL by zone membership or by H3 cell bits, or passed in when
# Python had to place some), with the coordinates of the ones only Python can place (`unplaced`), the
# materialised part of the page (`s`: nothing when the zone's stored rows were built from other
# devices, another k or renderer; else the end b of the span they answer, the page end or the
# watermark in whole periods, and whether a write to `hourly` in it still waits for the refresh),
# then the stored chunks of [a, b) when they hold, one per row (state repeated; NULLs if none).
# Offsets are needed (and sent) only for the chunks at the edges of the span.
_ZONE_PAGE = """
with m as ({members}),
s as (
    select m.known, m.ids, m.unplaced, w.b, exists (select 1 from zone_invalidations i
                                        where i.quantity = %(q)s and i.hour >= %(a)s and i.hour < w.b) as pending
    from m left join lateral (
        select least(%(hi)s, date_trunc(%(unit)s, watermark, 'UTC')) as b from zone_rollup
        where zone_id = %(z)s and device_ids = m.ids and k = %(k)s and version = %(v)s) as w on true
)
select s.known, s.ids, s.unplaced, s.b, s.pending, c.chunk, c.n, c.n_suppressed, c.docs, c.raw_size,
       case when c.edge then c.idx end, case when c.edge then c.ends end, case when c.edge then c.suppressed end
from s left join lateral (
    select *, chunk < %(a)s or chunk + %(size)s > s.b as edge from zone_series
    where s.b > %(a)s and not s.pending and zone_id = %(z)s and quantity = %(q)s and interval = %(unit)s
          and chunk >= %(first)s and chunk < s.b
) as c on true
order by c.chunk
"""


def _pyformat(clause: sa.TextClause) -> str:
    return re.sub(r"(?<!:):([a-z_]+)\b", r"%(\1)s", str(clause))


_ADMIN_ZONE_PAGE = _ZONE_PAGE.format(members=_pyformat(_ADMIN_ZONE_DEVICES)[:-len(" as ids")]
                                     + " as ids, null::float8[] as unplaced")
_H3_ZONE_DEVICES = _h3_zone_devices()
_H3_ZONE_PAGE = _ZONE_PAGE.format(members=_pyformat(_H3_ZONE_DEVICES))
_LISTED_ZONE_PAGE = _ZONE_PAGE.format(members="select true as known, %(ids)s::int4[] as ids, null::float8[] as unplaced")


def _check_h3_resolution(cell: str, settings: Settings) -> None:
    res = h3.get_resolution(cell)
    if res != settings.h3_resolution:
        raise NotFound(f"H3 zones are cells of resolution {settings.h3_resolution}, not {res}")


def zone_device_ids(conn: Connection, settings: Settings, zone_id: str) -> list[int]:
    """Public, reliable fixed devices inside a zone, ascending (as `zone_rollup.device_ids`
    stores them); NotFound for an unknown zone."""
    zone = ZoneFilter(zone_id=zone_id)
    if zone.kind == "h3":
        _check_h3_resolution(zone_id, settings)
        ids, unplaced = conn.execute(_H3_ZONE_DEVICES, h3_zone_params(zone_id)).one()[1:]
        return sorted([*ids, *_placed(zone_id, unplaced)])
    known, ids = conn.execute(_ADMIN_ZONE_DEVICES, {"z": zone_id}).one()
    if not known:
        raise NotFound(f"no zone {zone_id[:40]!r}")
    return list(ids)


def zone_list(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    z, dz = tables.zones, tables.device_zones
    counts: dict[str, int] = dict(conn.execute(sa.select(dz.c.zone_id, sa.func.count()).group_by(dz.c.zone_id)).all())
    out: list[dict[str, Any]] = [
        {"id": r.id, "name": r.name, "kind": r.kind, "n_devices": int(counts.get(r.id, 0)),
         "properties": r.properties or {}}
        for r in conn.execute(sa.select(z.c.id, z.c.name, z.c.kind, z.c.properties).order_by(z.c.id))
    ]
    cells: dict[str, int] = {}
    for r in eligible_fixed(conn):
        cell = public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution)
        if cell:
            cells[cell] = cells.get(cell, 0) + 1
    for cell in sorted(cells):
        out.append({"id": cell, "name": f"H3 cell {cell}", "kind": "h3", "n_devices": cells[cell],
                    "properties": {"resolution": settings.h3_resolution}})
    return out


def zone_geometry(conn: Connection, zone_id: str) -> dict[str, Any] | None:
    if is_h3_cell(zone_id):
        return anonymise.cell_polygon(zone_id)
    return conn.execute(sa.select(tables.zones.c.geometry).where(tables.zones.c.id == zone_id)).scalar()


@dataclass(frozen=True)
class SeriesJson:
    """A page of zone series rows already rendered: `docs` holds fragments of comma-joined row
    JSON objects (the response joins them once, without intermediate copies of the ~0.5 MB)."""

    docs: list[bytes]
    count: int
    suppressed: int  # zone-hours withheld (fewer than k devices) in the span of this page
    next_after: datetime | None


def _members(pairs: list[tuple[str, int]]) -> Any:
    """(zone_id, device_id) pairs as a relation (two zipped unnest() calls)."""
    return sa.select(
        sa.func.unnest(sa.literal([z for z, _ in pairs], ARRAY(sa.Text))).label("zone_id"),
        sa.func.unnest(sa.literal([d for _, d in pairs], ARRAY(sa.Integer))).label("device_id"),
    ).subquery("m")


def zone_aggregates(pairs: list[tuple[str, int]], codes: list[int], start: datetime, end: datetime,
                    interval: Interval, k: int) -> sa.Select[Any]:
    """The zone series of every zone in `pairs` over [start, end), per (zone_id, quantity,
    period). A zone-hour with fewer than k distinct reporting devices is left out of every
    aggregate and counted in `suppressed_hours`; a period whose hours were all suppressed has
    n_devices = 0 (and is not published). Used by the API (one zone) and by the materialisation
    (api/zone_rollup.py, all zones), so both publish the same rows."""
    h, m = tables.hourly, _members(pairs)
    hour_devices = sa.func.count().filter(h.c.n > 0).over(partition_by=(m.c.zone_id, h.c.quantity, h.c.hour))
    base = (sa.select(m.c.zone_id, h, hour_devices.label("hour_devices"))
            .join_from(h, m, m.c.device_id == h.c.device_id)
            .where(h.c.quantity.in_(codes), h.c.hour >= start, h.c.hour < end).subquery("b"))

    keys = (base.c.zone_id, base.c.quantity, _period(base.c.hour, interval).label("period"))
    kept = base.c.hour_devices >= k
    n_devices = sa.func.count(sa.distinct(base.c.device_id)).filter(kept, base.c.n > 0).label("n_devices")
    suppressed = (sa.func.count(sa.distinct(base.c.hour))
                  .filter(base.c.hour_devices < k, base.c.hour_devices > 0).label("suppressed_hours"))
    return (sa.select(*keys, n_devices, suppressed, *_aggregates(base, where=kept))
            .where(base.c.hour_devices > 0).group_by(*keys))


RENDER_VERSION = 4  # bump when zone_doc's output or the stored format change: stored rows are rebuilt

# Stored zone rows are compressed here, not by PostgreSQL: an LZ4 block (pyarrow's codec) of
# ~12 KB of JSON is ~2 KB, so a year page moves ~90 KB instead of ~0.5 MB out of the database,
# and decompressing it here costs less than PostgreSQL's pglz did (measured: 0.41 ms instead of
# 0.75 ms per page, database and client together).
_LZ4 = pa.Codec("lz4_raw")


def pack_docs(docs: bytes) -> tuple[bytes, int]:
    """(compressed, raw size) of a chunk's comma-joined rows, as `zone_series` stores them."""
    return _LZ4.compress(docs, asbytes=True), len(docs)


def unpack_docs(data: bytes, raw_size: int | None) -> bytes:
    if raw_size is None:  # written before compression (never served: its version is older)
        return bytes(data)
    return _LZ4.decompress(data, decompressed_size=raw_size, asbytes=True) if raw_size else b""


def zone_doc(r: Any, interval: Interval) -> bytes:
    """One aggregate row of `zone_aggregates` → its published JSON."""
    n_devices = int(r.n_devices)
    row = _series_row(r, interval, QUANTITY_BY_CODE[r.quantity].unit, _EXPECTED_HOURS[interval] * n_devices)
    row["n_devices"] = n_devices
    return orjson.dumps(row)


def _ceil(t: datetime, interval: Interval) -> datetime:
    f = floor_period(t, interval)
    return f if f == t else f + _STEP[interval]


def floor_period(t: datetime, interval: Interval) -> datetime:
    """The start of the hour (or UTC day) holding t."""
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if interval == Interval.DAY else t


def _live_zone_docs(conn: Connection, zone_id: str, ids: list[int], code: int, interval: Interval, k: int,
                    lo: datetime, hi: datetime) -> tuple[list[bytes], int]:
    """Periods starting in [lo, hi) (`_window` puts lo past the cursor), aggregated now."""
    stmt = zone_aggregates([(zone_id, i) for i in ids], [code], lo, hi, interval, k).order_by(sa.text("period"))
    docs, n_suppressed = [], 0
    for r in conn.execute(stmt):
        n_suppressed += int(r.suppressed_hours)
        if r.n_devices:
            docs.append(zone_doc(r, interval))
    return docs, n_suppressed


# Stored rows come in chunks: a day of hourly rows, an ISO week (Monday first) of daily rows,
# joined in one `docs` value (~12 KB). Reading a year page is then ~42 rows instead of 1000:
# measured 1.3 ms instead of 2.2 ms per page, PostgreSQL and Python together.
CHUNK_PERIODS = {Interval.HOUR: 24, Interval.DAY: 7}


def chunk_start(t: datetime, interval: Interval) -> datetime:
    """The start of the stored chunk holding period t (a UTC day, or the ISO week's Monday)."""
    day = floor_period(t, Interval.DAY)
    return day if interval == Interval.HOUR else day - timedelta(days=day.weekday())


def _stored_rows(chunks: list[tuple[Any, ...]], interval: Interval, a: datetime,
                 b: datetime) -> tuple[list[bytes], int, int]:
    """The stored rows of whole periods [a, b) from their chunks (chunk, n, n_suppressed, docs,
    raw_size, and for the edge chunks idx, ends, suppressed): (fragments of comma-joined rows,
    rows, suppressed zone-hours). Chunks inside the span are taken whole, the edge ones sliced by
    their offsets."""
    step, size = _STEP[interval], CHUNK_PERIODS[interval]
    fragments: list[bytes] = []
    count = suppressed = 0
    for chunk, n, n_suppressed, packed, raw_size, idx, ends, hours in chunks:
        if idx is None:  # inside the span
            if n:
                fragments.append(unpack_docs(packed, raw_size))
            count += n
            suppressed += n_suppressed
            continue
        docs = unpack_docs(packed, raw_size)
        first = max(0, (a - chunk) // step)
        last = min(size, (b - chunk) // step)
        suppressed += sum(hours[first:last])
        keep = [i for i, position in enumerate(idx) if first <= position < last]
        if keep:
            start = ends[keep[0] - 1] + 1 if keep[0] else 0
            fragments.append(docs[start:ends[keep[-1]]])
            count += len(keep)
    return fragments, count, suppressed


# The zone series page as steps (a generator), shared by the sync driver (`zone_series_json`:
# exports, CSV, the tests) and the async one (`zone_series_json_async`: the endpoint, without a
# thread hop in the common case). A step is ("sql", statement, params) → its rows, from the raw
# binary cursor, or ("sync", fn) → fn(connection), SQLAlchemy work done in a worker thread.
Step = tuple[Any, ...]


def _zone_page_steps(settings: Settings, zone_id: str, quantity: str | QuantityFilter, time_range: TimeRange,
                     interval: Interval | str, after: datetime | None,
                     limit: int | None) -> Generator[Step, Any, SeriesJson]:
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    k = settings.k_anonymity
    lo, hi, nxt = _window(start, end, after, limit, interval)
    a = _ceil(lo, interval)
    params = {"z": zone_id, "k": k, "v": RENDER_VERSION, "q": info.code, "unit": interval.value, "a": a,
              "hi": floor_period(hi, interval), "first": chunk_start(a, interval),
              "size": CHUNK_PERIODS[interval] * _STEP[interval]}
    statement = _ADMIN_ZONE_PAGE
    if is_h3_cell(zone_id):
        _check_h3_resolution(zone_id, settings)
        statement = _H3_ZONE_PAGE
        params.update(h3_zone_params(zone_id))
    rows = yield ("sql", statement, params)
    if rows[0][2] and _placed(zone_id, rows[0][2]):  # members only Python can place: list, read again
        params["ids"] = yield ("sync", lambda conn: zone_device_ids(conn, settings, zone_id))
        rows = yield ("sql", _LISTED_ZONE_PAGE, params)
    known, ids, _, b, pending = rows[0][:5]
    if not known:
        raise NotFound(f"no zone {zone_id[:40]!r}")
    if not ids:
        return SeriesJson([], 0, 0, None)
    segments: list[tuple[datetime, datetime]] = [(lo, hi)]
    stored: list[bytes] = []
    count = suppressed = 0
    if b is not None and b > a and not pending:
        segments = [(lo, a), (b, hi)]  # live before and after the stored span
        stored, count, suppressed = _stored_rows([r[5:] for r in rows if r[5] is not None], interval, a, b)
    live: list[tuple[list[bytes], int]] = [([], 0)] * len(segments)
    if any(x < y for x, y in segments):
        live = yield ("sync", lambda conn: [
            _live_zone_docs(conn, zone_id, ids, info.code, interval, k, x, y) if x < y else ([], 0)
            for x, y in segments])
    for docs, n_suppressed in live:
        suppressed += n_suppressed
        count += len(docs)
    docs = live[0][0] + stored + live[1][0] if len(live) == 2 else live[0][0]
    return SeriesJson(docs, count, suppressed, nxt)


def zone_series_json(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                     time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                     after: datetime | None = None, limit: int | None = None) -> SeriesJson:
    """One page of a zone's series, rendered. Whole periods below the materialisation watermark
    come from `zone_series` (api/zone_rollup.py) when nothing they depend on changed since; the
    rest (recent hours, a partial first or last day, pending writes, changed membership) is
    aggregated live from `hourly`. Both give the same bytes."""
    steps = _zone_page_steps(settings, zone_id, quantity, time_range, interval, after, limit)
    with conn.connection.driver_connection.cursor(binary=True) as cur:  # type: ignore[union-attr]
        step = _advance(steps, None)
        while not isinstance(step, SeriesJson):
            step = _advance(steps, cur.execute(step[1], step[2]).fetchall() if step[0] == "sql" else step[1](conn))
        return step


async def zone_series_json_async(pool: AsyncConnectionPool, run_sync: Callable[[Callable[[Connection], Any]], Awaitable[Any]],
                                 settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                                 time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                                 after: datetime | None = None, limit: int | None = None) -> SeriesJson:
    """`zone_series_json` with its statements on an async psycopg pool (autocommit connections)
    in the event loop, and only the SQLAlchemy work (live periods, H3 listing), when a page has
    any, in a worker thread through `run_sync(fn)` → fn(sync connection)."""
    steps = _zone_page_steps(settings, zone_id, quantity, time_range, interval, after, limit)
    step = _advance(steps, None)
    while not isinstance(step, SeriesJson):
        step = _advance(steps, await (_fetch_async(pool, step[1], step[2]) if step[0] == "sql" else run_sync(step[1])))
    return step


def _advance(steps: Generator[Step, Any, SeriesJson], answer: Any) -> Step | SeriesJson:
    """The next step of a page, given the answer to the previous one; the page once done."""
    try:
        return steps.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _fetch_async(pool: AsyncConnectionPool, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one statement on a pooled connection; once more on a fresh connection when the
    pooled one turns out broken (the server restarted since it was last used: no ping first)."""
    for attempt in (1, 2):
        async with pool.connection() as conn:
            try:
                async with conn.cursor(binary=True) as cur:
                    await cur.execute(statement, params)  # type: ignore[arg-type]
                    return await cur.fetchall()
            except psycopg.OperationalError:
                if attempt == 2 or not conn.broken:
                    raise
        await pool.check()  # the others are likely broken too: drop them before the retry
    raise AssertionError("unreachable")


def _parse_rows(docs: list[bytes]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(docs) + b"]")
    for row in rows:
        period = row["period"]
        period["datetime_from"] = datetime.fromisoformat(period["datetime_from"])
        period["datetime_to"] = datetime.fromisoformat(period["datetime_to"])
    return rows


def zone_series_page(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                     time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                     after: datetime | None = None, limit: int | None = None) -> SeriesPage:
    page = zone_series_json(conn, settings, zone_id, quantity, time_range, interval, after, limit)
    return SeriesPage(_parse_rows(page.docs), page.suppressed, page.next_after)


def zone_series(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return zone_series_page(conn, settings, zone_id, quantity, time_range, interval, after, limit).results


# --- mobile -------------------------------------------------------------------------------------

def mobile_cells(conn: Connection, settings: Settings, quantity: str | QuantityFilter,
                 time_range: TimeRange) -> list[dict[str, Any]]:
    """(H3 cell, hour) means of privacy-filtered mobile points, ≥ k distinct devices each."""
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    d, r = tables.devices, tables.readings
    devices = {row.id: anonymise.parse_privacy_zones(row.privacy_zones) for row in conn.execute(
        sa.select(d.c.id, d.c.privacy_zones)
        .where(d.c.kind == "mobile", d.c.consent_public.is_(True), d.c.status != "unreliable"))}
    if not devices:
        return []
    # Trips need every position of the device (any quantity), so buffers are computed on all
    # located readings in the range, then applied to this quantity's values.
    rows = conn.execute(
        sa.select(r.c.device_id, r.c.time, r.c.quantity, r.c.value, r.c.flags, r.c.lat, r.c.lon)
        .where(r.c.device_id.in_(list(devices)), r.c.time >= start, r.c.time < end,
               r.c.lat.isnot(None), r.c.lon.isnot(None))
        .order_by(r.c.device_id, r.c.time)
    ).all()
    points: list[anonymise.Point] = []
    for row in rows:
        points.append(anonymise.Point(row.device_id, row.time, row.lat, row.lon,
                                      row.value if (row.quantity == info.code and row.flags == 0) else None))
    kept = anonymise.filter_mobile_points(points, devices)
    cells = anonymise.aggregate_cells(kept, settings.h3_resolution)
    published = anonymise.suppress_small_cells(cells, settings.k_anonymity)
    return [
        {"h3_cell": c.cell, "period": {"datetime_from": c.hour, "datetime_to": c.hour + timedelta(hours=1),
                                       "interval": "hour"},
         "value": c.mean, "unit": info.unit, "n_devices": c.n_devices, "n_readings": c.n,
         "summary": {"min": c.min, "max": c.max, "mean": c.mean},
         "coordinates": dict(zip(("latitude", "longitude"), anonymise.cell_centre(c.cell), strict=True))}
        for c in published
    ]


# --- reference stations -------------------------------------------------------------------------

def stations(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    s = tables.reference_stations
    return [
        {"code": r.code, "name": r.name, "network": r.network, "station_type": r.station_type,
         "coordinates": {"latitude": r.lat, "longitude": r.lon} if r.lat is not None else None,
         "pollutants": list(r.pollutants or []),
         "licence": r.licence or settings.licence_name, "attribution": r.attribution or r.network}
        for r in conn.execute(sa.select(s).order_by(s.c.code))
    ]


def station(conn: Connection, settings: Settings, code: str) -> dict[str, Any]:
    for row in stations(conn, settings):
        if row["code"] == code:
            return row
    raise StationNotFound(f"no reference station {code[:40]!r}")


def station_series(conn: Connection, settings: Settings, code: str, quantity: str | QuantityFilter,
                   time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                   after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    s, rr = tables.reference_stations, tables.reference_readings
    if conn.execute(sa.select(s.c.code).where(s.c.code == code)).first() is None:
        raise StationNotFound(f"no reference station {code[:40]!r}")
    valid = sa.or_(rr.c.validity.is_(None), rr.c.validity > 0)
    period = _period(rr.c.time, interval).label("period")
    stmt = (sa.select(period, sa.func.count().label("n"), sa.func.avg(rr.c.value).label("mean"),
                      sa.func.min(rr.c.value).label("min"), sa.func.max(rr.c.value).label("max"),
                      sa.func.percentile_cont(0.5).within_group(rr.c.value).label("median"),
                      sa.func.stddev_samp(rr.c.value).label("sd"))
            .where(rr.c.station_code == code, rr.c.quantity == info.code, rr.c.time >= start,
                   rr.c.time < end, valid)
            .group_by(period).order_by(period))
    if after is not None:
        stmt = stmt.having(period > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    step = timedelta(days=1) if interval == Interval.DAY else timedelta(hours=1)
    expected = 24 if interval == Interval.DAY else 1
    out = [
        {"period": {"datetime_from": r.period, "datetime_to": r.period + step, "interval": interval.value},
         "value": r.mean, "unit": info.unit, "n_readings": int(r.n),
         "coverage": {"expected_count": expected, "observed_count": int(r.n),
                      "percent_complete": round(100.0 * int(r.n) / expected, 1)},
         "summary": {"min": r.min, "median": r.median, "max": r.max, "mean": r.mean, "sd": r.sd}}
        for r in conn.execute(stmt)
    ]
    return _page(out, limit)[0] if limit is not None else out


def quantity_list() -> list[dict[str, Any]]:
    return [{"name": q.name, "unit": q.unit, "label": q.label, "plausible_range": [q.low, q.high]}
            for q in sorted(QUANTITY_BY_CODE.values(), key=lambda q: q.code)]
