"""Public open-data endpoints (no authentication). Only pseudonyms, H3 cells, k-anonymous
aggregates and official station data leave here; the rules live in the read model
(civicair.readmodel), so the export files publish exactly the same thing."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any

from civicair.api.deps import ReadConn, SettingsDep, read_pool, sync_reader
from civicair.api.public import examples
from civicair.api.public import render as render_rows
from civicair.api.public.render import Format, respond, respond_docs
from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.errors import InvalidParameter
from civicair.core.settings import Settings
from civicair.readmodel import anonymise, devices, mobile, params, render, stations
from civicair.readmodel import zone_series as zone_reads
from civicair.readmodel.params import Interval, Paging, QuantityFilter, TimeRange
from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

router = APIRouter(prefix="/v1", tags=["public"])
# CSV headers of empty pages: the documented row shapes (a test compares them with real rows)
SERIES_COLUMNS = tuple(render_rows.flatten(examples.SERIES["results"][0]))
ZONE_SERIES_COLUMNS = tuple(render_rows.flatten(examples.ZONE_SERIES["results"][0]))
MOBILE_COLUMNS = tuple(render_rows.flatten(examples.MOBILE["results"][0]))
STATION_SERIES_COLUMNS = tuple(render_rows.flatten(examples.STATION_SERIES["results"][0]))
DEVICE_COLUMNS = tuple(render_rows.flatten(examples.DEVICES["results"][0]))

QuantityName = enum.StrEnum("QuantityName", {name: name for name in QUANTITY_BY_NAME})  # type: ignore[misc]
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
PathId = Path(pattern=ID_PATTERN, description="Identifier as listed by the collection endpoint.")

QuantityQ = Annotated[QuantityName, Query(description="Canonical quantity name.")]
FromQ = Annotated[datetime | None, Query(description="ISO-8601 start (inclusive); default: 7 days before the end. "
                                                     "Times without an offset are UTC.")]
ToQ = Annotated[datetime | None, Query(description="ISO-8601 end (exclusive); default: now.")]
IntervalQ = Annotated[Interval, Query(description="Aggregation period.")]
LimitQ = Annotated[int, Query(ge=1, le=params.MAX_LIMIT, description="Results per page (≤ 1000).")]
CursorQ = Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                                      description="`meta.cursor` of the previous page.")]
FormatQ = Annotated[Format | None, Query(alias="format", description="json (default), csv, or geojson where "
                                         "it applies; also chosen by the Accept header.")]


class SeriesQuery(BaseModel):
    """The query of the zone series endpoint, validated in one call. FastAPI's per-parameter
    path re-inspected every annotation on every request: 0.2–0.4 ms of a ~2.4 ms request."""

    quantity: QuantityName = Field(QuantityName("pm25"), description="Canonical quantity name.")
    datetime_from: datetime | None = Field(None, description="ISO-8601 start (inclusive); default: 7 days before "
                                                             "the end. Times without an offset are UTC.")
    datetime_to: datetime | None = Field(None, description="ISO-8601 end (exclusive); default: now.")
    interval: Interval = Field(Interval.HOUR, description="Aggregation period.")
    limit: int = Field(1000, ge=1, le=params.MAX_LIMIT, description="Results per page (≤ 1000).")
    cursor: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9_-]+$",
                               description="`meta.cursor` of the previous page.")
    format: Format | None = Field(None, description="json (default) or csv; also chosen by the Accept header.")

    @classmethod
    def from_request(cls, request: Request) -> SeriesQuery:
        """Validated query; errors as FastAPI's (422 problem+json naming each parameter)."""
        try:
            return cls.model_validate(request.query_params)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]) from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI `parameters` (in: query) of a query model, enum definitions inlined."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def inline(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inline(defs[node["$ref"].rsplit("/", 1)[1]]), **rest}
        if "anyOf" in node:
            return {**node, "anyOf": [inline(n) for n in node["anyOf"]]}
        return node

    parameters = []
    for name, prop in schema["properties"].items():
        prop = inline(dict(prop))
        description = prop.pop("description", None)
        parameters.append({"name": name, "in": "query", "required": name in schema.get("required", ()),
                       "description": description, "schema": prop})
    return parameters


