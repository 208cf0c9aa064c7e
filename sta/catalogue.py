"""The metadata entities (every set but Observations), built from the read model's public things
(docs/sensorthings.md#mapping): a Thing per public fixed device, zone and reference station,
its Location, FeatureOfInterest (and a HistoricalLocation for devices), a Datastream per
quantity it publishes, the Sensors and ObservedProperties those use.

A catalogue is built once per `ttl` seconds per process (`CatalogueCache`), like the public
API's response cache; Datastream spans (`phenomenonTime`) and data extents are read when first
needed and kept with it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from civicair.core.domain import QUANTITY_BY_CODE
from civicair.core.settings import Settings
from civicair.readmodel import things as reads
from civicair.readmodel.things import PublicThing
from civicair.sta import ids, vocabulary
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    "device": "Fixed citizen air-quality sensor, pseudonymised and located by its H3 cell, never its "
              "exact position",
    "zone": "Zone aggregate: hourly means over the zone's sensors, published only for hours with at "
            "least {k} distinct sensors",
    "station": "Official reference station of the air-quality network (its own licence and attribution)",
}


def iso(t: datetime | str | None) -> str | None:
    if t is None:
        return None
    text = t if isinstance(t, str) else t.isoformat()
    return text.replace("+00:00", "Z")


@dataclass
class Entity:
    set: str
    id: int
    props: dict[str, Any]
    links: dict[str, int] = field(default_factory=dict)

    def column(self, name: str) -> Any:
        return self.id if name == "id" else self.links[name]


@dataclass
class Catalogue:
    sets: dict[str, dict[int, Entity]]
    things: dict[int, PublicThing]
    datastreams: dict[int, tuple[PublicThing, int]]  # id → (thing, quantity code)
    spans: dict[int, tuple[datetime, datetime] | None] = field(default_factory=dict)  # published hours [first, last]
    # the hours [lo, hi) holding a datastream's data (readmodel.things.extent), read when first
    # needed and kept with the catalogue: a page of the newest hours is at most a TTL behind
    extents: dict[int, tuple[datetime, datetime] | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def span(self, ds_id: int, compute: Callable[[PublicThing, int], tuple[datetime, datetime] | None]
             ) -> tuple[datetime, datetime] | None:
        with self.lock:
            if ds_id in self.spans:
                return self.spans[ds_id]
        thing, code = self.datastreams[ds_id]
        value = compute(thing, code)
        with self.lock:
            self.spans[ds_id] = value
        return value

    def related(self, entity_set: str, column: str, value: int) -> list[Entity]:
        if column == "id":
            e = self.sets[entity_set].get(value)
            return [e] if e else []
        return [e for e in self.sets[entity_set].values() if e.links.get(column) == value]


def _location(t: PublicThing) -> dict[str, Any] | None:
    if t.kind == "zone":
        return t.area
    return {"type": "Point", "coordinates": [t.point[1], t.point[0]]} if t.point else None


def observed_area(area: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Point or Polygon (frost-sta-client reads no MultiPolygon): a MultiPolygon's bounding box."""
    if not area or area.get("type") != "MultiPolygon":
        return area
    xs = [p[0] for poly in area["coordinates"] for ring in poly for p in ring]
    ys = [p[1] for poly in area["coordinates"] for ring in poly for p in ring]
    w, e, s, n = min(xs), max(xs), min(ys), max(ys)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _thing_props(t: PublicThing, settings: Settings, base: str) -> dict[str, Any]:
    r = t.public
    licence = {"licence": settings.licence_name, "licence_url": settings.licence_url}
    if t.kind == "device":
        extra = {"kind": "device", "pseudonym": t.key, "status": r["status"], "stars": r["stars"],
                 "sensor_models": r["sensor_models"], "h3_cell": r["h3_cell"], "first_seen": iso(r["first_seen"]),
                 "last_seen": iso(r["last_seen"]), "publicApi": f"{base}/v1/devices/{t.key}", **licence}
    elif t.kind == "zone":
        extra = {"kind": "zone", "zone_id": t.key, "zone_kind": r["kind"], "n_devices": r["n_devices"],
                 "k_anonymity": settings.k_anonymity, "publicApi": f"{base}/v1/zones/{t.key}/series", **licence}
    else:
        extra = {"kind": "station", "code": t.key, "network": r["network"], "station_type": r["station_type"],
                 "licence": r["licence"], "attribution": r["attribution"]}
    return {"name": t.name, "description": DESCRIPTIONS[t.kind].format(k=settings.k_anonymity), "properties": extra}


