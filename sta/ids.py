"""The integer `@iot.id`s (docs/sensorthings.md#identifiers). Pure.

- Thing, Location, HistoricalLocation and FeatureOfInterest: the thing's registry id
  (`sta_ids`); Sensor: the model's registry id; ObservedProperty: the quantity code.
- Datastream: `thing_id · 16 + quantity code` (below 2³¹ while thing ids are below 1.3·10⁸).
- Observation: `datastream_id · 2²⁴ + hours since 1970` (below 2⁵³ while datastream ids are
  below 2²⁹): it decodes to (thing, quantity, hour) without a lookup, and the id order is the
  time order inside a datastream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DS_FACTOR = 16
OBS_FACTOR = 1 << 24
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MAX_ID = (1 << 53) - 1


def datastream_id(thing_id: int, code: int) -> int:
    return thing_id * DS_FACTOR + code


def split_datastream(ds_id: int) -> tuple[int, int] | None:
    """(thing id, quantity code), or None for a number no datastream can have."""
    if not 0 < ds_id <= MAX_ID:
        return None
    thing_id, code = divmod(ds_id, DS_FACTOR)
    return (thing_id, code) if thing_id > 0 and 1 <= code < DS_FACTOR else None


def epoch_hours(hour: datetime) -> int:
    return (hour - EPOCH) // HOUR


def hour_of(epoch: int) -> datetime:
    return EPOCH + epoch * HOUR


def observation_id(ds_id: int, hour: datetime) -> int:
    return ds_id * OBS_FACTOR + epoch_hours(hour)


def split_observation(obs_id: int) -> tuple[int, datetime] | None:
    """(datastream id, hour), or None."""
    if not 0 < obs_id <= MAX_ID:
        return None
    ds_id, hours = divmod(obs_id, OBS_FACTOR)
    return (ds_id, hour_of(hours)) if split_datastream(ds_id) else None