def _ok(example: dict[str, Any], geo: bool = False) -> dict[int | str, dict[str, Any]]:
    content: dict[str, Any] = {"application/json": {"example": example},
                               "text/csv": {"schema": {"type": "string"}}}
    if geo:
        content["application/geo+json"] = {"schema": {"type": "object"}}
    return {200: {"description": "OK", "content": content},
            404: {"description": "Unknown id (problem+json)"},
            422: {"description": "Invalid parameter (problem+json naming it)"},
            429: {"description": "Rate limited (problem+json, Retry-After)"}}


def _series_meta(settings: Any, quantity: QuantityFilter, interval: Interval, tr: TimeRange,
                 paging: Paging, nxt: datetime | None) -> dict[str, Any]:
    start, end = tr.resolve(settings.max_range_days)
    return {"quantity": quantity.quantity, "unit": quantity.info.unit, "interval": interval.value,
            "datetime_from": start, "datetime_to": end, "limit": paging.limit,
            "cursor": params.encode_cursor(nxt) if nxt else None}


@router.get("/devices", summary="Public devices (pseudonymised, located by H3 cell)",
            responses=_ok(examples.DEVICES, geo=True))
def list_devices(request: Request, conn: ReadConn, settings: SettingsDep, limit: LimitQ = 100,
                 cursor: CursorQ = None, fmt: FormatQ = None) -> Response:
    paging = Paging(limit=limit, cursor=cursor)
    after = paging.after_key()
    if after is not None and not re.fullmatch(ID_PATTERN, after):
        raise InvalidParameter("cursor", "not a cursor returned by this API")
    rows = devices.device_list(conn, settings, after=after, limit=limit + 1)
    nxt = rows[limit - 1]["pseudonym"] if len(rows) > limit else None
    rows = rows[:limit]
    return respond(request, settings, rows, fmt=fmt, geometry=_device_geometry, limit=limit,
                   cursor=params.encode_cursor(nxt) if nxt else None, columns=DEVICE_COLUMNS)


def _device_geometry(row: dict[str, Any]) -> dict[str, Any] | None:
    return anonymise.cell_polygon(row["h3_cell"]) if row.get("h3_cell") else None


@router.get("/devices/{pseudonym}", summary="One public device", responses=_ok(examples.DEVICE, geo=True))
def get_device(request: Request, pseudonym: Annotated[str, PathId], conn: ReadConn,
               settings: SettingsDep, fmt: FormatQ = None) -> Response:
    row = devices.device_detail(conn, settings, pseudonym)
    return respond(request, settings, [row], fmt=fmt, geometry=_device_geometry)


@router.get("/devices/{pseudonym}/series", summary="Hourly or daily series of one public fixed device",
            description="Calibrated mean (`value`, null until the device is calibrated), raw mean, coverage, "
                        "summary and flag counts. Mobile devices never have a per-device series.",
            responses=_ok(examples.SERIES))
def device_series(request: Request, pseudonym: Annotated[str, PathId], conn: ReadConn,
                  settings: SettingsDep, quantity: QuantityQ = QuantityName("pm25"),
                  datetime_from: FromQ = None, datetime_to: ToQ = None, interval: IntervalQ = Interval.HOUR,
                  limit: LimitQ = 1000, cursor: CursorQ = None, fmt: FormatQ = None) -> Response:
    q, tr, paging = QuantityFilter(quantity=quantity.value), TimeRange(datetime_from=datetime_from,
                                                                        datetime_to=datetime_to), Paging(limit=limit, cursor=cursor)
    page = devices.device_series_page(conn, settings, pseudonym, q, tr, interval, paging.after_time(), limit)
    return respond(request, settings, page.results, fmt=fmt, device=pseudonym, columns=SERIES_COLUMNS,
                   **_series_meta(settings, q, interval, tr, paging, page.next_after))


