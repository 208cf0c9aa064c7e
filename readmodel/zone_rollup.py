"""Materialised zone series: what a TimescaleDB continuous aggregate with real-time aggregation
does, on plain PostgreSQL, for the k-anonymous zone series of the open-data API.

- `zone_series` holds, per zone, quantity and interval, every whole period below the zone's
  watermark as the published JSON row (`doc`, bytes; NULL when every hour of it was suppressed) and the
  number of suppressed zone-hours. Rows are rendered by the same code as the live path
  (`statements.zone_aggregates` + `render.zone_doc`), so a stored row and a live one are the same bytes.
- `zone_rollup` says what each zone's rows were built from: its eligible devices, k, the renderer
  version and the watermark. The API uses the stored rows only while all four still hold
  (`zone_series`, through `statements.zone_page`); otherwise it aggregates live, so a consent withdrawal or a device
  turning unreliable takes effect at once.
- `zone_invalidations` receives the (quantity, hour) of every write to `hourly` (statement
  triggers, migration 0008): late readings, calibration refits, erasures. The API does not use
  stored rows of a span with a pending invalidation; `refresh` recomputes the days they touch.

`refresh` runs as the `readmodel.zone_rollup` job (every `zone_rollup_interval_s`) and as
`civicair zones refresh`. It takes a transaction-level advisory lock, so several processes can
schedule it and only one works at a time; it is idempotent (delete + insert per span). Only zones
with at least k eligible devices are materialised: the others are suppressed almost everywhere and
cheap to aggregate live.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.domain import QUANTITY_BY_CODE
from civicair.core.settings import Settings
from civicair.readmodel import cells, params, render, statements, stored, zone_series
from civicair.readmodel.params import Interval
from civicair.readmodel.publication import qa_cutoff
from civicair.readmodel.stored import RENDER_VERSION
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

LOCK_KEY = 0x63697661  # pg_advisory_xact_lock key of the refresh ("civa")
CHUNK = timedelta(days=28)  # a rebuild renders this much time at once (bounded memory; whole weeks)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class RefreshResult:
    watermark: datetime
    rebuilt: int  # zones (re)built from scratch
    updated: int  # zones brought forward incrementally
    dropped: int  # zones no longer materialised
    rows: int  # zone_series rows written
    invalidations: int  # logged (quantity, hour) pairs consumed
    seconds: float


def memberships(conn: Connection, settings: Settings, now: datetime | None = None) -> dict[str, list[int]]:
    """Zone id → sorted ids of its eligible devices (public, established at `now`, fixed, not
    unreliable), for the administrative zones and H3 cells with at least k of them."""
    out: dict[str, list[int]] = defaultdict(list)
    d, dz = tables.devices, tables.device_zones
    cutoff = qa_cutoff(settings, now)
    for zone_id, device_id in conn.execute(
        sa.select(dz.c.zone_id, dz.c.device_id).join(d, d.c.id == dz.c.device_id)
        .where(statements.published_fixed(cutoff))
    ):
        out[zone_id].append(device_id)
    for r in zone_series.eligible_fixed(conn, cutoff):
        cell = cells.public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution)
        if cell:
            out[cell].append(r.id)
    return {z: sorted(ids) for z, ids in out.items() if len(ids) >= settings.k_anonymity}


def _merge(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _chunks(lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    while lo < hi:
        yield lo, min(hi, lo + CHUNK)
        lo += CHUNK


def _chunk_rows(rows: list[tuple[Any, bytes | None]], interval: Interval) -> list[tuple[Any, ...]]:
    """Aggregate rows (ordered by zone, quantity, period) with their JSON → zone_series rows
    (the chunk's JSON compressed by `stored.pack_docs`)."""
    step, size = params.STEP[interval], stored.CHUNK_PERIODS[interval]
    out: list[tuple[Any, ...]] = []
    key = None
    idx: list[int] = []
    ends: list[int] = []
    hours: list[int] = []
    docs: list[bytes] = []
    for r, doc in rows:
        start = stored.chunk_start(r.period, interval)
        if (r.zone_id, r.quantity, start) != key:
            if key is not None:
                out.append((*key, len(idx), sum(hours), idx, ends, hours, *stored.pack_docs(b",".join(docs))))
            key, idx, ends, hours, docs, offset = (r.zone_id, r.quantity, start), [], [], [0] * size, [], 0
        position = (r.period - start) // step
        hours[position] = int(r.suppressed_hours)
        if doc is not None:
            offset += len(doc)
            idx.append(position)
            ends.append(offset)
            docs.append(doc)
            offset += 1  # the comma
    if key is not None:
        out.append((*key, len(idx), sum(hours), idx, ends, hours, *stored.pack_docs(b",".join(docs))))
    return [(zone_id, code, interval.value, *rest) for zone_id, code, *rest in out]


def _materialise(conn: Connection, zones: dict[str, list[int]], lo: datetime, hi: datetime, k: int) -> int:
    """Recompute the stored rows of `zones`: hourly rows of [lo, hi) (lo is day-aligned) and the
    daily rows of the whole days from lo's week on; returns the periods written."""
    pairs = [(z, i) for z, ids in zones.items() for i in ids]
    codes = sorted(QUANTITY_BY_CODE)
    zs = tables.zone_series
    written = 0
    for x, y in _chunks(stored.chunk_start(lo, Interval.DAY), hi):  # whole weeks, so no chunk is split
        last_day = params.floor_period(y, Interval.DAY)
        for interval, start, end in ((Interval.HOUR, max(x, lo), y), (Interval.DAY, x, last_day)):
            if start >= end:
                continue
            stmt = statements.zone_aggregates(pairs, codes, start, end, interval, k)
            keys = stmt.selected_columns
            stmt = stmt.order_by(keys.zone_id, keys.quantity, keys.period)
            rows = [(r, render.zone_doc(r, interval) if r.n_devices else None) for r in conn.execute(stmt)]
            conn.execute(sa.delete(zs).where(zs.c.zone_id.in_(list(zones)), zs.c.interval == interval.value,
                                             zs.c.chunk >= start, zs.c.chunk < end))
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                    "copy zone_series (zone_id, quantity, interval, chunk, n, n_suppressed, idx, ends, suppressed, "
                    "docs, raw_size) from stdin (format binary)") as copy:
                copy.set_types(["text", "int2", "text", "timestamptz", "int2", "int4", "int2[]", "int4[]", "int2[]",
                                "bytea", "int4"])
                for row in _chunk_rows(rows, interval):
                    copy.write_row(row)
            written += len(rows)
    return written


