"""Query parameters of every public surface: pydantic models that validate input and give
SQLAlchemy conditions, tested without a database (docs/open-data.md#api-conventions).

- `Paging(limit=100, cursor=None)`: `limit` 1..1000; `cursor` is opaque (`encode_cursor`).
- `TimeRange(datetime_from=None, datetime_to=None)`: `.resolve(max_days, now=None)` →
  `(start, end)` (UTC, end exclusive; default the last 7 days; naive times are UTC), raises
  `BadRange` when reversed or longer than `max_days`; `.where(column, max_days)`.
- `QuantityFilter(quantity="pm25")`: `.info` (`QuantityInfo`), `.where(column)`; unknown names
  raise `InvalidParameter("quantity", ...)`.
- `ZoneFilter(zone_id=...)`: `.kind` is `"h3"` for a valid H3 cell, else `"admin"`.
- `Interval`: `"hour"` | `"day"`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import sqlalchemy as sa
from civicair.core.domain import QUANTITY_BY_NAME, QuantityInfo
from civicair.core.errors import BadRange, InvalidParameter
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_LIMIT = 1000
DEFAULT_DAYS = 7


class Interval(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"


STEP = {Interval.HOUR: timedelta(hours=1), Interval.DAY: timedelta(days=1)}
EXPECTED_HOURS = {Interval.HOUR: 1, Interval.DAY: 24}


def encode_cursor(value: datetime | str) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidParameter("cursor", "not a cursor returned by this API") from None


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


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

    def where(self, column: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
        return column == self.info.code


def quantity_info(quantity: str | QuantityFilter) -> QuantityInfo:
    return quantity.info if isinstance(quantity, QuantityFilter) else QuantityFilter(quantity=quantity).info


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


class ZoneFilter(BaseModel):
    model_config = ConfigDict(frozen=True)
    zone_id: str = Field(min_length=1, max_length=64)

    @property
    def kind(self) -> str:
        return "h3" if is_h3_cell(self.zone_id) else "admin"


def floor_period(t: datetime, interval: Interval) -> datetime:
    """The start of the hour (or UTC day) holding t."""
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if interval == Interval.DAY else t


def ceil_period(t: datetime, interval: Interval) -> datetime:
    f = floor_period(t, interval)
    return f if f == t else f + STEP[interval]


def page_window(start: datetime, end: datetime, after: datetime | None, limit: int | None,
                interval: Interval) -> tuple[datetime, datetime, datetime | None]:
    """The time span one page can cover, so a page never scans the whole range: periods after
    `after`, at most `limit` of them. Returns (lo, hi, cursor of the next page or None)."""
    step = STEP[interval]
    lo = max(start, after + step) if after is not None else start
    if limit is None:
        return lo, end, None
    try:
        hi = floor_period(lo, interval) + limit * step
    except OverflowError:
        return lo, end, None
    if hi >= end:
        return lo, end, None
    return lo, hi, hi - step