def build(conn: Connection, settings: Settings) -> Catalogue:
    base = settings.public_base_url.rstrip("/")
    public, sensor_ids = reads.public_things(conn, settings)
    sets: dict[str, dict[int, Entity]] = {name: {} for name in (
        "Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties",
        "FeaturesOfInterest")}
    datastreams: dict[int, tuple[PublicThing, int]] = {}
    used_models: set[str] = set()
    for t in public:
        sets["Things"][t.id] = Entity("Things", t.id, _thing_props(t, settings, base))
        sets["Locations"][t.id] = Entity("Locations", t.id, {
            "name": f"Location of {t.name}", "description": {
                "device": "Centre of the sensor's public H3 cell", "zone": "The zone's area",
                "station": "The station's position"}[t.kind],
            "encodingType": vocabulary.GEOJSON, "location": _location(t),
            "properties": {"h3_cell": t.public["h3_cell"]} if t.kind == "device" else {}})
        sets["FeaturesOfInterest"][t.id] = Entity("FeaturesOfInterest", t.id, {
            "name": f"Area of {t.name}", "description": "The air sampled by the thing's observations",
            "encodingType": vocabulary.GEOJSON, "feature": t.area,
            "properties": {"h3_cell": t.public["h3_cell"]} if t.kind == "device" else {}})
        if t.kind == "device" and t.public["first_seen"] is not None:
            sets["HistoricalLocations"][t.id] = Entity("HistoricalLocations", t.id,
                                                      {"time": iso(t.public["first_seen"])}, {"thing_id": t.id})
        for code in t.quantities:
            q = QUANTITY_BY_CODE[code]
            model = t.sensors[code]
            if model not in sensor_ids:
                continue  # registered by the next run of the registry job
            used_models.add(model)
            ds_id = ids.datastream_id(t.id, code)
            datastreams[ds_id] = (t, code)
            api = (f"{base}/v1/zones/{t.key}/series" if t.kind == "zone" else
                   f"{base}/v1/devices/{t.key}/series" if t.kind == "device" else f"{base}/v1/stations/{t.key}/series")
            props: dict[str, Any] = {"aggregation": "PT1H", "aggregationMethod": "mean", "quantity": q.name,
                                     "unit_label": q.unit, "publicApi": f"{api}?quantity={q.name}&interval=hour"}
            if t.kind == "zone":
                props["k_anonymity"] = settings.k_anonymity
            if t.kind == "device":
                props["h3_cell"] = t.public["h3_cell"]  # observedArea is this cell
            sets["Datastreams"][ds_id] = Entity("Datastreams", ds_id, {
                "name": f"{vocabulary.LABELS[q.name]} hourly mean, {t.name}",
                "description": f"Hourly mean of {q.label.lower()} ({q.unit}) of {t.name}",
                "unitOfMeasurement": vocabulary.UNITS[q.name], "observationType": vocabulary.OM_MEASUREMENT,
                "observedArea": observed_area(t.area), "properties": props},
                {"thing_id": t.id, "sensor_id": sensor_ids[model], "op_id": code})
    for model in sorted(used_models):
        sheet = vocabulary.DATASHEETS.get(model.upper())
        procedure = model in (reads.ZONE_PROCEDURE, reads.STATION_PROCEDURE)
        sets["Sensors"][sensor_ids[model]] = Entity("Sensors", sensor_ids[model], {
            "name": model,
            "description": ("Aggregation procedure" if procedure else "Sensor model") + f" {model}",
            "encodingType": "text/html" if sheet else "text/plain",
            "metadata": sheet or (f"{model}: see docs/sensorthings.md#sensors" if procedure else
                                  f"{model}: no datasheet on record"),
            "properties": {"kind": "procedure" if procedure else "sensor model"}})
    for code in sorted({c for _, c in datastreams.values()}):
        q = QUANTITY_BY_CODE[code]
        sets["ObservedProperties"][code] = Entity("ObservedProperties", code, {
            "name": vocabulary.LABELS[q.name], "definition": vocabulary.DEFINITIONS[q.name],
            "description": q.label, "properties": {"quantity": q.name, "unit": q.unit}})
    for name in sets:
        sets[name] = dict(sorted(sets[name].items()))
    return Catalogue(sets, {t.id: t for t in public}, datastreams)


class CatalogueCache:
    """One catalogue per process. Older than `ttl_s`, it is rebuilt in a background thread while
    requests keep the previous one (a rebuild costs ~40 ms per 200 devices and 50 zones,
    BENCHMARKS.md "SensorThings"); older than `max_stale_s` (or with `ttl_s` 0), a request
    rebuilds it itself. Consent and eligibility are checked again when series are read, so a
    thing that stopped being public has no observations even in a stale catalogue."""

    def __init__(self, ttl_s: float, connect: Callable[[], Any], settings: Settings) -> None:
        self.ttl_s = ttl_s
        self.max_stale_s = max(3 * ttl_s, ttl_s + 30.0) if ttl_s else 0.0
        self.connect, self.settings = connect, settings
        self.lock = threading.Lock()
        self.value: tuple[float, Catalogue] | None = None
        self.refreshing = False

    def _build(self, conn: Connection) -> Catalogue:
        started = time.monotonic()
        catalogue = build(conn, self.settings)
        with self.lock:
            if self.value is None or self.value[0] < started:
                self.value = (started, catalogue)
        return catalogue

    def _refresh(self) -> None:
        try:
            with self.connect() as conn:
                self._build(conn)
        except Exception:  # the next request tries again; the stale catalogue keeps serving
            log.exception("SensorThings catalogue rebuild failed")
        finally:
            with self.lock:
                self.refreshing = False

    def get(self, conn: Connection) -> Catalogue:
        now = time.monotonic()
        with self.lock:
            value = self.value
            age = now - value[0] if value else None
            if value is not None and age is not None and age < self.ttl_s:
                return value[1]
            background = value is not None and age is not None and age < self.max_stale_s
            if background and not self.refreshing:
                self.refreshing = True
                threading.Thread(target=self._refresh, name="sta-catalogue", daemon=True).start()
        if background and value is not None:
            return value[1]
        return self._build(conn)
