"""Zone series (docs/privacy.md#zone-series): hourly and daily aggregates of administrative zones
and H3 cells, with zone-hours of fewer than k distinct devices suppressed.

Paging: `after` (a period start, exclusive) and `limit`; with a `limit` one call covers at most
`limit` periods of time (so it may return fewer rows when hours are missing or suppressed) and
the page says the next `after`, or `None` at the end of the range. With `limit=None` (the export
files) the whole range is returned.

Whole periods below the materialisation watermark come from `zone_series` (`zone_rollup`) when
nothing they depend on changed since; the rest (recent hours, a partial first or last day,
pending writes, changed membership) is aggregated live from `hourly`. Both give the same bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from civicair.core.errors import NotFound
from civicair.core.settings import Settings
from civicair.readmodel import anonymise, statements
from civicair.readmodel.cells import h3_zone_params, placed, public_cell
from civicair.readmodel.params import (
    STEP,
    Interval,
    QuantityFilter,
    TimeRange,
    ZoneFilter,
    ceil_period,
    floor_period,
    is_h3_cell,
    page_window,
    quantity_info,
)
from civicair.readmodel.publication import qa_cutoff
from civicair.readmodel.render import SeriesJson, SeriesPage, parse_rows, zone_doc
from civicair.readmodel.stored import CHUNK_PERIODS, RENDER_VERSION, chunk_start, stored_rows
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool


def _check_h3_resolution(cell: str, settings: Settings) -> None:
    import h3

    res = h3.get_resolution(cell)
    if res != settings.h3_resolution:
        raise NotFound(f"H3 zones are cells of resolution {settings.h3_resolution}, not {res}")


def eligible_fixed(conn: Connection, cutoff: datetime | None) -> list[Any]:
    """(id, h3_cell, lat, lon) of the devices whose data enter zone series (QA `cutoff`)."""
    return list(conn.execute(statements.eligible_fixed(cutoff)).all())


def zone_device_ids(conn: Connection, settings: Settings, zone_id: str) -> list[int]:
    """Public, reliable fixed devices inside a zone, ascending (as `zone_rollup.device_ids`
    stores them); NotFound for an unknown zone."""
    zone = ZoneFilter(zone_id=zone_id)
    cutoff = qa_cutoff(settings)
    if zone.kind == "h3":
        _check_h3_resolution(zone_id, settings)
        ids, unplaced = conn.execute(statements.H3_ZONE_DEVICES, {**h3_zone_params(zone_id), "qa_cutoff": cutoff}).one()[1:]
        return sorted([*ids, *placed(zone_id, unplaced)])
    known, ids = conn.execute(statements.ADMIN_ZONE_DEVICES, {"z": zone_id, "qa_cutoff": cutoff}).one()
    if not known:
        raise NotFound(f"no zone {zone_id[:40]!r}")
    return list(ids)


def zone_list(conn: Connection, settings: Settings) -> list[dict[str, Any]]:
    """Administrative zones, then the H3 cells holding published devices; `n_devices` counts
    published devices only (consenting, established, fixed, not unreliable)."""
    cutoff = qa_cutoff(settings)
    counts: dict[str, int] = dict(conn.execute(statements.zone_members_counts(cutoff)).all())
    out: list[dict[str, Any]] = [
        {"id": r.id, "name": r.name, "kind": r.kind, "n_devices": int(counts.get(r.id, 0)),
         "properties": r.properties or {}}
        for r in conn.execute(statements.zone_rows())
    ]
    cells: dict[str, int] = {}
    for r in eligible_fixed(conn, cutoff):
        cell = public_cell(r.h3_cell, r.lat, r.lon, settings.h3_resolution)
        if cell:
            cells[cell] = cells.get(cell, 0) + 1
    for cell in sorted(cells):
        out.append({"id": cell, "name": f"H3 cell {cell}", "kind": "h3", "n_devices": cells[cell],
                    "properties": {"resolution": settings.h3_resolution}})
    return out


def zone_geometry(conn: Connection, zone_id: str) -> dict[str, Any] | None:
    if is_h3_cell(zone_id):
        return anonymise.cell_polygon(zone_id)
    geometry: dict[str, Any] | None = conn.execute(statements.zone_geometry(zone_id)).scalar()
    return geometry


def _live_zone_docs(conn: Connection, zone_id: str, ids: list[int], code: int, interval: Interval, k: int,
                    lo: datetime, hi: datetime) -> tuple[list[bytes], int]:
    """Periods starting in [lo, hi) (`page_window` puts lo past the cursor), aggregated now."""
    stmt = statements.zone_aggregates([(zone_id, i) for i in ids], [code], lo, hi, interval, k)
    docs, n_suppressed = [], 0
    for r in conn.execute(stmt.order_by(stmt.selected_columns.period)):
        n_suppressed += int(r.suppressed_hours)
        if r.n_devices:
            docs.append(zone_doc(r, interval))
    return docs, n_suppressed


# The zone series page as steps (a generator), shared by the sync driver (`zone_series_json`:
# exports, CSV, the tests) and the async one (`zone_series_json_async`: the endpoint, without a
# thread hop in the common case). A step is ("sql", statement, params) → its rows, from the raw
# binary cursor, or ("sync", fn) → fn(connection), SQLAlchemy work done in a worker thread.
Step = tuple[Any, ...]


def _zone_page_steps(settings: Settings, zone_id: str, quantity: str | QuantityFilter, time_range: TimeRange,
                     interval: Interval | str, after: datetime | None,
                     limit: int | None) -> Generator[Step, Any, SeriesJson]:
    interval = Interval(interval)
    info = quantity_info(quantity)
    start, end = time_range.resolve(settings.max_range_days)
    k = settings.k_anonymity
    lo, hi, nxt = page_window(start, end, after, limit, interval)
    a = ceil_period(lo, interval)
    params = {"z": zone_id, "k": k, "v": RENDER_VERSION, "q": info.code, "unit": interval.value, "a": a,
              "hi": floor_period(hi, interval), "first": chunk_start(a, interval),
              "size": CHUNK_PERIODS[interval] * STEP[interval], "qa_cutoff": qa_cutoff(settings)}
    statement = statements.ADMIN_ZONE_PAGE
    if is_h3_cell(zone_id):
        _check_h3_resolution(zone_id, settings)
        statement = statements.H3_ZONE_PAGE
        params.update(h3_zone_params(zone_id))
    rows = yield ("sql", statement, params)
    if rows[0][2] and placed(zone_id, rows[0][2]):  # members only Python can place: list, read again
        params["ids"] = yield ("sync", lambda conn: zone_device_ids(conn, settings, zone_id))
        rows = yield ("sql", statements.LISTED_ZONE_PAGE, params)
    known, ids, _, b, pending = rows[0][:5]
    if not known:
        raise NotFound(f"no zone {zone_id[:40]!r}")
    if not ids:
        return SeriesJson([], 0, 0, None)
    segments: list[tuple[datetime, datetime]] = [(lo, hi)]
    stored: list[bytes] = []
    count = suppressed = 0
    if b is not None and b > a and not pending:
        segments = [(lo, a), (b, hi)]  # live before and after the stored span
        stored, count, suppressed = stored_rows([r[5:] for r in rows if r[5] is not None], interval, a, b)
    live: list[tuple[list[bytes], int]] = [([], 0)] * len(segments)
    if any(x < y for x, y in segments):
        live = yield ("sync", lambda conn: [
            _live_zone_docs(conn, zone_id, ids, info.code, interval, k, x, y) if x < y else ([], 0)
            for x, y in segments])
    for docs, n_suppressed in live:
        suppressed += n_suppressed
        count += len(docs)
    docs = live[0][0] + stored + live[1][0] if len(live) == 2 else live[0][0]
    return SeriesJson(docs, count, suppressed, nxt)


def _advance(steps: Generator[Step, Any, SeriesJson], answer: Any) -> Step | SeriesJson:
    """The next step of a page, given the answer to the previous one; the page once done."""
    try:
        return steps.send(answer)
    except StopIteration as done:
        return done.value


def zone_series_json(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                     time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                     after: datetime | None = None, limit: int | None = None) -> SeriesJson:
    """One page of a zone's series, rendered."""
    steps = _zone_page_steps(settings, zone_id, quantity, time_range, interval, after, limit)
    with conn.connection.driver_connection.cursor(binary=True) as cur:  # type: ignore[union-attr]
        step = _advance(steps, None)
        while not isinstance(step, SeriesJson):
            step = _advance(steps, cur.execute(step[1], step[2]).fetchall() if step[0] == "sql" else step[1](conn))
        return step


