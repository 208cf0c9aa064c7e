"""`$filter` and `$orderby` expressions compiled to SQLAlchemy Core (docs/sensorthings.md#filters):
every operator and built-in function maps to a Core construct over the columns of a `Scope`; no
SQL text is built. Three things are delegated by the scope:

- a comparison through a navigation property (`Datastream/Thing/name eq 'x'`) becomes, for the
  metadata sets, an EXISTS over the related set, and for Observations an id list of the related
  entities (`Scope.foreign`);
- geospatial functions (`geo.intersects`, `st_within`, `geo.distance`, …) are evaluated in Python
  on the public geometries (`sta.spatial`; there is no PostGIS) and enter as an id list;
- property types decide the meaning of comparisons (an interval `phenomenonTime lt T` means
  its end ≤ T).

Errors are `BadQuery` naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.core.errors import BadQuery
from civicair.sta import spatial
from civicair.sta.expression import (
    COMPARISONS,
    Binary,
    Call,
    Literal,
    Node,
    Path,
    Unary,
    calls_of,
    paths_of,
)
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class Typed:
    sql: Any
    type: str  # string number bool instant interval json null duration geometry date time
    end: Any = None  # intervals: the end (sql is the start)


@dataclass
class Scope:
    """Where names resolve: an entity set's columns, its navigation properties and the way
    related sets are reached."""

    entity_set: str
    columns: Callable[[tuple[str, ...]], Typed | None]  # a property path → its column, or None
    navs: set[str]
    # (navigation, atom with the navigation prefix stripped) → a boolean SQL expression
    foreign: Callable[[str, Node], Any]
    # (atom with a spatial function) → SQL (an id list test)
    spatial: Callable[[Node], Any]


STRING_FUNCTIONS = {"substringof", "contains", "startswith", "endswith", "length", "indexof", "substring",
                    "tolower", "toupper", "trim", "concat"}
DATE_FUNCTIONS = {"year", "month", "day", "hour", "minute", "second", "fractionalseconds", "date", "time",
                  "totaloffsetminutes", "now", "mindatetime", "maxdatetime"}
MATH_FUNCTIONS = {"round", "floor", "ceiling"}
BOOLEAN_FUNCTIONS = {"substringof", "contains", "startswith", "endswith"} | spatial.PREDICATES


def _utc(x: Any) -> Any:
    return sa.func.timezone("UTC", x)


def literal(node: Literal) -> Typed:
    v = node.value
    if node.kind == "string":
        return Typed(sa.literal(v, sa.Text), "string")
    if node.kind == "number":
        return Typed(sa.literal(v, sa.BigInteger if isinstance(v, int) and abs(v) < 2 ** 63 else sa.Float)
                     if isinstance(v, int) else sa.literal(v, sa.Float), "number")
    if node.kind == "bool":
        return Typed(sa.literal(v, sa.Boolean), "bool")
    if node.kind == "null":
        return Typed(sa.null(), "null")
    if node.kind == "datetime":
        return Typed(sa.literal(v, sa.DateTime(timezone=True)), "instant")
    if node.kind == "interval":
        tz = sa.DateTime(timezone=True)
        return Typed(sa.literal(v[0], tz), "interval", sa.literal(v[1], tz))
    if node.kind == "date":
        return Typed(sa.literal(v, sa.Date), "date")
    if node.kind == "duration":
        return Typed(sa.literal(v, sa.Interval), "duration")
    raise BadQuery("$filter: a geometry literal is only allowed in a geospatial function")


def _json_as(value: Typed, want: str) -> Typed:
    """A JSON value read as `want` (string, number, bool); NULL when it is of another JSON type,
    so a comparison with it is false rather than an error."""
    kind = {"string": "string", "number": "number", "bool": "boolean"}[want]
    guard = sa.func.jsonb_typeof(value.sql) == kind
    text = value.sql.op("#>>")(sa.literal_column("'{}'"))
    cast = {"string": sa.Text, "number": sa.Float, "bool": sa.Boolean}[want]
    return Typed(sa.case((guard, sa.cast(text, cast))), want)


def _unify(a: Typed, b: Typed) -> tuple[Typed, Typed]:
    if a.type == "json" and b.type in ("string", "number", "bool"):
        return _json_as(a, b.type), b
    if b.type == "json" and a.type in ("string", "number", "bool"):
        return a, _json_as(b, a.type)
    if a.type == "json" and b.type == "instant":
        return Typed(sa.cast(_json_as(a, "string").sql, sa.Text), "jsontime"), b
    return a, b


def _compare(op: str, a: Typed, b: Typed) -> Any:
    a, b = _unify(a, b)
    if a.type == "null" or b.type == "null":
        other = b if a.type == "null" else a
        if op not in ("eq", "ne"):
            raise BadQuery(f"$filter: {op} null is not a comparison; use eq null or ne null")
        return other.sql.is_(None) if op == "eq" else other.sql.isnot(None)
    if a.type == "interval" or b.type == "interval":
        return _compare_time(op, a, b)
    if a.type == "date" and b.type == "instant" or a.type == "instant" and b.type == "date":
        a = Typed(sa.cast(_utc(a.sql), sa.Date), "date") if a.type == "instant" else a
        b = Typed(sa.cast(_utc(b.sql), sa.Date), "date") if b.type == "instant" else b
    if a.type == "jsontime":
        raise BadQuery("$filter: comparing a JSON property with a date-time is not supported")
    if a.type != b.type:
        raise BadQuery(f"$filter: cannot compare a {a.type} with a {b.type}")
    if a.type in ("geometry", "json"):
        raise BadQuery(f"$filter: a {a.type} value cannot be compared; use a function")
    return {"eq": a.sql == b.sql, "ne": a.sql != b.sql, "gt": a.sql > b.sql, "ge": a.sql >= b.sql,
            "lt": a.sql < b.sql, "le": a.sql <= b.sql}[op]


def _compare_time(op: str, a: Typed, b: Typed) -> Any:
    """Interval semantics (an interval is [start, end)): `x lt T` — x ends at or before T; `x gt
    T` — x starts after T; `x ge T` — starts at or after T; `x le T` — ends at or before T."""
    def bounds(t: Typed) -> tuple[Any, Any]:
        if t.type == "interval":
            return t.sql, t.end
        if t.type == "instant":
            return t.sql, t.sql
        raise BadQuery(f"$filter: cannot compare a time interval with a {t.type}")

    (s1, e1), (s2, e2) = bounds(a), bounds(b)
    point_b = b.type == "instant"
    if op == "eq":
        return sa.and_(s1 == s2, e1 == e2)
    if op == "ne":
        return sa.not_(sa.and_(s1 == s2, e1 == e2))
    if op == "lt":
        return e1 <= s2 if a.type == "interval" else s1 < s2
    if op == "le":
        return e1 <= (s2 if point_b else e2) if a.type == "interval" else s1 <= s2
    if op == "gt":
        return s1 > e2 if point_b else s1 >= e2
    return s1 >= s2  # ge


class Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    # --- booleans ---------------------------------------------------------------------------
    def boolean(self, node: Node) -> Any:
        if isinstance(node, Binary) and node.op in ("and", "or"):
            parts = (self.boolean(node.left), self.boolean(node.right))
            return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        if isinstance(node, Unary) and node.op == "not":
            return sa.not_(self.boolean(node.operand))
        return self.atom(node)

    def atom(self, node: Node) -> Any:
        firsts = {p.segments[0] for p in paths_of(node)}
        navs = {f for f in firsts if f in self.scope.navs}
        if navs:
            if len(navs) > 1 or firsts - navs:
                raise BadQuery("$filter: one comparison can only use properties of one entity "
                               f"(here {', '.join(sorted(firsts))})")
            (name,) = navs
            return self.scope.foreign(name, strip(node, name))
        if any(c.name in spatial.FUNCTIONS for c in calls_of(node)):
            return self.scope.spatial(node)
        if isinstance(node, Binary) and node.op in COMPARISONS:
            return _compare(node.op, self.value(node.left), self.value(node.right))
        value = self.value(node)
        if value.type == "json":
            value = _json_as(value, "bool")
        if value.type not in ("bool", "null"):
            raise BadQuery(f"$filter: the expression is a {value.type}, not a condition")
        return value.sql

    # --- values -----------------------------------------------------------------------------
    def value(self, node: Node) -> Typed:
        if isinstance(node, Literal):
            return literal(node)
        if isinstance(node, Path):
            found = self.scope.columns(node.segments)
            if found is None:
                raise BadQuery(f"$filter: {self.scope.entity_set} have no property {'/'.join(node.segments)!r}")
            return found
        if isinstance(node, Unary):
            if node.op == "not":
                return Typed(sa.not_(self.boolean(node.operand)), "bool")
            v = self.value(node.operand)
            if v.type not in ("number", "duration"):
                raise BadQuery(f"$filter: cannot negate a {v.type}")
            return Typed(-v.sql, v.type)
        if isinstance(node, Binary):
            if node.op in ("and", "or") or node.op in COMPARISONS:
                return Typed(self.boolean(node), "bool")
            return self.arithmetic(node.op, self.value(node.left), self.value(node.right))
        return self.call(node)

    def arithmetic(self, op: str, a: Typed, b: Typed) -> Typed:
        a, b = _unify(a, b)
        if a.type == "json":
            a = _json_as(a, "number")
        if b.type == "json":
            b = _json_as(b, "number")
        if a.type == b.type == "number":
            x, y = sa.cast(a.sql, sa.Float), sa.cast(b.sql, sa.Float)
            if op == "add":
                return Typed(x + y, "number")
            if op == "sub":
                return Typed(x - y, "number")
            if op == "mul":
                return Typed(x * y, "number")
            if op == "div":
                return Typed(x / sa.func.nullif(y, 0.0), "number")  # x div 0 is null, not an error
            return Typed(sa.cast(sa.func.mod(sa.cast(a.sql, sa.Numeric), sa.func.nullif(sa.cast(b.sql, sa.Numeric), 0)),
                                 sa.Float), "number")
        if a.type == "instant" and b.type == "duration" and op in ("add", "sub"):
            return Typed(a.sql + b.sql if op == "add" else a.sql - b.sql, "instant")
        if a.type == b.type == "instant" and op == "sub":
            return Typed(a.sql - b.sql, "duration")
        if a.type == b.type == "duration" and op in ("add", "sub"):
            return Typed(a.sql + b.sql if op == "add" else a.sql - b.sql, "duration")
        raise BadQuery(f"$filter: {op} is not defined for a {a.type} and a {b.type}")

    def call(self, node: Call) -> Typed:
        name, args = node.name, node.args
        if name in spatial.FUNCTIONS:
            raise BadQuery(f"$filter: {name} can only be used in a condition on one entity's geometry")
        known = STRING_FUNCTIONS | DATE_FUNCTIONS | MATH_FUNCTIONS
        if name not in known:
            raise BadQuery(f"$filter: unknown function {name!r}")
        arity = {"substring": (2, 3), "now": (0, 0), "substringof": (2, 2), "contains": (2, 2),
                 "startswith": (2, 2), "endswith": (2, 2), "indexof": (2, 2), "concat": (2, 2)}.get(name, (1, 1))
        if not arity[0] <= len(args) <= arity[1]:
            raise BadQuery(f"$filter: {name} takes {arity[0]}{'' if arity[0] == arity[1] else f'-{arity[1]}'} "
                           f"argument(s), got {len(args)}")
        vals = [self.value(a) for a in args]
        if name in STRING_FUNCTIONS:
            want = ["string"] * len(vals)
            if name == "substring":
                want = ["string"] + ["number"] * (len(vals) - 1)
            vals = [_json_as(v, w) if v.type == "json" else v for v, w in zip(vals, want, strict=True)]
            for v, w in zip(vals, want, strict=True):
                if v.type not in (w, "null"):
                    raise BadQuery(f"$filter: {name} expects {w} arguments, got a {v.type}")
            s = [v.sql for v in vals]
            if name == "substringof":
                return Typed(sa.func.strpos(s[1], s[0]) > 0, "bool")
            if name == "contains":
                return Typed(sa.func.strpos(s[0], s[1]) > 0, "bool")
            if name == "startswith":
                return Typed(sa.func.starts_with(s[0], s[1]), "bool")
            if name == "endswith":
                return Typed(sa.func.right(s[0], sa.func.char_length(s[1])) == s[1], "bool")
            if name == "length":
                return Typed(sa.func.char_length(s[0]), "number")
            if name == "indexof":
                return Typed(sa.func.strpos(s[0], s[1]) - 1, "number")
            if name == "substring":
                start = sa.cast(s[1], sa.Integer) + 1
                return Typed(sa.func.substr(s[0], start, sa.cast(s[2], sa.Integer)) if len(s) == 3
                             else sa.func.substr(s[0], start), "string")
            if name == "concat":
                return Typed(sa.func.concat(s[0], s[1]), "string")
            fn = {"tolower": sa.func.lower, "toupper": sa.func.upper, "trim": sa.func.btrim}[name]
            return Typed(fn(s[0]), "string")
        if name in MATH_FUNCTIONS:
            (v,) = vals
            v = _json_as(v, "number") if v.type == "json" else v
            if v.type != "number":
                raise BadQuery(f"$filter: {name} expects a number, got a {v.type}")
            fn = {"round": sa.func.round, "floor": sa.func.floor, "ceiling": sa.func.ceil}[name]
            return Typed(fn(sa.cast(v.sql, sa.Float)), "number")
        if name == "now":
            return Typed(sa.func.now(), "instant")
        (v,) = vals
        if name in ("mindatetime", "maxdatetime"):
            if v.type != "interval":
                raise BadQuery(f"$filter: {name} expects a time interval, got a {v.type}")
            return Typed(v.sql if name == "mindatetime" else v.end, "instant")
        if v.type == "interval":
            v = Typed(v.sql, "instant")  # the functions of an interval read its start
        if v.type not in ("instant", "date"):
            raise BadQuery(f"$filter: {name} expects a date-time, got a {v.type}")
        utc = _utc(v.sql) if v.type == "instant" else v.sql
        if name == "date":
            return Typed(sa.cast(utc, sa.Date), "date")
        if name == "time":
            return Typed(sa.cast(utc, sa.Time), "time")
        if name == "totaloffsetminutes":
            return Typed(sa.literal(0, sa.Integer), "number")  # every time is served in UTC
        if name == "fractionalseconds":
            return Typed(sa.func.mod(sa.cast(sa.extract("microseconds", utc), sa.Numeric), 1000000) / 1e6, "number")
        part = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute",
                "second": "second"}[name]
        extracted = sa.extract(part, utc)
        return Typed(sa.func.floor(extracted) if part == "second" else extracted, "number")

    # --- order --------------------------------------------------------------------------------
    def order_key(self, node: Node) -> Any:
        v = self.value(node)
        if v.type == "json":
            return v.sql
        if v.type == "geometry":
            raise BadQuery("$orderby: a geometry cannot be ordered")
        return v.sql


def strip(node: Node, nav: str) -> Node:
    """`node` with the leading `nav/` removed from its paths."""
    if isinstance(node, Path):
        return Path(node.segments[1:]) if node.segments[0] == nav else node
    if isinstance(node, Call):
        return Call(node.name, tuple(strip(a, nav) for a in node.args))
    if isinstance(node, Unary):
        return Unary(node.op, strip(node.operand, nav))
    if isinstance(node, Binary):
        return Binary(node.op, strip(node.left, nav), strip(node.right, nav))
    return node


def json_column(column: Any, rest: tuple[str, ...]) -> Typed:
    """A JSON column or a member path inside it (`properties/kind`)."""
    value = column
    for key in rest:
        value = value.op("->")(sa.literal(key, sa.Text))
    return Typed(sa.type_coerce(value, JSONB), "json")


def as_utc_date(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


ZERO = timedelta(0)
