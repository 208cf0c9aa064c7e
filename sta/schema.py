"""The SensorThings 1.1 data model as civicair serves it (docs/sensorthings.md#mapping): entity
sets, their properties with types, and their navigation properties with the columns that join
them. Pure."""

from __future__ import annotations

from dataclasses import dataclass

# property types: string, json, geometry, interval, instant, number, id
PROPERTIES: dict[str, dict[str, str]] = {
    "Things": {"id": "id", "name": "string", "description": "string", "properties": "json"},
    "Locations": {"id": "id", "name": "string", "description": "string", "encodingType": "string",
                  "location": "geometry", "properties": "json"},
    "HistoricalLocations": {"id": "id", "time": "instant"},
    "Datastreams": {"id": "id", "name": "string", "description": "string", "unitOfMeasurement": "json",
                    "observationType": "string", "observedArea": "geometry", "phenomenonTime": "interval",
                    "resultTime": "interval", "properties": "json"},
    "Sensors": {"id": "id", "name": "string", "description": "string", "encodingType": "string",
                "metadata": "string", "properties": "json"},
    "ObservedProperties": {"id": "id", "name": "string", "definition": "string", "description": "string",
                           "properties": "json"},
    "Observations": {"id": "id", "phenomenonTime": "interval", "resultTime": "instant", "result": "number",
                     "resultQuality": "json", "validTime": "interval", "parameters": "json"},
    "FeaturesOfInterest": {"id": "id", "name": "string", "description": "string", "encodingType": "string",
                           "feature": "geometry", "properties": "json"},
}


@dataclass(frozen=True)
class Nav:
    target: str  # entity set
    many: bool
    source_col: str  # column of the source row …
    target_col: str  # … equal to this column of the target rows


NAVS: dict[str, dict[str, Nav]] = {
    "Things": {"Locations": Nav("Locations", True, "id", "id"),
               "HistoricalLocations": Nav("HistoricalLocations", True, "id", "thing_id"),
               "Datastreams": Nav("Datastreams", True, "id", "thing_id")},
    "Locations": {"Things": Nav("Things", True, "id", "id"),
                  "HistoricalLocations": Nav("HistoricalLocations", True, "id", "thing_id")},
    "HistoricalLocations": {"Thing": Nav("Things", False, "thing_id", "id"),
                            "Locations": Nav("Locations", True, "thing_id", "id")},
    "Datastreams": {"Thing": Nav("Things", False, "thing_id", "id"),
                    "Sensor": Nav("Sensors", False, "sensor_id", "id"),
                    "ObservedProperty": Nav("ObservedProperties", False, "op_id", "id"),
                    "Observations": Nav("Observations", True, "id", "ds_id")},
    "Sensors": {"Datastreams": Nav("Datastreams", True, "id", "sensor_id")},
    "ObservedProperties": {"Datastreams": Nav("Datastreams", True, "id", "op_id")},
    "Observations": {"Datastream": Nav("Datastreams", False, "ds_id", "id"),
                     "FeatureOfInterest": Nav("FeaturesOfInterest", False, "foi_id", "id")},
    "FeaturesOfInterest": {"Observations": Nav("Observations", True, "id", "foi_id")},
}

SETS = tuple(PROPERTIES)
LINK_COLUMNS = {"Datastreams": ("thing_id", "sensor_id", "op_id"), "HistoricalLocations": ("thing_id",)}


def nav(entity_set: str, name: str) -> Nav | None:
    return NAVS[entity_set].get(name)
