"""SensorThings JSON of the entities (docs/sensorthings.md#mapping): control information
(`@iot.id`, `@iot.selfLink`, `<Nav>@iot.navigationLink`), `$select`, Observations from public
series rows. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from civicair.core.errors import BadQuery
from civicair.sta import ids
from civicair.sta.schema import NAVS, PROPERTIES

HOUR = timedelta(hours=1)
OBSERVATION_COMPONENTS = ("id", "phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters")


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=65536)
def _hour_strings(epoch_hour: int) -> tuple[str, str, str]:
    """(start, end, "start/end") of an hour: pages of many datastreams repeat the same hours."""
    start = ids.hour_of(epoch_hour)
    a, b = iso(start), iso(start + HOUR)
    return a, b, f"{a}/{b}"


def check_select(entity_set: str, select: tuple[str, ...]) -> None:
    known = set(PROPERTIES[entity_set]) | set(NAVS[entity_set])
    for name in select:
        if name not in known:
            raise BadQuery(f"$select: {entity_set} have no property {name!r}; they have "
                           f"{', '.join(sorted(known))}")


def control(base: str, entity_set: str, entity_id: int, select: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not select or "id" in select:
        out["@iot.id"] = entity_id
    if not select:
        out["@iot.selfLink"] = f"{base}/{entity_set}({entity_id})"
    return out


def nav_links(base: str, entity_set: str, entity_id: int, select: tuple[str, ...], out: dict[str, Any]) -> None:
    for nav in NAVS[entity_set]:
        if not select or nav in select:
            out[f"{nav}@iot.navigationLink"] = f"{base}/{entity_set}({entity_id})/{nav}"


def entity(base: str, entity_set: str, entity_id: int, props: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    out = control(base, entity_set, entity_id, select)
    for name in PROPERTIES[entity_set]:
        if name != "id" and (not select or name in select):
            out[name] = props.get(name)
    nav_links(base, entity_set, entity_id, select, out)
    return out


def observation_props(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """An Observation's properties from a public series row (its values as published)."""
    _, end, interval = _hour_strings(ids.epoch_hours(row["period"]["datetime_from"]))
    quality: dict[str, Any] = {"n_readings": row["n_readings"], "coverage": row["coverage"]}
    parameters: dict[str, Any] = {"summary": row["summary"]}
    if kind != "station":
        quality.update(calibrated=row["calibrated"], flags=row["flags"])
        parameters.update(raw_mean=row["raw_mean"], calibrated_mean=row["calibrated_mean"])
    if kind == "zone":
        quality["n_devices"] = row["n_devices"]
    return {"phenomenonTime": interval, "resultTime": end, "result": row["value"],
            "resultQuality": quality, "validTime": None, "parameters": parameters}


def observation(base: str, ds_id: int, kind: str, row: dict[str, Any], select: tuple[str, ...]) -> dict[str, Any]:
    obs_id = ids.observation_id(ds_id, row["period"]["datetime_from"])
    out = control(base, "Observations", obs_id, select)
    props = observation_props(kind, row)
    for name in OBSERVATION_COMPONENTS[1:]:
        if not select or name in select:
            out[name] = props[name]
    nav_links(base, "Observations", obs_id, select, out)
    return out


def observations(base: str, ds_id: int, kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`observation` of many rows without `$select` (the paging hot path: ~1000 rows a page)."""
    prefix = f"{base}/Observations("
    first = ds_id * ids.OBS_FACTOR
    out = []
    for row in rows:
        hour = ids.epoch_hours(row["period"]["datetime_from"])
        _, end, interval = _hour_strings(hour)
        link = f"{prefix}{first + hour})"
        if kind == "station":
            quality: dict[str, Any] = {"n_readings": row["n_readings"], "coverage": row["coverage"]}
            parameters: dict[str, Any] = {"summary": row["summary"]}
        else:
            quality = {"n_readings": row["n_readings"], "coverage": row["coverage"], "calibrated": row["calibrated"],
                       "flags": row["flags"]}
            if kind == "zone":
                quality["n_devices"] = row["n_devices"]
            parameters = {"summary": row["summary"], "raw_mean": row["raw_mean"],
                          "calibrated_mean": row["calibrated_mean"]}
        out.append({"@iot.id": first + hour, "@iot.selfLink": link, "phenomenonTime": interval, "resultTime": end,
                    "result": row["value"], "resultQuality": quality, "validTime": None, "parameters": parameters,
                    "Datastream@iot.navigationLink": link + "/Datastream",
                    "FeatureOfInterest@iot.navigationLink": link + "/FeatureOfInterest"})
    return out


def components(select: tuple[str, ...]) -> tuple[str, ...]:
    if not select:
        return OBSERVATION_COMPONENTS
    for name in select:
        if name not in OBSERVATION_COMPONENTS:
            raise BadQuery(f"$select: {name!r} is not a component of a dataArray; components: "
                           f"{', '.join(OBSERVATION_COMPONENTS)}")
    return tuple(dict.fromkeys(select))


def data_array_row(ds_id: int, kind: str, row: dict[str, Any], comps: tuple[str, ...]) -> list[Any]:
    props = observation_props(kind, row)
    return [ids.observation_id(ds_id, row["period"]["datetime_from"]) if c == "id" else props[c] for c in comps]
