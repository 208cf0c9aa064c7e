"""The public pages (docs/open-data.md#public-web): every value comes from the read model, the same
functions the API serves, so a page publishes exactly what the API does and adds no privacy rule.

`/` map · `/zones/{id}` · `/sensors/{pseudonym}` (what a label's QR code opens) ·
`/stations/{code}` · `/datasets`, `/datasets/{id}` (the catalogue's dcat:landingPage) ·
`/embed/zones/{id}` (the widget's page, the only one that may be framed by another site).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from civicair.core.domain import QUANTITY_BY_NAME
from civicair.core.errors import NotFound
from civicair.core.settings import Settings
from civicair.open_export import urls
from civicair.open_export.datasets import DEFAULT_DATASETS, select_datasets
from civicair.open_export.files import alias_file, dataset_files
from civicair.open_export.service import export_dir
from civicair.open_export.vocabulary import dataset_licence
from civicair.readmodel import devices, indices, stations, zone_series
from civicair.readmodel.map import latest_snapshot
from civicair.readmodel.params import Interval, TimeRange, floor_period, is_h3_cell
from civicair.readmodel.zone_index import zone_name
from civicair.web.i18n import message
from civicair.web.render import language, page
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

router = APIRouter(include_in_schema=False)
ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
LABELS = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO₂", "o3": "O₃", "pm1": "PM1", "temperature": "T",
          "humidity": "RH", "pressure": "p"}
SPAN = {Interval.HOUR: timedelta(days=7), Interval.DAY: timedelta(days=30)}


class BadChoice(Exception):
    def __init__(self, name: str, value: str, allowed: list[str]) -> None:
        super().__init__(f"{name} {value[:40]!r} is not one of {', '.join(allowed)}")


@contextmanager
def _read(request: Request) -> Iterator[Connection]:
    with request.app.state.db.read_engine.connect() as conn:
        yield conn


def _choice(request: Request, name: str, allowed: list[str], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise BadChoice(name, value, allowed)
    return value


def _not_found(request: Request, what: str) -> HTMLResponse:
    return page(request, "error.html", status=404, what=what)


def _bad(request: Request, exc: BadChoice) -> HTMLResponse:
    return page(request, "error.html", status=400, what=str(exc))


def _span(interval: Interval, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period a page shows: the last 7 days of hours or 30 days, the current period included."""
    now = now or datetime.now(UTC)
    end = floor_period(now, interval) + (timedelta(hours=1) if interval == Interval.HOUR else timedelta(days=1))
    return end - SPAN[interval], end


