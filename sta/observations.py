"""Observations: the published hourly rows of the datastreams (docs/sensorthings.md#observations).

A request is planned first (`plan`): the top-level `and` terms that only restrict datastreams
(`Datastream/@iot.id eq 3`, any condition on `Datastream/…` or `FeatureOfInterest/…`, resolved
on the catalogue) or time (`phenomenonTime ge …`, `resultTime lt …`, `@iot.id eq …`) narrow the
datastreams and the hour window; what remains is the residual.

- Without a residual, ordered by id or time: the fast path reads windows of rows through the
  read model (`readmodel.things.window`: for a zone the stored rows of `/v1/zones/…/series`),
  datastream after datastream, keyset-paged on (datastream, hour); `$skip` is resolved with row
  counts (stored chunk counts for a zone, an index count for a device), never by rendering the
  rows skipped.
- Otherwise the SQL path: the published hours of the candidate datastreams as one relation
  (`readmodel.things.hour_values`: for a zone the live aggregation), the residual compiled onto
  it, keyset-paged on the `$orderby` keys; the rows it selects are then rendered by the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.core.errors import BadQuery, NotFound
from civicair.core.settings import Settings
from civicair.readmodel import things as reads
from civicair.sta import ids
from civicair.sta.catalogue import Catalogue
from civicair.sta.compile import Compiler, Scope, Typed, strip
from civicair.sta.expression import Binary, Literal, Node, OrderItem, Path, conjuncts, paths_of
from civicair.sta.metadata import Relations, after_key, references_spans
from sqlalchemy.engine import Connection

HOUR = timedelta(hours=1)
TIME_KEYS = {("phenomenonTime",), ("resultTime",)}
ID_KEYS = {("id",), ("@iot.id",)}
MAX_SQL_DATASTREAMS = 200  # the SQL path aggregates every candidate datastream's hours
FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == t else f + HOUR


@dataclass
class Plan:
    datastreams: list[int]
    lo: datetime | None = None  # hour window [lo, hi) of phenomenonTime starts
    hi: datetime | None = None
    residual: list[Node] = field(default_factory=list)
    order: tuple[OrderItem, ...] = ()

    def bound(self, lo: datetime | None = None, hi: datetime | None = None) -> None:
        if lo is not None:
            self.lo = lo if self.lo is None else max(self.lo, lo)
        if hi is not None:
            self.hi = hi if self.hi is None else min(self.hi, hi)

    @property
    def fast(self) -> bool:
        if self.residual:
            return False
        keys = [o.expr.segments if isinstance(o.expr, Path) else None for o in self.order]
        if any(k not in TIME_KEYS | ID_KEYS for k in keys) or len({o.descending for o in self.order}) > 1:
            return False
        return len(self.datastreams) <= 1 or all(k in ID_KEYS for k in keys)

    @property
    def descending(self) -> bool:
        return bool(self.order) and self.order[0].descending


def _time_bound(plan: Plan, prop: str, op: str, t: datetime) -> bool:
    """Narrow the window by `prop op t` (prop: phenomenonTime = [s, s+1h), resultTime = s+1h);
    True when the term is fully expressed by the window."""
    if prop == "phenomenonTime":
        if op in ("lt", "le"):
            plan.bound(hi=floor_hour(t))
        elif op == "gt":
            plan.bound(lo=floor_hour(t) + HOUR)
        elif op == "ge":
            plan.bound(lo=ceil_hour(t))
        else:
            return False
        return True
    if op == "lt":
        plan.bound(hi=ceil_hour(t) - HOUR)
    elif op == "le":
        plan.bound(hi=floor_hour(t))
    elif op == "gt":
        plan.bound(lo=floor_hour(t))
    elif op == "ge":
        plan.bound(lo=ceil_hour(t) - HOUR)
    elif op == "eq":
        start = t - HOUR
        if floor_hour(start) != start:
            plan.datastreams = []
        plan.bound(lo=start, hi=start + HOUR)
    else:
        return False
    return True


def plan(conn: Connection, relations: Relations, candidates: list[int], filter_node: Node | None,
         order: tuple[OrderItem, ...]) -> Plan:
    p = Plan(sorted(candidates), order=order or (OrderItem(Path(("id",)), False),))
    for term in conjuncts(filter_node) if filter_node is not None else []:
        firsts = {path.segments[0] for path in paths_of(term)}
        if firsts and firsts <= {"Datastream"} or firsts and firsts <= {"FeatureOfInterest"}:
            (nav,) = firsts
            target = "Datastreams" if nav == "Datastream" else "FeaturesOfInterest"
            found = set(matching_ids(conn, relations, target, strip(term, nav)))
            if nav == "Datastream":
                p.datastreams = [d for d in p.datastreams if d in found]
            else:
                p.datastreams = [d for d in p.datastreams if relations.catalogue.datastreams[d][0].id in found]
            continue
        if isinstance(term, Binary) and term.op in FLIP:
            left, right, op = term.left, term.right, term.op
            if isinstance(left, Literal):
                left, right, op = right, left, FLIP[op]
            if isinstance(left, Path) and isinstance(right, Literal):
                segs = left.segments
                if segs in TIME_KEYS and right.kind == "datetime" and _time_bound(p, segs[0], op, right.value):
                    continue
                if segs in ID_KEYS and op == "eq" and right.kind == "number" and isinstance(right.value, int):
                    decoded = ids.split_observation(right.value)
                    if decoded is None:
                        p.datastreams = []
                    else:
                        p.datastreams = [d for d in p.datastreams if d == decoded[0]]
                        p.bound(decoded[1], decoded[1] + HOUR)
                    continue
        p.residual.append(term)
    return p


def matching_ids(conn: Connection, relations: Relations, entity_set: str, node: Node) -> list[int]:
    if references_spans(entity_set, [node]):
        relations.with_spans()
    rel = relations.table(entity_set)
    cond = Compiler(relations.scope(entity_set, rel)).boolean(node)
    return [int(r[0]) for r in conn.execute(sa.select(rel.c.id).where(cond))]


@dataclass
class ObservationPage:
    rows: list[tuple[int, dict[str, Any]]]  # (datastream id, public row)
    count: int | None
    last: dict[str, Any] | None  # the cursor state of the page's end when more follow


class Reader:
    """Reads the published rows of the catalogue's datastreams."""

    def __init__(self, conn: Connection, settings: Settings, catalogue: Catalogue) -> None:
        self.conn, self.settings, self.catalogue = conn, settings, catalogue
        self.max_window = timedelta(days=settings.max_range_days)
        self.extents = catalogue.extents

    # A thing that stopped being public since the catalogue was built (consent withdrawn, zone
    # deleted) is refused by the read model (NotFound): its datastream reads as empty.
    def extent(self, ds: int, lo: datetime | None, hi: datetime | None) -> tuple[datetime, datetime] | None:
        if ds not in self.extents:
            thing, code = self.catalogue.datastreams[ds]
            try:
                self.extents[ds] = reads.extent(self.conn, self.settings, thing, code)
            except NotFound:
                return None
        e = self.extents[ds]
        if e is None:
            return None
        a, b = max(e[0], lo) if lo else e[0], min(e[1], hi) if hi else e[1]
        return (a, b) if a < b else None

    def window(self, ds: int, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        thing, code = self.catalogue.datastreams[ds]
        out: list[dict[str, Any]] = []
        while lo < hi:
            step = min(hi, lo + self.max_window)
            try:
                out += reads.window(self.conn, self.settings, thing, code, lo, step)
            except NotFound:
                return []
            lo = step
        return out

    def count(self, ds: int, lo: datetime, hi: datetime) -> int:
        thing, code = self.catalogue.datastreams[ds]
        n = 0
        while lo < hi:
            step = min(hi, lo + self.max_window)
            try:
                n += reads.count(self.conn, self.settings, thing, code, lo, step)
            except NotFound:
                return 0
            lo = step
        return n

    def seek(self, ds: int, a: datetime, b: datetime, skip: int, desc: bool) -> tuple[datetime, int]:
        """(the window edge past which `skip` rows of [a, b) lie, the rows still to skip when
        [a, b) holds fewer). At most one row per hour, so a window of n hours holds at most n
        rows: each step counts the next `remaining` hours (one step on a gapless series)."""
        remaining, step = skip, skip
        while remaining > 0 and a < b:
            width = min(timedelta(hours=step), b - a, self.max_window)
            lo, hi = (b - width, b) if desc else (a, a + width)
            n = self.count(ds, lo, hi)
            if n > remaining:  # cannot happen with hourly rows; stay correct if it does
                step = max(1, step // 2)
                continue
            remaining -= n
            if desc:
                b = lo
            else:
                a = hi
            step = max(remaining, step * 2 if n == 0 else remaining)
        return (b if desc else a), remaining

    def fast_page(self, p: Plan, top: int, skip: int, cursor: dict[str, Any] | None,
                  want_count: bool) -> ObservationPage:
        desc = p.descending
        seq = list(reversed(p.datastreams)) if desc else list(p.datastreams)
        total = None
        if want_count:
            total = 0
            for ds in seq:
                if e := self.extent(ds, p.lo, p.hi):
                    total += self.count(ds, *e)
        start_ds, start_hour = (cursor["ds"], ids.hour_of(cursor["h"])) if cursor else (None, None)
        if start_ds is not None:
            seq = [d for d in seq if (d <= start_ds if desc else d >= start_ds)]
        rows: list[tuple[int, dict[str, Any]]] = []
        need = top + 1
        for ds in seq:
            e = self.extent(ds, p.lo, p.hi)
            if e is None:
                continue
            a, b = e
            if ds == start_ds and start_hour is not None:
                a, b = (a, min(b, start_hour)) if desc else (max(a, start_hour + HOUR), b)
            if skip and a < b:
                edge, skip = self.seek(ds, a, b, skip, desc)
                if skip:  # this datastream holds fewer rows: skip on into the next one
                    continue
                a, b = (a, edge) if desc else (edge, b)
            size = timedelta(hours=max(need, 24))
            while a < b and need > 0:
                width = min(size, b - a, self.max_window)
                lo, hi = (b - width, b) if desc else (a, a + width)
                got = self.window(ds, lo, hi)
                if desc:
                    got.reverse()
                rows += [(ds, r) for r in got[:need]]
                need -= min(need, len(got))
                a, b = (a, lo) if desc else (hi, b)
                size = min(size * 2, self.max_window)
            if need <= 0:
                break
        more = len(rows) > top
        rows = rows[:top]
        last = None
        if more and rows:
            ds, r = rows[-1]
            last = {"ds": ds, "h": ids.epoch_hours(r["period"]["datetime_from"])}
        return ObservationPage(rows, total, last)

    # --- the SQL path -----------------------------------------------------------------------
    def relation(self, p: Plan) -> Any:
        parts = []
        for ds in p.datastreams:
            e = self.extent(ds, p.lo, p.hi)
            if e is None:
                continue
            thing, code = self.catalogue.datastreams[ds]
            try:
                rel = reads.hour_values(self.conn, self.settings, thing, code, *e).subquery()
            except NotFound:
                continue
            parts.append(sa.select(sa.literal(ds, sa.BigInteger).label("ds_id"),
                                   sa.literal(thing.id, sa.BigInteger).label("foi_id"), *rel.c))
        if len(parts) > MAX_SQL_DATASTREAMS:
            raise BadQuery(f"this $filter or $orderby on Observations reads at most {MAX_SQL_DATASTREAMS} "
                           "datastreams at once; restrict it with Datastream/@iot.id eq … or a Datastream path")
        if not parts:
            return None
        return sa.union_all(*parts).subquery("obs") if len(parts) > 1 else parts[0].subquery("obs")

    def scope(self, rel: Any, relations: Relations) -> Scope:
        hour = rel.c.hour
        obs_id = rel.c.ds_id * ids.OBS_FACTOR + sa.cast(
            sa.func.floor(sa.extract("epoch", hour) / 3600), sa.BigInteger)
        quality = {"calibrated": (rel.c.calibrated, "bool"), "n_readings": (rel.c.n_readings, "number"),
                   "n_devices": (rel.c.n_devices, "number")}
        coverage = {"expected_count": rel.c.expected_count, "observed_count": rel.c.observed_count,
                    "percent_complete": rel.c.percent_complete}

        def columns(path: tuple[str, ...]) -> Typed | None:
            head = path[0]
            if path in ID_KEYS:
                return Typed(obs_id, "number")
            if path == ("result",):
                return Typed(rel.c.value, "number")
            if path == ("phenomenonTime",):
                return Typed(hour, "interval", hour + HOUR)
            if path == ("resultTime",):
                return Typed(hour + HOUR, "instant")
            if path == ("validTime",):
                return Typed(sa.null(), "null")
            if head == "resultQuality" and len(path) == 2 and path[1] in quality:
                column, kind = quality[path[1]]
                return Typed(column, kind)
            if head == "resultQuality" and len(path) == 3 and path[1] == "coverage" and path[2] in coverage:
                return Typed(coverage[path[2]], "number")
            if head in ("resultQuality", "parameters"):
                raise BadQuery(f"$filter: {'/'.join(path)} cannot be filtered on; filterable: resultQuality/"
                               "calibrated, n_readings, n_devices, coverage/expected_count, observed_count, "
                               "percent_complete")
            return None

        def foreign(nav: str, node: Node) -> Any:
            if nav == "Datastream":
                return rel.c.ds_id.in_(matching_ids(self.conn, relations, "Datastreams", node))
            return rel.c.foi_id.in_(matching_ids(self.conn, relations, "FeaturesOfInterest", node))

        def no_spatial(node: Node) -> Any:
            raise BadQuery("$filter: Observations have no geometry; use FeatureOfInterest/feature")

        return Scope("Observations", columns, {"Datastream", "FeatureOfInterest"}, foreign, no_spatial)

    def sql_page(self, p: Plan, relations: Relations, top: int, skip: int, after: list[Any] | None,
                 want_count: bool) -> ObservationPage:
        rel = self.relation(p)
        if rel is None:
            return ObservationPage([], 0 if want_count else None, None)
        compiler = Compiler(self.scope(rel, relations))
        conds = [compiler.boolean(t) for t in p.residual]
        obs_id = compiler.value(Path(("id",))).sql
        keys = [(compiler.order_key(o.expr), o.descending) for o in p.order]
        keys.append((obs_id, False))
        total = None
        if want_count:
            total = int(self.conn.execute(sa.select(sa.func.count()).select_from(rel).where(*conds)).scalar() or 0)
        stmt = sa.select(rel.c.ds_id, rel.c.hour, *[k.label(f"k{i}") for i, (k, _) in enumerate(keys)]).where(*conds)
        if after is not None:
            if len(after) != len(keys):
                raise BadQuery("$skiptoken belongs to another request: follow @iot.nextLink as it is")
            stmt = stmt.where(after_key(keys, after))
        stmt = stmt.order_by(*[k.desc() if d else k.asc() for k, d in keys]).limit(top + 1)
        if after is None and skip:
            stmt = stmt.offset(skip)
        found = self.conn.execute(stmt).all()
        rendered = self.render_hours([(int(r.ds_id), r.hour) for r in found[:top]])
        last = {"k": list(found[top - 1][2:])} if len(found) > top and top else None
        return ObservationPage(rendered, total, last)

    def render_hours(self, keys: list[tuple[int, datetime]]) -> list[tuple[int, dict[str, Any]]]:
        """The public rows of (datastream, hour) pairs, in their order."""
        by_ds: dict[int, list[datetime]] = {}
        for ds, hour in keys:
            by_ds.setdefault(ds, []).append(hour)
        rows: dict[tuple[int, datetime], dict[str, Any]] = {}
        for ds, hours in by_ds.items():
            for r in self.window(ds, min(hours), max(hours) + HOUR):
                rows[(ds, r["period"]["datetime_from"])] = r
        return [(ds, rows[(ds, h)]) for ds, h in keys if (ds, h) in rows]

    def one(self, obs_id: int) -> tuple[int, dict[str, Any]] | None:
        decoded = ids.split_observation(obs_id)
        if decoded is None or decoded[0] not in self.catalogue.datastreams:
            return None
        ds, hour = decoded
        got = self.window(ds, hour, hour + HOUR)
        return (ds, got[0]) if got else None

    def span(self, ds: int) -> tuple[datetime, datetime] | None:
        """The first and the last published hour of a datastream."""
        e = self.extent(ds, None, None)
        if e is None:
            return None
        thing, _ = self.catalogue.datastreams[ds]
        if thing.kind != "zone":
            return e[0], e[1] - HOUR
        first = last = None
        a, b, size = e[0], e[1], timedelta(days=7)
        while a < b and first is None:
            got = self.window(ds, a, min(b, a + size))
            first = got[0]["period"]["datetime_from"] if got else None
            a, size = a + size, min(size * 2, self.max_window)
        if first is None:
            return None
        a, b, size = first, e[1], timedelta(days=7)
        while a < b and last is None:
            got = self.window(ds, max(a, b - size), b)
            last = got[-1]["period"]["datetime_from"] if got else None
            b, size = b - size, min(size * 2, self.max_window)
        return first, last or first
