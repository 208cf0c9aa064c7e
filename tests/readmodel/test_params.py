"""Query parameter models, without a database: validation and the SQL they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from civicair.core import tables
from civicair.core.errors import BadRange, InvalidParameter
from civicair.readmodel.params import (
    Paging,
    QuantityFilter,
    TimeRange,
    ZoneFilter,
    decode_cursor,
    encode_cursor,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql

NOW = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def sql(expr) -> str:
    return str(expr.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_time_range_defaults_to_last_seven_days() -> None:
    assert TimeRange().resolve(400, now=NOW) == (NOW - timedelta(days=7), NOW)


def test_naive_times_are_utc_and_offsets_are_converted() -> None:
    tr = TimeRange(datetime_from="2026-01-01T00:00:00", datetime_to="2026-01-02T01:00:00+01:00")
    assert tr.resolve(400) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


def test_reversed_and_empty_ranges_are_bad_ranges() -> None:
    with pytest.raises(BadRange, match="before"):
        TimeRange(datetime_from=NOW, datetime_to=NOW - timedelta(hours=1)).resolve(400)
    with pytest.raises(BadRange):
        TimeRange(datetime_from=NOW, datetime_to=NOW).resolve(400)


def test_range_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(BadRange, match="maximum of 30 days"):
        TimeRange(datetime_from=NOW - timedelta(days=31), datetime_to=NOW).resolve(30)
    assert TimeRange(datetime_from=NOW - timedelta(days=30), datetime_to=NOW).resolve(30)[0] == NOW - timedelta(days=30)


def test_only_from_given_extends_seven_days_forward_when_in_the_future() -> None:
    start = NOW + timedelta(days=3)
    assert TimeRange(datetime_from=start).resolve(400, now=NOW) == (start, start + timedelta(days=7))


def test_time_range_where_produces_half_open_interval() -> None:
    text = sql(TimeRange(datetime_from=NOW - timedelta(hours=2), datetime_to=NOW).where(tables.hourly.c.hour, 400))
    assert "hourly.hour >= '2026-01-12 07:00:00+00:00'" in text
    assert "hourly.hour < '2026-01-12 09:00:00+00:00'" in text


def test_quantity_filter() -> None:
    q = QuantityFilter(quantity="pm10")
    assert q.info.code == 3 and q.info.unit == "µg/m³"
    assert sql(q.where(tables.hourly.c.quantity)) == "hourly.quantity = 3"
    with pytest.raises(InvalidParameter) as err:
        QuantityFilter(quantity="pm25'; drop table devices; --")
    assert err.value.parameter == "quantity"


def test_paging_limits() -> None:
    assert Paging().limit == 100
    assert Paging(limit=1000).limit == 1000
    for bad in (0, 1001, -1):
        with pytest.raises(ValidationError):
            Paging(limit=bad)


@given(st.datetimes(timezones=st.just(UTC)))
def test_cursor_round_trips_a_time(t: datetime) -> None:
    assert Paging(cursor=encode_cursor(t)).after_time() == t


@given(st.text(min_size=1, max_size=50))
def test_garbage_cursor_is_an_invalid_parameter_or_a_key(garbage: str) -> None:
    try:
        Paging(cursor=garbage).after_time()
    except InvalidParameter as exc:
        assert exc.parameter == "cursor"
    except ValidationError:
        pass


def test_cursor_of_a_key() -> None:
    assert decode_cursor(encode_cursor("3f9a1c0b7d2e")) == "3f9a1c0b7d2e"


def test_zone_filter_kind() -> None:
    assert ZoneFilter(zone_id="891f8d7a49bffff").kind == "h3"
    assert ZoneFilter(zone_id="67482").kind == "admin"
    with pytest.raises(ValidationError):
        ZoneFilter(zone_id="")