def _query(**params: Any) -> str:
    return urlencode({k: (v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
                      for k, v in params.items() if v is not None})


# --- the map ------------------------------------------------------------------------------------

@router.api_route("/", methods=["GET", "HEAD"])
def map_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    try:
        quantity = _choice(request, "quantity", list(indices.QUANTITIES), "pm25")
        scale_id = _choice(request, "scale", list(indices.SCALES), indices.DEFAULT_SCALE)
    except BadChoice as exc:
        return _bad(request, exc)
    scale = indices.scale_of(scale_id)
    with _read(request) as conn:
        snap = latest_snapshot(conn, settings, quantity, scale_id)
    doc = orjson.loads(gzip.decompress(snap.body_gzip))
    rows = []
    for f in doc["zones"]["features"]:
        p = f["properties"]
        if p["kind"] != "admin":
            continue
        i = next((i for i in range(len(p["values"]) - 1, -1, -1) if p["values"][i] is not None), None)
        rows.append({"p": p, "value": p["values"][i] if i is not None else None,
                     "hour": doc["meta"]["hours"][i] if i is not None else None,
                     "band": indices.band_info(scale, p["bands"][i] if i is not None else 0)})
    lang = language(request)
    west, south, east, north = settings.export_bbox
    config = {
        "tilesUrl": settings.map_tiles_url or None, "tilesAttribution": settings.map_tiles_attribution,
        "dataAttribution": f"{settings.attribution} · {settings.licence_name}",
        "center": [(south + north) / 2, (west + east) / 2], "zoom": 12,
        "dataUrl": "/v1/map/latest?" + _query(quantity=quantity, scale=scale_id),
        "scale": scale_id, "quantity": quantity, "unit": QUANTITY_BY_NAME[quantity].unit, "lang": lang,
        "bands": [{"colour": b.colour, "label": b.label_fr if lang == "fr" else b.label_en} for b in scale.bands],
        "noData": {"colour": indices.NO_DATA.colour,
                   "label": indices.NO_DATA.label_fr if lang == "fr" else indices.NO_DATA.label_en},
        "messages": {"dataError": _msg(lang, "map.data_error"), "bike": _msg(lang, "map.bike"),
                     "station": _msg(lang, "map.station")},
    }
    return page(request, "map.html", quantity=quantity, quantity_label=LABELS[quantity], scale=scale,
                scales=indices.SCALES, quantities=indices.QUANTITIES, labels=LABELS, rows=rows,
                legend=_legend(scale, quantity), config=json.dumps(config, ensure_ascii=False))


def _msg(lang: str, key: str) -> str:
    return message(lang, key)


def _legend(scale: indices.Scale, quantity: str) -> list[dict[str, Any]]:
    out = []
    for b, (lo, hi) in zip(scale.bands, indices.ranges(scale, quantity), strict=True):
        text = f"≤ {hi:g}" if lo is None else (f"> {lo:g}" if hi is None else f"{lo:g}–{hi:g}")
        out.append({"band": b, "range": text})
    return out


# --- series pages -------------------------------------------------------------------------------

def _series_choices(request: Request) -> tuple[str, Interval]:
    quantity = _choice(request, "quantity", [q for q in QUANTITY_BY_NAME], "pm25")
    interval = Interval(_choice(request, "interval", [i.value for i in Interval], Interval.HOUR.value))
    return quantity, interval


def _reference(conn: Connection, settings: Settings, zone_or_cell: str, quantity: str, start: datetime,
               end: datetime, interval: Interval) -> dict[str, Any] | None:
    """The first reference station in the zone (or cell) with data in the span, for the chart."""
    for st in stations.stations_in_zone(conn, settings, zone_or_cell):
        rows = stations.station_series(conn, settings, st["code"], quantity,
                                       TimeRange(datetime_from=start, datetime_to=end), interval)
        if rows:
            q = _query(quantity=quantity, datetime_from=start, datetime_to=end, interval=interval.value)
            return {"station": st, "url": f"/v1/stations/{st['code']}/series?{q}", "n": len(rows)}
    return None


def _chart_config(lang: str, series_url: str, reference: dict[str, Any] | None, *, calibrated: bool = True,
                  raw: str = "raw_mean") -> str:
    labels = {"calibrated": message(lang, "chart.calibrated"),
              "raw": message(lang, "chart.raw" if raw == "raw_mean" else "chart.value"),
              "reference": message(lang, "chart.reference", code=reference["station"]["code"]) if reference else ""}
    return json.dumps({"seriesUrl": series_url, "referenceUrl": reference["url"] if reference else None,
                       "calibrated": calibrated, "raw": raw, "labels": labels}, ensure_ascii=False)


@router.api_route("/zones/{zone_id}", methods=["GET", "HEAD"])
def zone_page(request: Request, zone_id: str) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    if not ID.fullmatch(zone_id):
        return _not_found(request, zone_id[:64])
    try:
        quantity, interval = _series_choices(request)
    except BadChoice as exc:
        return _bad(request, exc)
    start, end = _span(interval)
    with _read(request) as conn:
        name = zone_name(conn, zone_id)
        try:
            if name is None:
                raise NotFound(zone_id)
            series = zone_series.zone_series_page(conn, settings, zone_id, quantity,
                                                  TimeRange(datetime_from=start, datetime_to=end), interval)
        except NotFound:
            return _not_found(request, f"zone {zone_id}")
        listed = {z["id"]: z for z in zone_series.zone_list(conn, settings)}
        reference = _reference(conn, settings, zone_id, quantity, start, end, interval)
    lang = language(request)
    q = _query(quantity=quantity, datetime_from=start, datetime_to=end, interval=interval.value)
    api = f"/v1/zones/{zone_id}/series?{q}"
    dataset = "zone-hourly" if interval == Interval.HOUR else "zone-daily"
    total = int((end - start) / (timedelta(hours=1) if interval == Interval.HOUR else timedelta(days=1)))
    zone = listed.get(zone_id, {"id": zone_id, "name": name, "kind": "h3" if is_h3_cell(zone_id) else "admin",
                                "n_devices": 0})
    return page(request, "zone.html", zone=zone, quantity=quantity, quantity_label=LABELS.get(quantity, quantity),
                interval=interval.value, quantities=list(QUANTITY_BY_NAME), labels=LABELS,
                rows=series.results, suppressed=series.suppressed, total=total, reference=reference,
                unit=QUANTITY_BY_NAME[quantity].unit, start=start, end=end,
                chart=_chart_config(lang, api, reference),
                downloads=_downloads(api, f"/v1/zones/{zone_id}/series?{q}&format=csv", dataset))


def _downloads(api: str, csv: str, dataset: str) -> dict[str, str]:
    return {"csv": csv, "json": api, "parquet": f"/exports/{dataset}/latest.parquet", "dataset": dataset,
            "dataset_page": f"/datasets/{dataset}", "catalogue": "/catalog.jsonld"}


@router.api_route("/sensors/{pseudonym}", methods=["GET", "HEAD"])
def sensor_page(request: Request, pseudonym: str) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    if not ID.fullmatch(pseudonym):
        return _not_found(request, pseudonym[:64])
    try:
        quantity, interval = _series_choices(request)
    except BadChoice as exc:
        return _bad(request, exc)
    start, end = _span(interval)
    rows: list[dict[str, Any]] = []
    reference = None
    with _read(request) as conn:
        try:
            device = devices.device_detail(conn, settings, pseudonym)
        except NotFound:
            return _not_found(request, f"sensor {pseudonym}")
        if device["has_series"]:
            rows = devices.device_series(conn, settings, pseudonym, quantity,
                                         TimeRange(datetime_from=start, datetime_to=end), interval)
            if device["h3_cell"]:
                reference = _reference(conn, settings, device["h3_cell"], quantity, start, end, interval)
    lang = language(request)
    q = _query(quantity=quantity, datetime_from=start, datetime_to=end, interval=interval.value)
    api = f"/v1/devices/{pseudonym}/series?{q}"
    total = int((end - start) / (timedelta(hours=1) if interval == Interval.HOUR else timedelta(days=1)))
    coverage = [r["coverage"]["percent_complete"] for r in rows if r["coverage"]["percent_complete"] is not None]
    return page(request, "sensor.html", device=device, quantity=quantity, quantity_label=LABELS.get(quantity, quantity),
                interval=interval.value, quantities=device["quantities"] or ["pm25"], labels=LABELS, rows=rows,
                total=total, reference=reference, unit=QUANTITY_BY_NAME[quantity].unit,
                percent=round(sum(coverage) / total, 1) if total else 0.0,
                calibrated=any(r["calibrated"] for r in rows),
                chart=_chart_config(lang, api, reference),
                downloads=_downloads(api, api + "&format=csv", "device-hourly"))


@router.api_route("/stations/{code}", methods=["GET", "HEAD"])
def station_page(request: Request, code: str) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    if not ID.fullmatch(code):
        return _not_found(request, code[:64])
    try:
        quantity, interval = _series_choices(request)
    except BadChoice as exc:
        return _bad(request, exc)
    start, end = _span(interval)
    with _read(request) as conn:
        try:
            station = stations.station(conn, settings, code)
        except NotFound:
            return _not_found(request, f"station {code}")
        rows = stations.station_series(conn, settings, code, quantity, TimeRange(datetime_from=start, datetime_to=end),
                                       interval)
    lang = language(request)
    q = _query(quantity=quantity, datetime_from=start, datetime_to=end, interval=interval.value)
    api = f"/v1/stations/{code}/series?{q}"
    total = int((end - start) / (timedelta(hours=1) if interval == Interval.HOUR else timedelta(days=1)))
    return page(request, "station.html", station=station, quantity=quantity, quantity_label=LABELS.get(quantity, quantity),
                interval=interval.value, quantities=list(indices.QUANTITIES), labels=LABELS, rows=rows, total=total,
                unit=QUANTITY_BY_NAME[quantity].unit,
                chart=_chart_config(lang, api, None, calibrated=False, raw="value"),
                downloads=_downloads(api, api + "&format=csv", "reference-stations"))


# --- datasets and the widget ----------------------------------------------------------------------

def _datasets(settings: Settings) -> Any:
    return select_datasets(settings.export_datasets) if settings.export_datasets else DEFAULT_DATASETS


@router.api_route("/datasets", methods=["GET", "HEAD"])
def datasets_page(request: Request) -> HTMLResponse:
    return page(request, "datasets.html", datasets=_datasets(request.app.state.settings))


@router.api_route("/datasets/{dataset_id}", methods=["GET", "HEAD"])
def dataset_page(request: Request, dataset_id: str) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    found = [d for d in _datasets(settings) if d.id == dataset_id]
    if not found:
        return _not_found(request, f"dataset {dataset_id[:64]}")
    d = found[0]
    root = export_dir(settings)
    files = dataset_files(root, d.id)
    now = datetime.now(UTC)
    latest = {ext: alias_file(root, d.id, "latest", ext, now) for ext in ("csv", "parquet")}
    # the portal's page only when its slug is configured (portals name datasets from their titles)
    return page(request, "dataset.html", d=d, files=list(reversed(files))[:60], n_files=len(files), latest=latest,
                portal=urls.portal_page(settings, d.id), licence=dataset_licence(settings, d))


@router.api_route("/embed/zones/{zone_id}", methods=["GET", "HEAD"])
def embed_page(request: Request, zone_id: str) -> HTMLResponse:
    if not ID.fullmatch(zone_id):
        return _not_found(request, zone_id[:64])
    try:
        quantity = _choice(request, "quantity", list(indices.QUANTITIES), "pm25")
        scale_id = _choice(request, "scale", list(indices.SCALES), indices.DEFAULT_SCALE)
    except BadChoice as exc:
        return _bad(request, exc)
    with _read(request) as conn:
        name = zone_name(conn, zone_id)
    if name is None:
        return _not_found(request, f"zone {zone_id}")
    return page(request, "embed.html", embed=True, zone_id=zone_id, zone_name=name, quantity=quantity, scale=scale_id)
