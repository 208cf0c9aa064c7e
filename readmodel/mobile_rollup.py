"""The mobile rollup (docs/privacy.md#mobile-data): each mobile device's located readings, cut
into whole trips over its whole history (never at a request's window), filtered by the privacy
rules of `anonymise.trip_cell_hours` and summed per (trip, quantity, hour, H3 cell) into
`mobile_cell_hours`. The public cell-hours are aggregated from it in SQL, with the k-anonymity
and publication rules applied then (`statements.mobile_cells_page`), so a consent withdrawal,
an approval or a withheld device takes effect at once.

What is recomputed: `mobile_invalidations` holds the (device, hour) pairs written to `hourly`
since the last run (statement triggers, migration 0010). Each run takes them, widens each run of
hours to the whole trips around it and recomputes those trips (delete + insert: idempotent).
A trip is written once it is closed: a later point more than `TRIP_GAP` after its last one, or
its last point both measured and received more than `TRIP_GAP` ago; an open trip is queued again
for the next run. A change of the resolution or of a filter setting rebuilds everything.

`refresh` runs as the `readmodel.mobile_rollup` job (every `mobile_rollup_interval_s`) and as
`civicair mobile refresh`, under a transaction-level advisory lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.settings import Settings
from civicair.readmodel import anonymise
from civicair.readmodel.anonymise import TRIP_GAP, Point
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

LOCK_KEY = 0x63697662  # pg_advisory_xact_lock key of the refresh ("civb")
VERSION = 1  # bump when the filtering changes: the rows are rebuilt
HOUR = timedelta(hours=1)
WALK_BATCH = 500


@dataclass(frozen=True)
class MobileRefreshResult:
    rebuilt: bool
    devices: int
    trips: int  # closed trips (re)computed
    open_trips: int  # still open: queued again
    rows: int
    seconds: float


def rollup_params(settings: Settings) -> dict[str, Any]:
    """Everything the stored rows depend on besides the readings and privacy zones."""
    return {"version": VERSION, "resolution": settings.h3_resolution, "trip_gap_s": TRIP_GAP.total_seconds(),
            "buffer_m": anonymise.END_BUFFER_M, "max_speed_kmh": settings.mobile_max_speed_kmh,
            "max_cells_per_hour": settings.mobile_max_cells_per_hour}


def invalidate_device(conn: Connection, device_id: int) -> None:
    """Drop a device's rows now and queue every hour it has data for (its privacy zones
    changed): until the next run its points are in no public cell."""
    m, inv, h = tables.mobile_cell_hours, tables.mobile_invalidations, tables.hourly
    conn.execute(sa.delete(m).where(m.c.device_id == device_id))
    conn.execute(sa.insert(inv).from_select(
        ["device_id", "hour"], sa.select(h.c.device_id, h.c.hour).where(h.c.device_id == device_id).distinct()))


def _spans(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours → runs of contiguous hours as [start, end)."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(set(hours)):
        if out and h <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], h + HOUR))
        else:
            out.append((h, h + HOUR))
    return out


def _located(device_id: int) -> Any:
    r = tables.readings
    return sa.and_(r.c.device_id == device_id, r.c.lat.isnot(None), r.c.lon.isnot(None))


def _walk(conn: Connection, device_id: int, t: datetime, backwards: bool) -> tuple[datetime, bool]:
    """From the located time `t`, the end of its trip in one direction: (that time, whether a
    point lies beyond it, i.e. more than `TRIP_GAP` away)."""
    r = tables.readings
    while True:
        beyond = r.c.time < t if backwards else r.c.time > t
        order = r.c.time.desc() if backwards else r.c.time.asc()
        times = conn.execute(sa.select(r.c.time).where(_located(device_id), beyond).distinct()
                             .order_by(order).limit(WALK_BATCH)).scalars().all()
        for u in times:
            if abs(u - t) > TRIP_GAP:
                return t, True
            t = u
        if len(times) < WALK_BATCH:
            return t, False


def _points(conn: Connection, device_id: int, start: datetime, end: datetime) -> Iterator[tuple[Point, datetime]]:
    """The device's located times in [start, end], each with its unflagged values and the
    latest time one of its readings was received."""
    r = tables.readings
    stmt = (sa.select(r.c.time, r.c.quantity, r.c.value, r.c.flags, r.c.lat, r.c.lon, r.c.received_at)
            .where(_located(device_id), r.c.time >= start, r.c.time <= end).order_by(r.c.time, r.c.quantity))
    current: tuple[datetime, float, float] | None = None
    values: dict[int, float] = {}
    received = start
    for row in conn.execute(stmt.execution_options(yield_per=10_000)):
        if current is not None and row.time != current[0]:
            yield Point(current[0], current[1], current[2], values), received
            current = None
        if current is None:
            current, values, received = (row.time, row.lat, row.lon), {}, row.received_at
        if row.flags == 0:
            values[row.quantity] = row.value
        received = max(received, row.received_at)
    if current is not None:
        yield Point(current[0], current[1], current[2], values), received


def _trips(points: Iterator[tuple[Point, datetime]]) -> Iterator[tuple[list[Point], datetime]]:
    """Whole trips of a time-ordered point stream, each with its latest reception time."""
    trip: list[Point] = []
    received = datetime.min.replace(tzinfo=UTC)
    for p, got in points:
        if trip and p.time - trip[-1].time > TRIP_GAP:
            yield trip, received
            trip, received = [], datetime.min.replace(tzinfo=UTC)
        trip.append(p)
        received = max(received, got)
    if trip:
        yield trip, received


class _Run:
    def __init__(self, conn: Connection, settings: Settings, now: datetime) -> None:
        self.conn, self.settings, self.now = conn, settings, now
        self.trips = self.open_trips = self.rows = 0
        self.requeue: list[dict[str, Any]] = []

    def span(self, device_id: int, zones: tuple[anonymise.PrivacyZone, ...], lo: datetime, hi: datetime) -> datetime:
        """Recompute the whole trips holding the device's located points of [lo, hi); returns
        the end of what was covered."""
        r, m = tables.readings, tables.mobile_cell_hours
        first, last = self.conn.execute(sa.select(sa.func.min(r.c.time), sa.func.max(r.c.time))
                                        .where(_located(device_id), r.c.time >= lo, r.c.time < hi)).one()
        if first is None:
            return hi
        start, _ = _walk(self.conn, device_id, first, backwards=True)
        end, followed = _walk(self.conn, device_id, last, backwards=False)
        self.conn.execute(sa.delete(m).where(m.c.device_id == device_id, m.c.trip_start >= start,
                                             m.c.trip_start <= end))
        settle = self.now - TRIP_GAP
        batch: list[dict[str, Any]] = []
        for trip, received in _trips(_points(self.conn, device_id, start, end)):
            if trip[-1].time == end and not followed and (end > settle or received > settle):
                self.open_trips += 1  # more points may still come: computed once it is closed
                self.requeue.append({"device_id": device_id, "hour": anonymise.hour_of(trip[0].time)})
                continue
            self.trips += 1
            for c in anonymise.trip_cell_hours(
                    trip, zones, self.settings.h3_resolution, max_speed_mps=self.settings.mobile_max_speed_kmh / 3.6,
                    max_cells_per_hour=self.settings.mobile_max_cells_per_hour):
                batch.append({"device_id": device_id, "trip_start": trip[0].time, "quantity": c.quantity,
                              "hour": c.hour, "cell": h3.str_to_int(c.cell), "n": c.n, "sum": c.sum,
                              "min": c.min, "max": c.max})
            if len(batch) >= 5000:
                self._write(batch)
                batch = []
        self._write(batch)
        return max(hi, end)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if batch:
            self.conn.execute(sa.insert(tables.mobile_cell_hours), batch)
            self.rows += len(batch)


def refresh(conn: Connection, settings: Settings, *, now: datetime | None = None,
            rebuild: bool = False) -> MobileRefreshResult:
    """Bring the mobile rollup up to date (in the caller's transaction)."""
    started = time.perf_counter()
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    now = now or datetime.now(UTC)
    d, h, m, inv, state = (tables.devices, tables.hourly, tables.mobile_cell_hours, tables.mobile_invalidations,
                           tables.mobile_rollup)
    params = rollup_params(settings)
    rebuild = rebuild or conn.execute(sa.select(state.c.params).where(state.c.id == 1)).scalar() != params
    spans: dict[int, list[tuple[datetime, datetime]]] = {}
    if rebuild:
        conn.execute(sa.delete(m))
        conn.execute(sa.delete(inv))
        for device_id, first, last in conn.execute(
                sa.select(h.c.device_id, sa.func.min(h.c.hour), sa.func.max(h.c.hour))
                .join(d, d.c.id == h.c.device_id).where(d.c.kind == "mobile").group_by(h.c.device_id)):
            spans[device_id] = [(first, last + HOUR)]
    else:
        hours: dict[int, list[datetime]] = {}
        for device_id, hour in conn.execute(sa.delete(inv).returning(inv.c.device_id, inv.c.hour)):
            hours.setdefault(device_id, []).append(hour)
        spans = {device_id: _spans(hs) for device_id, hs in hours.items()}
    zones = {row.id: anonymise.parse_privacy_zones(row.privacy_zones) for row in conn.execute(
        sa.select(d.c.id, d.c.privacy_zones).where(d.c.kind == "mobile", d.c.id.in_(list(spans))))}
    run = _Run(conn, settings, now)
    for device_id in sorted(spans):
        if device_id not in zones:
            continue  # erased, or no longer mobile
        covered: datetime | None = None
        for lo, hi in spans[device_id]:
            if covered is not None and hi <= covered:
                continue
            covered = run.span(device_id, zones[device_id], lo, hi)
    if run.requeue:
        conn.execute(sa.insert(inv), run.requeue)
    stmt = insert(state).values(id=1, params=params)
    conn.execute(stmt.on_conflict_do_update(index_elements=[state.c.id],
                                            set_={"params": params, "refreshed_at": sa.func.now()}))
    return MobileRefreshResult(rebuild, len(zones), run.trips, run.open_trips, run.rows, time.perf_counter() - started)
