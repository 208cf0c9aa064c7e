"""Collections of the metadata sets (everything but Observations): the catalogue's entities as
SQL relations (one `unnest` of typed arrays per set), `$filter` and `$orderby` compiled over
them by `sta.compile`, keyset paging (docs/sensorthings.md#paging).

A collection with neither `$filter` nor `$orderby` is paged in Python by id, which is what
SQL would return, without the round trip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.core.errors import BadQuery
from civicair.sta import spatial
from civicair.sta.catalogue import Catalogue, Entity
from civicair.sta.compile import Compiler, Scope, Typed, json_column
from civicair.sta.expression import Node, Path, paths_of
from civicair.sta.schema import LINK_COLUMNS, NAVS, PROPERTIES
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Connection

TZ = sa.DateTime(timezone=True)
SQL_TYPES = {"string": sa.Text, "json": JSONB(none_as_null=True), "geometry": JSONB(none_as_null=True), "instant": TZ}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass
class Page:
    entities: list[Entity]
    count: int | None
    last_key: list[Any] | None  # the order key of the page's last entity when more follow


class Relations:
    """The SQL relations of one request's catalogue (built once per set, aliased per use)."""

    def __init__(self, catalogue: Catalogue, with_spans: Callable[[], None]) -> None:
        self.catalogue = catalogue
        self.with_spans = with_spans
        self.built: dict[str, Any] = {}
        self.n = 0

    def table(self, entity_set: str) -> Any:
        if entity_set == "Observations":
            raise BadQuery("$filter: conditions on Observations of a metadata entity are not supported")
        entities = list(self.catalogue.sets[entity_set].values())
        cols: list[tuple[str, Any, list[Any]]] = [("id", sa.BigInteger, [e.id for e in entities])]
        for link in LINK_COLUMNS.get(entity_set, ()):
            cols.append((link, sa.BigInteger, [e.links[link] for e in entities]))
        for name, kind in PROPERTIES[entity_set].items():
            if name == "id":
                continue
            if kind == "interval":
                spans = [e.props.get(name) for e in entities]
                cols.append((f"{name}__start", TZ, [_time(s.split("/")[0]) if s else None for s in spans]))
                cols.append((f"{name}__end", TZ, [_time(s.split("/")[1]) if s else None for s in spans]))
            else:
                cols.append((name, SQL_TYPES[kind], [e.props.get(name) for e in entities]))
        arrays = [sa.literal(values, ARRAY(type_)) for _, type_, values in cols]
        self.n += 1
        return (sa.func.unnest(*arrays).table_valued(*[sa.column(n, t) for n, t, _ in cols])
                .render_derived(name=f"{entity_set.lower()}_{self.n}"))

    def scope(self, entity_set: str, rel: Any) -> Scope:
        props = PROPERTIES[entity_set]

        def columns(path: tuple[str, ...]) -> Typed | None:
            name = "id" if path[0] in ("id", "@iot.id") else path[0]
            kind = props.get(name)
            if kind is None or (len(path) > 1 and kind != "json"):
                return None
            if kind == "id":
                return Typed(rel.c.id, "number")
            if kind == "json":
                return json_column(rel.c[name], path[1:])
            if kind == "interval":
                return Typed(rel.c[f"{name}__start"], "interval", rel.c[f"{name}__end"])
            return Typed(rel.c[name], kind)

        def foreign(nav_name: str, node: Node) -> Any:
            nav = NAVS[entity_set][nav_name]
            target = self.table(nav.target)
            inner = Compiler(self.scope(nav.target, target)).boolean(node)
            return sa.exists(sa.select(1).select_from(target).where(
                target.c[nav.target_col] == rel.c[nav.source_col], inner))

        def spatial_ids(node: Node) -> Any:
            geometry_props = {n for n, k in props.items() if k == "geometry"}
            rows = [(e.id, e.props) for e in self.catalogue.sets[entity_set].values()]
            return rel.c.id.in_(spatial.matching(node, rows, geometry_props))

        return Scope(entity_set, columns, set(NAVS[entity_set]), foreign, spatial_ids)


def after_key(keys: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows strictly after `values` in the order of `keys` (PostgreSQL's NULLS LAST ascending,
    NULLS FIRST descending)."""
    terms = []
    for i, ((expr, desc), v) in enumerate(zip(keys, values, strict=True)):
        if v is None:
            beyond = sa.false() if not desc else expr.isnot(None)
        else:
            bound = sa.literal(v, expr.type)
            beyond = expr < bound if desc else sa.or_(expr > bound, expr.is_(None))
        same = [e.is_not_distinct_from(sa.literal(x, e.type)) for (e, _), x in zip(keys[:i], values[:i], strict=True)]
        terms.append(sa.and_(*same, beyond))
    return sa.or_(*terms)


def references_spans(entity_set: str, nodes: list[Node]) -> bool:
    """Whether a filter or order on Datastreams (or through them) reads phenomenonTime/resultTime."""
    for node in nodes:
        for p in paths_of(node):
            segs = p.segments
            if entity_set == "Datastreams" and segs[0] in ("phenomenonTime", "resultTime"):
                return True
            if len(segs) > 1 and segs[0] in ("Datastream", "Datastreams") and segs[-1] in ("phenomenonTime",
                                                                                         "resultTime"):
                return True
    return False


def collection(conn: Connection, relations: Relations, entity_set: str, base: tuple[str, int] | None,
               filter_node: Node | None, orderby: tuple[Any, ...], top: int, skip: int,
               after: list[Any] | None, want_count: bool) -> Page:
    """One page of a metadata set: `base` (column, value) restricts it to a navigation target."""
    catalogue = relations.catalogue
    if filter_node is None and not orderby:
        rows = list(catalogue.sets[entity_set].values())
        if base is not None:
            rows = [e for e in rows if e.column(base[0]) == base[1]]
        total: int | None = len(rows)
        if after is not None:
            rows = [e for e in rows if e.id > after[0]]
        elif skip:
            rows = rows[skip:]
        page = rows[:top]
        more = len(rows) > top
        return Page(page, total if want_count else None, [page[-1].id] if more and page else None)
    if references_spans(entity_set, [n for n in (filter_node,) if n] + [o.expr for o in orderby]):
        relations.with_spans()
    rel = relations.table(entity_set)
    compiler = Compiler(relations.scope(entity_set, rel))
    conds = []
    if base is not None:
        conds.append(rel.c[base[0]] == base[1])
    if filter_node is not None:
        conds.append(compiler.boolean(filter_node))
    keys = [(compiler.order_key(o.expr), o.descending) for o in orderby] + [(rel.c.id, False)]
    total = None
    if want_count:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(rel).where(*conds)).scalar() or 0)
    stmt = sa.select(rel.c.id, *[k.label(f"k{i}") for i, (k, _) in enumerate(keys)]).where(*conds)
    if after is not None:
        if len(after) != len(keys):
            raise BadQuery("$skiptoken belongs to another request: follow @iot.nextLink as it is")
        stmt = stmt.where(after_key(keys, after))
    stmt = stmt.order_by(*[k.desc() if d else k.asc() for k, d in keys]).limit(top + 1)
    if after is None and skip:
        stmt = stmt.offset(skip)
    found = conn.execute(stmt).all()
    entities = [catalogue.sets[entity_set][r.id] for r in found[:top]]
    last = list(found[top - 1][1:]) if len(found) > top and top else None
    return Page(entities, total, last)


def is_plain_path(node: Node, names: tuple[str, ...]) -> bool:
    return isinstance(node, Path) and node.segments in [(n,) for n in names]
