"""The `$filter` / `$orderby` / `$expand` parsers and the id scheme, without a database: exact
trees for the forms the clients send, and any input either parses or raises BadQuery naming a
position (never another exception)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from civicair.core.errors import BadQuery, NotFound
from civicair.sta import ids
from civicair.sta.expression import (
    Binary,
    Call,
    Literal,
    Path,
    Unary,
    conjuncts,
    parse_filter,
    parse_orderby,
)
from civicair.sta.options import parse_query
from civicair.sta.paths import parse_path
from hypothesis import given, settings
from hypothesis import strategies as st

T = datetime(2024, 12, 1, tzinfo=UTC)


def test_the_clients_filters_parse_to_the_expected_trees() -> None:
    assert parse_filter("phenomenonTime ge 2024-12-01T00:00:00Z and Datastream/@iot.id eq 1") == Binary(
        "and", Binary("ge", Path(("phenomenonTime",)), Literal("datetime", T)),
        Binary("eq", Path(("Datastream", "@iot.id")), Literal("number", 1)))
    assert parse_filter("st_within(location, geography'POLYGON((7.7 48.5, 7.8 48.5))')") == Call(
        "st_within", (Path(("location",)), Literal("geometry", "POLYGON((7.7 48.5, 7.8 48.5))")))
    assert parse_filter("substringof('it''s', name)") == Call("substringof", (Literal("string", "it's"), Path(("name",))))
    assert parse_filter("not result gt -2.5e1") == Unary("not", Binary("gt", Path(("result",)), Literal("number", -25.0)))


def test_precedence_follows_odata() -> None:
    tree = parse_filter("a eq 1 or b eq 2 and c add 2 mul 3 gt 4")
    assert tree.op == "or" and tree.right.op == "and"  # type: ignore[union-attr]
    arith = tree.right.right.left  # type: ignore[union-attr]
    assert arith == Binary("add", Path(("c",)), Binary("mul", Literal("number", 2), Literal("number", 3)))
    assert len(conjuncts(parse_filter("a eq 1 and (b eq 2 and c eq 3)"))) == 3
    assert len(conjuncts(parse_filter("a eq 1 or b eq 2"))) == 1


def test_literals_intervals_dates_and_durations() -> None:
    assert parse_filter("phenomenonTime eq 2024-12-01T00:00:00Z/2024-12-01T01:00:00+01:00").right == Literal(  # type: ignore[union-attr]
        "interval", (T, T))
    assert parse_filter("date(resultTime) eq 2024-12-01").right.kind == "date"  # type: ignore[union-attr]
    assert parse_filter("resultTime sub duration'PT1H30M' gt 2024-12-01T00:00:00Z").left.right == Literal(  # type: ignore[union-attr]
        "duration", timedelta(hours=1, minutes=30))


def test_orderby_directions_are_case_insensitive() -> None:
    items = parse_orderby("phenomenonTime DESC, id,result asc")
    assert [(i.expr, i.descending) for i in items] == [(Path(("phenomenonTime",)), True), (Path(("id",)), False),
                                                       (Path(("result",)), False)]


def test_expand_nests_options_and_paths() -> None:
    q = parse_query([("$expand", "Datastreams($select=name;$expand=Observations($top=2;$orderby=result desc)),"
                                 "Locations,Datastreams/Sensor($select=name)")])
    (ds, loc, path) = q.expand
    assert ds.name == "Datastreams" and ds.query.select == ("name",)
    assert ds.query.expand[0].query.top == 2 and ds.query.expand[0].query.orderby[0].descending
    assert loc.name == "Locations" and path.query.expand[0].name == "Sensor"
    assert path.query.expand[0].query.select == ("name",)


def test_paths() -> None:
    p = parse_path("/Datastreams(3)/Thing/Locations")
    assert p.sets == ("Datastreams", "Things", "Locations") and p.steps[0].key == 3
    assert parse_path("Things(1)/name/$value").prop == "name"
    assert parse_path("Things(1)/Datastreams/$ref").ref
    with pytest.raises(NotFound):
        parse_path("Things('x')")
    with pytest.raises(BadQuery):
        parse_path("Things/Datastreams")


@given(st.integers(1, 2**25 - 2), st.integers(1, 15), st.integers(0, 2**24 - 1))
def test_ids_round_trip(thing: int, code: int, hour: int) -> None:
    ds = ids.datastream_id(thing, code)
    assert ids.split_datastream(ds) == (thing, code)
    obs = ids.observation_id(ds, ids.hour_of(hour))
    assert obs < 2**53 and ids.split_observation(obs) == (ds, ids.hour_of(hour))


@pytest.mark.parametrize("value", [0, -1, 16, 2**63 - 1, 2**80])
def test_impossible_ids_decode_to_nothing(value: int) -> None:
    assert ids.split_observation(value) is None or value == 16


ALPHABET = st.sampled_from(["name", "eq", "ne", "and", "or", "not", "(", ")", "'x'", "1", "-", "2.5", ",",
                            "substringof", "geo.intersects", "/", "Datastream", "@iot.id", "true", "null",
                            "2024-12-01T00:00:00Z", "geography'POINT(1 2)'", "add", "'", "duration'PT1H'", " "])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map(" ".join) | st.text(max_size=40))
def test_any_filter_text_parses_or_is_a_bad_query(text: str) -> None:
    try:
        parse_filter(text)
    except BadQuery as exc:
        assert "$filter" in exc.detail


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="$abcdefilnoprstxA()=;,/'0123456789 ", max_size=40))
def test_any_expand_or_orderby_parses_or_is_a_bad_query(text: str) -> None:
    for option in ("$expand", "$orderby", "$select", "$top"):
        try:
            parse_query([(option, text)])
        except BadQuery:
            pass