@router.get("/zones", summary="Administrative zones and H3 cells with public devices",
            responses=_ok(examples.ZONES, geo=True))
def list_zones(request: Request, conn: ReadConn, settings: SettingsDep, fmt: FormatQ = None,
               with_geometry: Annotated[bool, Query(description="Include the zone geometry in JSON.")] = False
               ) -> Response:
    rows = zone_reads.zone_list(conn, settings)
    geoms = {r["id"]: zone_reads.zone_geometry(conn, r["id"]) for r in rows} if (
        with_geometry or fmt == Format.GEOJSON or "geo+json" in request.headers.get("accept", "")) else {}
    if with_geometry:
        for r in rows:
            r["geometry"] = geoms.get(r["id"])
    return respond(request, settings, rows, fmt=fmt, geometry=lambda r: geoms.get(r["id"]),
                   h3_resolution=settings.h3_resolution, k_anonymity=settings.k_anonymity)


@router.get("/zones/{zone_id}/series", summary="Hourly or daily series of a zone (k-anonymous)",
            description="A zone is an administrative zone id (see /v1/zones) or an H3 cell at the configured "
                        "resolution. Zone-hours with fewer than k distinct devices are suppressed and counted "
                        "in `meta.suppressed`.",
            responses=_ok(examples.ZONE_SERIES), openapi_extra={"parameters": query_parameters(SeriesQuery)})
async def zone_series(request: Request, zone_id: Annotated[str, PathId]) -> Response:
    # The busiest endpoint (docs/targets.md#open-api target) is async, validates its query in one call
    # (SeriesQuery) and reads the stored rows from the event loop on an async pool of autocommit
    # connections (no thread hop, no BEGIN/ROLLBACK round trips); only live periods, when the
    # page has any, take a worker thread.
    settings: Settings = request.app.state.settings
    p = SeriesQuery.from_request(request)
    interval, limit, fmt = p.interval, p.limit, p.format
    q, tr = QuantityFilter(quantity=p.quantity.value), TimeRange(datetime_from=p.datetime_from,
                                                                 datetime_to=p.datetime_to)
    paging = Paging(limit=limit, cursor=p.cursor)
    after = paging.after_time()

    page = await zone_reads.zone_series_json_async(await read_pool(request), sync_reader(request), settings, zone_id,
                                                q, tr, interval, after, limit)
    return respond_docs(
        request, settings, page.docs, page.count, fmt=fmt, zone=zone_id, k_anonymity=settings.k_anonymity,
        columns=ZONE_SERIES_COLUMNS,
        suppressed=page.suppressed,
        suppression=f"zone-hours with fewer than {settings.k_anonymity} distinct devices are not published",
        **_series_meta(settings, q, interval, tr, paging, page.next_after))


@router.get("/mobile/cells", summary="Mobile (bike) data as H3 cell-hours (privacy-filtered, k-anonymous)",
            description="Built only from privacy-filtered whole trips: per trip, implausible moves, points within "
                        "200 m of the start and end and inside owners' privacy zones are dropped; a cell-hour is "
                        "published only with at least k distinct established devices. Whole hours only: the range "
                        "is widened to the hours it touches (`meta.datetime_from`/`datetime_to`). No track is ever "
                        "published.",
            responses=_ok(examples.MOBILE, geo=True))
