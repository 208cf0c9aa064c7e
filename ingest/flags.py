"""Plausibility flags of one reading (pure, docs/quantities.md#ingest-flags and docs/calibration.md#qa-flags): a `core.domain.Flag` bitmask.

Flagged values are stored, never dropped, and excluded from aggregates (the rollup counts them
in `n_flagged` only).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from civicair.core.domain import Flag, QuantityInfo

# Values some sensors emit instead of a measurement (read failure); flagged SENSOR_ERROR.
SENSOR_ERROR_SENTINELS: frozenset[float] = frozenset({-999.0, -9999.0, 65535.0, 6553.5, -127.0})


def clock_flag(time: datetime, now: datetime, *, future_s: int, past_s: int) -> int:
    """CLOCK when the measurement time is more than `future_s` ahead of `now` or more than
    `past_s` behind it."""
    if time > now + timedelta(seconds=future_s) or time < now - timedelta(seconds=past_s):
        return int(Flag.CLOCK)
    return 0


def message_flags(
    time: datetime,
    now: datetime,
    *,
    future_s: int,
    past_s: int,
    sensor_error: int | None = None,
    mobile: bool = False,
    has_position: bool = True,
) -> int:
    """Flags common to every reading of one message."""
    flags = clock_flag(time, now, future_s=future_s, past_s=past_s)
    if sensor_error:
        flags |= Flag.SENSOR_ERROR
    if mobile and not has_position:
        flags |= Flag.NO_POSITION
    return int(flags)


def value_flags(q: QuantityInfo, value: float) -> int:
    """OUT_OF_RANGE outside the plausible range of the quantity; SENSOR_ERROR for the sentinel
    values sensors send on a read failure."""
    flags = 0
    if value in SENSOR_ERROR_SENTINELS:
        flags |= Flag.SENSOR_ERROR
    if not (q.low <= value <= q.high):
        flags |= Flag.OUT_OF_RANGE
    return int(flags)
