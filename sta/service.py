"""One SensorThings GET request: resolve the resource path, run the query options, render
(docs/sensorthings.md). Read-only: every read goes through the read model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import urlencode

from civicair.core.errors import BadQuery, NotFound
from civicair.core.settings import Settings
from civicair.sta import cursor, ids, metadata, render
from civicair.sta.catalogue import Catalogue, Entity
from civicair.sta.metadata import Relations
from civicair.sta.observations import ObservationPage, Reader, plan
from civicair.sta.options import Expand, Query, parse_query
from civicair.sta.paths import ResourcePath, parse_path
from civicair.sta.schema import NAVS, PROPERTIES, SETS
from sqlalchemy.engine import Connection

HOUR = timedelta(hours=1)
SPEC = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
CONFORMANCE = [SPEC + "datamodel", SPEC + "resource-path/resource-path-to-entities", SPEC + "request-data",
               SPEC + "data-array/data-array"]
MAX_EXPANDED = 20_000  # entities expanded into one response


@dataclass
class Result:
    status: int
    body: Any  # JSON value, or a str for $value, or None (204)


class Obs:
    """An Observation as a resolved path step."""

    def __init__(self, ds: int, kind: str, row: dict[str, Any]) -> None:
        self.ds, self.kind, self.row = ds, kind, row
        self.thing_id = ids.split_datastream(ds)[0]  # type: ignore[index]
        self.id = ids.observation_id(ds, row["period"]["datetime_from"])

    def column(self, name: str) -> int:
        return {"id": self.id, "ds_id": self.ds, "foi_id": self.thing_id}[name]


class Request:
    def __init__(self, conn: Connection, settings: Settings, catalogue: Catalogue, base: str) -> None:
        self.conn, self.settings, self.catalogue, self.base = conn, settings, catalogue, base
        self.reader = Reader(conn, settings, catalogue)
        self.relations = Relations(catalogue, self.all_spans)
        self.expanded = 0

    # --- datastream spans -------------------------------------------------------------------
    def span(self, ds: int) -> None:
        e = self.catalogue.sets["Datastreams"][ds]
        if "phenomenonTime" in e.props:
            return
        span = self.catalogue.span(ds, lambda thing, code: self.reader.span(ds))
        first, last = span if span else (None, None)
        e.props["phenomenonTime"] = f"{render.iso(first)}/{render.iso(last + HOUR)}" if first and last else None
        e.props["resultTime"] = (f"{render.iso(first + HOUR)}/{render.iso(last + HOUR)}"
                                 if first and last else None)

    def all_spans(self) -> None:
        for ds in self.catalogue.sets["Datastreams"]:
            self.span(ds)

    # --- entities ---------------------------------------------------------------------------
    def entity(self, entity_set: str, key: int) -> Entity | Obs:
        if entity_set == "Observations":
            found = self.reader.one(key)
            if found is None:
                raise NotFound(f"no Observation {key}")
            ds, row = found
            return Obs(ds, self.catalogue.datastreams[ds][0].kind, row)
        e = self.catalogue.sets[entity_set].get(key)
        if e is None:
            raise NotFound(f"no {entity_set[:-1] if entity_set != 'Properties' else entity_set} {key}")
        return e

    def candidates(self, base: tuple[str, int] | None) -> list[int]:
        if base is None:
            return list(self.catalogue.datastreams)
        column, value = base
        if column == "ds_id":
            return [value] if value in self.catalogue.datastreams else []
        return [d for d, (t, _) in self.catalogue.datastreams.items() if t.id == value]  # foi_id

    def render(self, entity_set: str, e: Entity | Obs, q: Query) -> dict[str, Any]:
        render.check_select(entity_set, q.select)
        self.expanded += 1
        if self.expanded > MAX_EXPANDED:
            raise BadQuery(f"$expand: the response would hold more than {MAX_EXPANDED} entities; "
                           "use $top in the expanded collections")
        if isinstance(e, Obs):
            out = render.observation(self.base, e.ds, e.kind, e.row, q.select)
        else:
            if entity_set == "Datastreams":
                self.span(e.id)
            out = render.entity(self.base, entity_set, e.id, e.props, q.select)
        for x in q.expand:
            self.expand(entity_set, e, x, out)
        return out

    def expand(self, entity_set: str, e: Entity | Obs, x: Expand, out: dict[str, Any]) -> None:
        nav = NAVS[entity_set].get(x.name)
        if nav is None:
            raise BadQuery(f"$expand: {entity_set} have no navigation property {x.name!r}")
        link = e.column(nav.source_col)
        if not nav.many:
            target = self.catalogue.related(nav.target, nav.target_col, link)
            out[x.name] = self.render(nav.target, target[0], x.query) if target else None
            return
        path = f"{entity_set}({e.id})/{x.name}"
        items, count, next_link = self.collection(nav.target, (nav.target_col, link), x.query, path)
        out[x.name] = items
        if count is not None:
            out[f"{x.name}@iot.count"] = count
        if next_link:
            out[f"{x.name}@iot.nextLink"] = next_link

    # --- collections ------------------------------------------------------------------------
    def top(self, q: Query) -> int:
        if q.top is None:
            return self.settings.sta_default_top
        return min(q.top, self.settings.sta_max_top)

    def collection(self, entity_set: str, base: tuple[str, int] | None, q: Query, path: str
                   ) -> tuple[Any, int | None, str | None]:
        """(rendered items, @iot.count, @iot.nextLink) of one page."""
        key = cursor.digest(path, q.filter_text, q.orderby_text)
        state = cursor.decode(q.skiptoken, key) if q.skiptoken else None
        top = self.top(q)
        if entity_set == "Observations":
            page = self.observations(base, q, top, state)
            if q.result_format == "dataArray":
                items = self.data_array(page, q)
            else:
                render.check_select(entity_set, q.select)
                if q.expand:
                    items = [self.render("Observations", Obs(ds, self.catalogue.datastreams[ds][0].kind, row), q)
                             for ds, row in page.rows]
                elif not q.select:  # the paging hot path
                    items = []
                    for ds, rows in groupby(page.rows, key=lambda pair: pair[0]):
                        kind = self.catalogue.datastreams[ds][0].kind
                        items += render.observations(self.base, ds, kind, [row for _, row in rows])
                    self.expanded += len(items)
                else:
                    items = [render.observation(self.base, ds, self.catalogue.datastreams[ds][0].kind, row, q.select)
                             for ds, row in page.rows]
                    self.expanded += len(items)
            total, last = page.count, page.last
        else:
            if q.result_format:
                raise BadQuery("$resultFormat=dataArray applies to Observations only")
            page_m = metadata.collection(self.conn, self.relations, entity_set, base, q.filter, q.orderby, top,
                                         q.skip, state["k"] if state else None, q.count)
            items = [self.render(entity_set, e, q) for e in page_m.entities]
            total, last = page_m.count, ({"k": page_m.last_key} if page_m.last_key is not None else None)
        next_link = None
        if last is not None:
            options = [(k, v) for k, v in q.raw if k not in ("$skip", "$skiptoken")]
            options.append(("$skiptoken", cursor.encode(key, last)))
            next_link = f"{self.base}/{path}?{urlencode(options)}"
        return items, total, next_link

    def observations(self, base: tuple[str, int] | None, q: Query, top: int,
                     state: dict[str, Any] | None) -> ObservationPage:
        p = plan(self.conn, self.relations, self.candidates(base), q.filter, q.orderby)
        if p.fast:
            if state is not None and not isinstance(state.get("ds"), int | None):
                raise BadQuery("$skiptoken is not a token of this service")
            fast_state = state if state and "ds" in state else None
            if state is not None and fast_state is None:
                raise BadQuery("$skiptoken belongs to another request: follow @iot.nextLink as it is")
            if fast_state is not None and not isinstance(fast_state.get("h"), int):
                raise BadQuery("$skiptoken is not a token of this service")
            return self.reader.fast_page(p, top, 0 if state else q.skip, fast_state, q.count)
        return self.reader.sql_page(p, self.relations, top, q.skip, state["k"] if state else None, q.count)

    def data_array(self, page: ObservationPage, q: Query) -> list[dict[str, Any]]:
        comps = render.components(q.select)
        groups: dict[int, list[list[Any]]] = {}
        for ds, row in page.rows:
            kind = self.catalogue.datastreams[ds][0].kind
            groups.setdefault(ds, []).append(render.data_array_row(ds, kind, row, comps))
        return [{"Datastream@iot.navigationLink": f"{self.base}/Datastreams({ds})", "components": list(comps),
                 "dataArray@iot.count": len(rows), "dataArray": rows} for ds, rows in groups.items()]


def root(base: str) -> dict[str, Any]:
    return {"value": [{"name": s, "url": f"{base}/{s}"} for s in SETS],
            "serverSettings": {"conformance": CONFORMANCE}}


def resolve(req: Request, rp: ResourcePath) -> tuple[str, Entity | Obs | None, tuple[str, int] | None]:
    """(entity set, the entity addressed or None for a collection, the collection's restriction)."""
    first = rp.steps[0]
    if first.key is None:
        return first.name, None, None
    current: Entity | Obs = req.entity(first.name, first.key)
    for i, step in enumerate(rp.steps[1:], start=1):
        nav = NAVS[rp.sets[i - 1]][step.name]
        link = current.column(nav.source_col)
        target = rp.sets[i]
        if nav.many and step.key is None:
            return target, None, (nav.target_col, link)
        if nav.many:
            candidate = req.entity(target, step.key)  # type: ignore[arg-type]
            if candidate.column(nav.target_col) != link:
                raise NotFound(f"{step.name}({step.key}) is not related to {rp.sets[i - 1]}({current.id})")
            current = candidate
        else:
            found = req.catalogue.related(target, nav.target_col, link)
            if not found:
                raise NotFound(f"no {step.name} of {rp.sets[i - 1]}({current.id})")
            current = found[0]
    return rp.sets[-1], current, None


def handle(conn: Connection, settings: Settings, catalogue: Catalogue, path: str,
           pairs: list[tuple[str, str]]) -> Result:
    base = settings.public_base_url.rstrip("/") + "/sta/v1.1"
    if path.strip("/") == "":
        return Result(200, root(base))
    rp = parse_path(path)
    q = parse_query(pairs)
    req = Request(conn, settings, catalogue, base)
    entity_set, entity, restriction = resolve(req, rp)
    if entity is None:
        if rp.ref:
            q = Query(**{**q.__dict__, "select": ("id",), "expand": ()})
        items, count, next_link = req.collection(entity_set, restriction, q, path.strip("/"))
        if rp.ref:
            items = [{"@iot.selfLink": f"{base}/{entity_set}({i['@iot.id']})"} for i in items]
        body: dict[str, Any] = {}
        if count is not None:
            body["@iot.count"] = count
        if next_link:
            body["@iot.nextLink"] = next_link
        body["value"] = items
        return Result(200, body)
    if rp.ref:
        return Result(200, {"@iot.selfLink": f"{base}/{entity_set}({entity.id})"})
    if rp.prop is not None:
        if entity_set == "Datastreams":
            req.span(entity.id)
        full = req.render(entity_set, entity, Query())
        value = full.get("@iot.id") if rp.prop == "id" else full.get(rp.prop)
        if value is None:
            return Result(204, None)
        if rp.value:
            return Result(200, value if isinstance(value, dict | list) else str(value))
        return Result(200, {rp.prop: value})
    return Result(200, req.render(entity_set, entity, q))


def timestamp(t: datetime | None) -> str | None:
    return render.iso(t) if t else None


__all__ = ["CONFORMANCE", "PROPERTIES", "handle", "root"]