def refresh(conn: Connection, settings: Settings, *, now: datetime | None = None,
            rebuild: bool = False) -> RefreshResult:
    """Bring every zone's stored rows up to the new watermark (now − lag, whole hours); runs in
    the caller's transaction."""
    started = time.perf_counter()
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
    now = now or datetime.now(UTC)
    watermark = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=settings.zone_rollup_lag_hours)
    zr, zs, inv = tables.zone_rollup, tables.zone_series, tables.zone_invalidations
    # Consume the log first: a write committed after this statement stays logged for next time.
    invalid = conn.execute(sa.delete(inv).returning(inv.c.hour)).scalars().all()
    state = {r.zone_id: r for r in conn.execute(sa.select(zr))}
    members = memberships(conn, settings, now)
    k = settings.k_anonymity

    gone = [z for z in state if z not in members]
    if gone:
        conn.execute(sa.delete(zs).where(zs.c.zone_id.in_(gone)))
        conn.execute(sa.delete(zr).where(zr.c.zone_id.in_(gone)))

    def unchanged(z: str) -> bool:
        s = state.get(z)
        return (not rebuild and s is not None and list(s.device_ids) == members[z] and s.k == k
                and s.version == RENDER_VERSION and s.watermark <= watermark)

    fresh = {z: ids for z, ids in members.items() if not unchanged(z)}
    rows = 0
    if fresh:
        conn.execute(sa.delete(zs).where(zs.c.zone_id.in_(list(fresh))))
        first = conn.execute(sa.select(sa.func.min(tables.hourly.c.hour)).where(
            tables.hourly.c.device_id.in_(sorted({i for ids in fresh.values() for i in ids})))).scalar()
        if first is not None:
            rows += _materialise(conn, fresh, params.floor_period(first, Interval.DAY), watermark, k)

    # Zones built before: the weeks of logged writes below their watermark, and from the start of
    # the day of their watermark (its day row becomes whole at some point) up to the new one.
    by_watermark: dict[datetime, dict[str, list[int]]] = defaultdict(dict)
    for z, ids in members.items():
        if z not in fresh:
            by_watermark[state[z].watermark][z] = ids
    # Whole weeks: a stored week of daily rows is rewritten as a whole (a day's rows alone would
    # drop the rest of its week).
    invalid_weeks = {stored.chunk_start(h, Interval.DAY) for h in invalid}
    for old, zones in by_watermark.items():
        spans = [(w, min(w + WEEK, old)) for w in invalid_weeks if w < old]
        if old < watermark:
            spans.append((params.floor_period(old, Interval.DAY), watermark))
        for lo, hi in _merge(spans):
            rows += _materialise(conn, zones, lo, hi, k)

    if members:
        stmt = insert(zr).values([
            {"zone_id": z, "device_ids": ids, "k": k, "version": RENDER_VERSION, "watermark": watermark}
            for z, ids in members.items()])
        conn.execute(stmt.on_conflict_do_update(index_elements=[zr.c.zone_id], set_={
            "device_ids": stmt.excluded.device_ids, "k": stmt.excluded.k, "version": stmt.excluded.version,
            "watermark": stmt.excluded.watermark, "refreshed_at": sa.func.now()}))
    return RefreshResult(watermark, len(fresh), len(members) - len(fresh), len(gone), rows, len(invalid),
                         time.perf_counter() - started)