def mobile_cells(request: Request, conn: ReadConn, settings: SettingsDep,
                 quantity: QuantityQ = QuantityName("pm25"), datetime_from: FromQ = None,
                 datetime_to: ToQ = None, limit: LimitQ = 1000, cursor: CursorQ = None,
                 fmt: FormatQ = None) -> Response:
    q, tr = QuantityFilter(quantity=quantity.value), TimeRange(datetime_from=datetime_from, datetime_to=datetime_to)
    page = mobile.mobile_cells_page(conn, settings, q, tr, cursor=cursor, limit=limit)
    return respond(request, settings, page.results, fmt=fmt, columns=MOBILE_COLUMNS,
                   geometry=lambda r: anonymise.cell_polygon(r["h3_cell"]),
                   quantity=q.quantity, unit=q.info.unit, datetime_from=page.datetime_from,
                   datetime_to=page.datetime_to, interval="hour", h3_resolution=settings.h3_resolution,
                   k_anonymity=settings.k_anonymity, limit=limit, cursor=page.cursor)


def _station_geometry(row: dict[str, Any]) -> dict[str, Any] | None:
    c = row.get("coordinates")
    return {"type": "Point", "coordinates": [c["longitude"], c["latitude"]]} if c else None


def _station_licence(settings: Settings) -> dict[str, str]:
    """The network's licence (not civicair's) in the `Link` header of station responses."""
    return {"Link": f'<{settings.reference_licence_url}>; rel="license"'}


@router.get("/stations", summary="Official reference stations (their own licence and attribution)",
            responses=_ok(examples.STATIONS, geo=True))
def list_stations(request: Request, conn: ReadConn, settings: SettingsDep, fmt: FormatQ = None) -> Response:
    return respond(request, settings, stations.stations(conn, settings), fmt=fmt, geometry=_station_geometry,
                   headers=_station_licence(settings))


@router.get("/stations/{code}/series", summary="Hourly or daily series of a reference station",
            responses=_ok(examples.STATION_SERIES))
def station_series(request: Request, code: Annotated[str, PathId], conn: ReadConn,
                   settings: SettingsDep, quantity: QuantityQ = QuantityName("pm25"),
                   datetime_from: FromQ = None, datetime_to: ToQ = None, interval: IntervalQ = Interval.HOUR,
                   limit: LimitQ = 1000, cursor: CursorQ = None, fmt: FormatQ = None) -> Response:
    st = stations.station(conn, settings, code)
    q, tr, paging = QuantityFilter(quantity=quantity.value), TimeRange(datetime_from=datetime_from,
                                                                        datetime_to=datetime_to), Paging(limit=limit, cursor=cursor)
    rows = stations.station_series(conn, settings, code, q, tr, interval, paging.after_time(), limit)
    nxt = rows[-1]["period"]["datetime_from"] if len(rows) == limit else None
    meta = _series_meta(settings, q, interval, tr, paging, nxt)
    meta.update(licence=st["licence"], attribution=st["attribution"], station=code,
                note="official reference data, published under its own licence")
    return respond(request, settings, rows, fmt=fmt, columns=STATION_SERIES_COLUMNS,
                   headers={"X-Attribution": st["attribution"] or "", **_station_licence(settings)}, **meta)


@router.get("/quantities", summary="Quantities and units", responses=_ok(examples.QUANTITIES))
def list_quantities(request: Request, settings: SettingsDep, fmt: FormatQ = None) -> Response:
    return respond(request, settings, render.quantity_list(), fmt=fmt)


@router.get("/licences", summary="Licences of the published data", responses=_ok(examples.LICENCES))
def list_licences(request: Request, conn: ReadConn, settings: SettingsDep, fmt: FormatQ = None) -> Response:
    rows: list[dict[str, Any]] = [{"id": "civicair", "name": settings.licence_name, "url": settings.licence_url,
                                   "attribution": settings.attribution, "applies_to": "devices, zones, mobile"}]
    seen = {settings.licence_name}
    for st in stations.stations(conn, settings):
        if st["licence"] not in seen:
            seen.add(st["licence"])
            url = settings.reference_licence_url if st["licence"] == settings.reference_licence_name else None
            rows.append({"id": f"stations-{len(rows)}", "name": st["licence"], "url": url,
                         "attribution": st["attribution"], "applies_to": "reference stations"})
    return respond(request, settings, rows, fmt=fmt)