async def zone_series_json_async(pool: AsyncConnectionPool, run_sync: Callable[[Callable[[Connection], Any]], Awaitable[Any]],
                                 settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                                 time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                                 after: datetime | None = None, limit: int | None = None) -> SeriesJson:
    """`zone_series_json` with its statements on an async psycopg pool (autocommit connections)
    in the event loop, and only the SQLAlchemy work (live periods, H3 listing), when a page has
    any, in a worker thread through `run_sync(fn)` → fn(sync connection)."""
    steps = _zone_page_steps(settings, zone_id, quantity, time_range, interval, after, limit)
    step = _advance(steps, None)
    while not isinstance(step, SeriesJson):
        step = _advance(steps, await (_fetch_async(pool, step[1], step[2]) if step[0] == "sql" else run_sync(step[1])))
    return step


async def _fetch_async(pool: AsyncConnectionPool, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one statement on a pooled connection; once more on a fresh connection when the
    pooled one turns out broken (the server restarted since it was last used: no ping first)."""
    for attempt in (1, 2):
        async with pool.connection() as conn:
            try:
                async with conn.cursor(binary=True) as cur:
                    await cur.execute(statement, params)
                    return await cur.fetchall()
            except psycopg.OperationalError:
                if attempt == 2 or not conn.broken:
                    raise
        await pool.check()  # the others are likely broken too: drop them before the retry
    raise AssertionError("unreachable")


def zone_series_page(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                     time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                     after: datetime | None = None, limit: int | None = None) -> SeriesPage:
    page = zone_series_json(conn, settings, zone_id, quantity, time_range, interval, after, limit)
    return SeriesPage(parse_rows(page.docs), page.suppressed, page.next_after)


def zone_series(conn: Connection, settings: Settings, zone_id: str, quantity: str | QuantityFilter,
                time_range: TimeRange, interval: Interval | str = Interval.HOUR,
                after: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return zone_series_page(conn, settings, zone_id, quantity, time_range, interval, after, limit).results
