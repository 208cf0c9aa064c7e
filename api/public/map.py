"""The map and widget endpoints (docs/open-data.md#the-map-endpoint): the map's latest values in
one request, a zone's current index, and the index scales. Values and bands come from the read
model (`readmodel.map`, `readmodel.zone_index`, `readmodel.indices`)."""

from __future__ import annotations

import enum
import gzip
from typing import Annotated

from civicair.api.deps import ReadConn, SettingsDep
from civicair.api.middleware import etag_matches
from civicair.api.public.render import dumps, respond
from civicair.readmodel import indices
from civicair.readmodel.map import latest_snapshot
from civicair.readmodel.zone_index import zone_index
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

router = APIRouter(prefix="/v1", tags=["public"])

MapQuantity = enum.StrEnum("MapQuantity", {q: q for q in indices.QUANTITIES})  # type: ignore[misc]
ScaleName = enum.StrEnum("ScaleName", {s: s for s in indices.SCALES})  # type: ignore[misc]
QuantityQ = Annotated[MapQuantity, Query(description="Quantity with index bands.")]
ScaleQ = Annotated[ScaleName, Query(description="Index scale: eaqi (EEA 2024, default) or atmo "
                                                "(d'après les seuils de l'indice ATMO).")]
MAP_MAX_AGE_S = 60


@router.get("/map/latest", summary="The map: every zone, H3 cell, bike cell and station with its last 48 hourly "
                                   "values and index bands, in one request",
            description="Zone and cell hours with fewer than k distinct devices are null (not published). "
                        "Rendered by a scheduled job (at most a minute old); served gzip-compressed.",
            responses={200: {"description": "OK", "content": {"application/json": {}}},
                       304: {"description": "Not modified (If-None-Match)"}})
def map_latest(request: Request, conn: ReadConn, settings: SettingsDep,
               quantity: QuantityQ = MapQuantity("pm25"), scale: ScaleQ = ScaleName("eaqi")) -> Response:
    snap = latest_snapshot(conn, settings, quantity.value, scale.value)
    headers = {"ETag": snap.etag, "Cache-Control": f"public, max-age={MAP_MAX_AGE_S}", "Vary": "Accept-Encoding",
               "Last-Modified": snap.built_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    if etag_matches(request.headers.get("if-none-match"), snap.etag):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(snap.body_gzip, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(gzip.decompress(snap.body_gzip), media_type="application/json", headers=headers)


INDEX_EXAMPLE = {"meta": {"name": "civicair open data", "k_anonymity": 3, "found": 1}, "results": [
    {"zone": "67482", "name": "Strasbourg", "quantity": "pm25", "unit": "µg/m³", "scale": "eaqi",
     "current": {"datetime_from": "2026-01-12T09:00:00Z", "value": 12.4, "band": 2, "colour": "#50CCAA",
                 "text": "#000000", "label": {"en": "Fair", "fr": "Correct"}},
     "hours": [{"datetime_from": "2026-01-12T09:00:00Z", "value": 12.4, "band": 2, "colour": "#50CCAA"}]}]}


@router.get("/zones/{zone_id}/index", summary="A zone's current index and its last 24 hours (the widget)",
            responses={200: {"description": "OK", "content": {"application/json": {"example": INDEX_EXAMPLE}}}})
def get_zone_index(request: Request, conn: ReadConn, settings: SettingsDep,
                   zone_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")],
                   quantity: QuantityQ = MapQuantity("pm25"), scale: ScaleQ = ScaleName("eaqi")) -> Response:
    doc = zone_index(conn, settings, zone_id, quantity.value, scale.value)
    return respond(request, settings, [doc], k_anonymity=settings.k_anonymity)


@router.get("/indices", summary="The index scales (bands, thresholds, colours, sources)")
def get_indices() -> Response:
    return Response(dumps(indices.scales_document()), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=3600"})
