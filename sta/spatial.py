"""Geospatial `$filter` functions evaluated in Python on the public geometries (H3 cell centres
and polygons, zone polygons, station points) with shapely/GEOS, since the PostgreSQL civicair
runs on has no PostGIS (docs/sensorthings.md#geospatial-functions). A condition with one of
them is evaluated for every entity of its set and handed to SQL as an id list.

Coordinates are WGS84 longitude/latitude; `geo.distance` and `geo.length` are in degrees, as
for a geometry (FROST-Server does the same).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import shapely
from civicair.core.errors import BadQuery
from civicair.sta.expression import COMPARISONS, Binary, Call, Literal, Node, Path
from shapely import wkt
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

PREDICATES = {"geo.intersects", "st_equals", "st_disjoint", "st_touches", "st_within", "st_overlaps",
              "st_crosses", "st_intersects", "st_contains", "st_relate"}
MEASURES = {"geo.distance", "geo.length"}
FUNCTIONS = PREDICATES | MEASURES
_OPS: dict[str, Callable[[Any, Any], bool]] = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt,
                                               "ge": operator.ge, "lt": operator.lt, "le": operator.le}


@lru_cache(maxsize=256)
def parse_wkt(text: str) -> BaseGeometry:
    body = text.split(";", 1)[1] if text.upper().startswith("SRID=") else text
    try:
        geometry = wkt.loads(body)
    except (shapely.errors.GEOSException, ValueError, TypeError):
        raise BadQuery(f"$filter: not a WKT geometry: {text[:80]!r}") from None
    if geometry.is_empty:
        raise BadQuery(f"$filter: empty geometry {text[:80]!r}")
    return geometry


def geojson_shape(value: dict[str, Any] | None) -> BaseGeometry | None:
    if not value:
        return None
    try:
        return shape(value)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
        return None


def _predicate(name: str, a: BaseGeometry, b: BaseGeometry, pattern: str | None) -> bool:
    if name in ("geo.intersects", "st_intersects"):
        return bool(a.intersects(b))
    if name == "st_relate":
        return bool(a.relate_pattern(b, pattern or ""))
    method = {"st_equals": "equals", "st_disjoint": "disjoint", "st_touches": "touches", "st_within": "within",
              "st_overlaps": "overlaps", "st_crosses": "crosses", "st_contains": "contains"}[name]
    return bool(getattr(a, method)(b))


class Evaluator:
    """Evaluates one condition holding geospatial functions on an entity, given how a property
    path reads that entity's geometry."""

    def __init__(self, node: Node, geometry_props: set[str]) -> None:
        self.node = node
        self.props = geometry_props
        self._check(node)

    def _check(self, node: Node) -> None:
        if isinstance(node, Binary) and node.op in COMPARISONS:
            call, other = (node.left, node.right) if isinstance(node.left, Call) else (node.right, node.left)
            if not (isinstance(call, Call) and call.name in MEASURES and isinstance(other, Literal)
                    and other.kind == "number"):
                raise BadQuery("$filter: geo.distance and geo.length can only be compared with a number")
            self._args(call)
            return
        if not (isinstance(node, Call) and node.name in PREDICATES):
            raise BadQuery("$filter: a geospatial function must be the whole condition "
                           "(st_within(location, geography'…'), geo.distance(…) lt 0.01)")
        self._args(node)

    def _args(self, call: Call) -> None:
        want = 1 if call.name == "geo.length" else 3 if call.name == "st_relate" else 2
        if len(call.args) != want:
            raise BadQuery(f"$filter: {call.name} takes {want} argument(s), got {len(call.args)}")
        for i, arg in enumerate(call.args):
            if call.name == "st_relate" and i == 2:
                if not (isinstance(arg, Literal) and arg.kind == "string"):
                    raise BadQuery("$filter: st_relate's third argument is a DE-9IM pattern string")
            elif isinstance(arg, Literal):
                if arg.kind != "geometry":
                    raise BadQuery(f"$filter: {call.name} expects geometries, got a {arg.kind}")
                parse_wkt(arg.value)
            elif not (isinstance(arg, Path) and len(arg.segments) == 1 and arg.segments[0] in self.props):
                raise BadQuery(f"$filter: {call.name} expects a geometry property ({', '.join(sorted(self.props))}) "
                               "or a geography'…' literal")

    def _geometry(self, node: Node, read: Callable[[str], BaseGeometry | None]) -> BaseGeometry | None:
        if isinstance(node, Literal):
            return parse_wkt(node.value)
        assert isinstance(node, Path)
        return read(node.segments[0])

    def _measure(self, call: Call, read: Callable[[str], BaseGeometry | None]) -> float | None:
        geoms = [self._geometry(a, read) for a in call.args]
        if any(g is None for g in geoms):
            return None
        if call.name == "geo.length":  # of a line; other geometries have none
            line = geoms[0].geom_type in ("LineString", "MultiLineString", "LinearRing")  # type: ignore[union-attr]
            return float(geoms[0].length) if line else None  # type: ignore[union-attr]
        return float(geoms[0].distance(geoms[1]))  # type: ignore[union-attr]

    def __call__(self, read: Callable[[str], BaseGeometry | None]) -> bool:
        node = self.node
        if isinstance(node, Binary):
            left_is_call = isinstance(node.left, Call)
            call = node.left if left_is_call else node.right
            number = (node.right if left_is_call else node.left).value  # type: ignore[union-attr]
            value = self._measure(call, read)  # type: ignore[arg-type]
            if value is None:
                return False
            return _OPS[node.op](value, number) if left_is_call else _OPS[node.op](number, value)
        assert isinstance(node, Call)
        a, b = (self._geometry(x, read) for x in node.args[:2])
        if a is None or b is None:
            return False
        pattern = node.args[2].value if node.name == "st_relate" else None  # type: ignore[union-attr]
        return _predicate(node.name, a, b, pattern)


def matching(node: Node, entities: Iterable[tuple[int, dict[str, Any]]], geometry_props: set[str]) -> list[int]:
    """Ids of the entities (id, props) for which the condition holds."""
    evaluate = Evaluator(node, geometry_props)
    out = []
    for entity_id, props in entities:
        cache: dict[str, BaseGeometry | None] = {}

        def read(name: str, props: dict[str, Any] = props, cache: dict[str, BaseGeometry | None] = cache
                 ) -> BaseGeometry | None:
            if name not in cache:
                cache[name] = geojson_shape(props.get(name))
            return cache[name]

        if evaluate(read):
            out.append(entity_id)
    return out
