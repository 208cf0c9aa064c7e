"""Response formats of the public API: the OpenAQ-like JSON envelope, CSV and GeoJSON; the next
page of every paged response in a `Link: <...>; rel="next"` header (the only cursor CSV has),
docs/open-data.md#paging-and-limits."""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from civicair.core.errors import InvalidParameter
from civicair.core.settings import Settings
from fastapi import Request
from fastapi.responses import Response


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    GEOJSON = "geojson"


GEOJSON_MEDIA = "application/geo+json"


def choose_format(request: Request, fmt: Format | None, geo: bool) -> Format:
    if fmt is None:
        accept = request.headers.get("accept", "")
        if "text/csv" in accept:
            fmt = Format.CSV
        elif GEOJSON_MEDIA in accept and geo:
            fmt = Format.GEOJSON
        else:
            fmt = Format.JSON
    if fmt == Format.GEOJSON and not geo:
        raise InvalidParameter("format", "GeoJSON is not available for this endpoint; use json or csv")
    return fmt


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; datetimes as ISO-8601 (orjson: ~10x faster than json on series)."""
    return orjson.dumps(obj)


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        elif isinstance(v, list):
            out[name] = ";".join(str(x) for x in v)
        elif isinstance(v, datetime):
            out[name] = v.isoformat()
        else:
            out[name] = v
    return out


def to_csv(results: list[dict[str, Any]], columns: Sequence[str] = ()) -> bytes:
    """CSV with a header; `columns`: the header of an empty page (and the first columns)."""
    rows = [flatten(r) for r in results]
    fields: list[str] = list(columns)
    # a null object (a mobile device's coordinates) is its columns left empty, not a column of its own
    parents = {c.rsplit(".", i)[0] for c in fields for i in range(1, c.count(".") + 1)}
    rows = [{k: v for k, v in r.items() if not (v is None and k in parents)} for r in rows]
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def base_meta(settings: Settings, **meta: Any) -> dict[str, Any]:
    return {
        "name": "civicair open data",
        "licence": settings.licence_name,
        "licence_url": settings.licence_url,
        "attribution": settings.attribution,
        "portal_url": settings.portal_base_url,
        **meta,
    }


def next_link(request: Request, settings: Settings, cursor: str | None) -> dict[str, str]:
    """`Link: <this URL with cursor=...>; rel="next"` (on the public base URL), or nothing on the
    last page."""
    if not cursor:
        return {}
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", cursor)]
    url = f"{settings.public_base_url.rstrip('/')}{request.url.path}?{urlencode(query)}"
    return {"Link": f'<{url}>; rel="next"'}


def _with_next(request: Request, settings: Settings, headers: dict[str, str] | None,
               meta: dict[str, Any]) -> dict[str, str]:
    out = dict(headers or {})
    if (nxt := next_link(request, settings, meta.get("cursor"))):
        out["Link"] = ", ".join(v for v in (out.get("Link"), nxt["Link"]) if v)
    return out


def respond(
    request: Request,
    settings: Settings,
    results: list[dict[str, Any]],
    *,
    fmt: Format | None = None,
    geometry: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    headers: dict[str, str] | None = None,
    columns: Sequence[str] = (),
    **meta: Any,
) -> Response:
    """`columns`: the CSV header when the page is empty."""
    chosen = choose_format(request, fmt, geometry is not None)
    meta = base_meta(settings, **meta)
    meta.setdefault("found", len(results))
    headers = _with_next(request, settings, headers, meta)
    if chosen == Format.CSV:
        return Response(to_csv(results, columns), media_type="text/csv; charset=utf-8", headers=headers)
    if chosen == Format.GEOJSON and geometry is not None:
        features = [{"type": "Feature", "geometry": geometry(r), "properties": flatten(r)} for r in results]
        body = {"type": "FeatureCollection", "meta": meta, "features": features}
        return Response(dumps(body), media_type=GEOJSON_MEDIA, headers=headers)
    return Response(dumps({"meta": meta, "results": results}), media_type="application/json", headers=headers)


def respond_docs(request: Request, settings: Settings, docs: list[bytes], count: int, *,
                 fmt: Format | None = None, headers: dict[str, str] | None = None, columns: Sequence[str] = (),
                 **meta: Any) -> Response:
    """`respond` for `count` rows already rendered as JSON objects (`docs`: fragments of one or
    more comma-joined objects), which the JSON format embeds as they are, in one join (the zone
    series hot path)."""
    chosen = choose_format(request, fmt, False)
    if chosen != Format.JSON:
        rows = orjson.loads(b"[" + b",".join(docs) + b"]")
        return respond(request, settings, rows, fmt=chosen, headers=headers, columns=columns, **meta)
    meta = base_meta(settings, **meta)
    meta.setdefault("found", count)
    headers = _with_next(request, settings, headers, meta)
    parts = [b'{"meta":', dumps(meta), b',"results":[']
    for doc in docs:
        parts += (doc, b",")
    if docs:
        parts.pop()
    parts.append(b"]}")
    return Response(b"".join(parts), media_type="application/json", headers=headers)
