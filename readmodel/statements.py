"""Statement builders of the read model: SQLAlchemy Core only, no execution here (the drivers in
`series`, `mobile`, `stations`, `zone_rollup` run them). The privacy rules that live in SQL —
consent, fixed devices only, unreliable devices excluded, k-anonymity of zone-hours — are written
once here (docs/privacy.md).

The zone-series page runs on a raw psycopg cursor (the API's hot path, BENCHMARKS.md "API"): its
statements are built here like the others and compiled once, at import, for the psycopg dialect
(`psycopg_sql`), so the endpoint sends a ready string with its named parameters.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.readmodel.params import Interval
from civicair.readmodel.render import FLAG_BITS
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, BIT

TZ = sa.DateTime(timezone=True)


def const(value: Any) -> sa.BindParameter[Any]:
    """A constant rendered into the SQL text rather than sent as a parameter: the planner then
    sees it (as bind parameters, the cached generic plan misjudged them: 3.4 ms instead of 0.4)."""
    return sa.literal(value, literal_execute=True)


def param(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    """A named parameter of a statement, given at execution."""
    return sa.bindparam(name, None, type_=type_, required=False)


def psycopg_sql(stmt: sa.Executable, names: set[str]) -> str:
    """`stmt` compiled for psycopg (`%(name)s` placeholders); fails unless its parameters are
    exactly `names`, so a stray literal cannot become a parameter nobody sends."""
    compiled = stmt.compile(dialect=postgresql.psycopg.dialect(),  # type: ignore[attr-defined]
                            compile_kwargs={"render_postcompile": True})
    if set(compiled.params) != names:
        raise AssertionError(f"statement parameters {sorted(compiled.params)} are not {sorted(names)}")
    return str(compiled)


# --- devices and the publication rule ----------------------------------------------------------

def _cutoff(cutoff: Any) -> Any:
    return cutoff if isinstance(cutoff, sa.sql.ClauseElement) else sa.literal(cutoff, TZ)


def established(cutoff: Any) -> sa.ColumnElement[bool]:
    """The publication rule (docs/privacy.md#publication), the one every public statement uses:
    a device is established when an operator approved it, or when it is pending, its first
    reading was stored at or before `cutoff` (its QA window is over) and it is not unreliable; a
    withheld device never is. `cutoff`: a statement parameter or a value (`publication.qa_cutoff`;
    None: only approval publishes)."""
    d = tables.devices
    past_qa = sa.and_(d.c.publication == const("pending"), d.c.first_received_at <= _cutoff(cutoff),
                      d.c.status != const("unreliable"))
    return sa.func.coalesce(sa.or_(d.c.publication == const("approved"), past_qa), sa.false())


def public_device() -> sa.ColumnElement[bool]:
    """Without `established`: consent only (what a device must have before anything else)."""
    return tables.devices.c.consent_public.is_(True)


def public_devices(cutoff: Any) -> sa.Select[Any]:
    """Consenting, established devices with their public fields and the quantities they have
    hourly data of. One index probe per (device, quantity), as a LATERAL with LIMIT 1: an EXISTS
    is planned as a semi-join reading every hourly row of the device (1.2 ms a device-year
    instead of 0.02)."""
    d, h, q = tables.devices, tables.hourly, tables.quantities
    probe = (sa.select(sa.literal(1).label("one"))
             .where(h.c.device_id == d.c.id, h.c.quantity == q.c.code).correlate(d, q).limit(1).lateral("probe"))
    quantities = sa.func.array(
        sa.select(q.c.name).select_from(q.join(probe, sa.true())).order_by(q.c.code).scalar_subquery()
    )
    return sa.select(
        d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.h3_cell, d.c.lat, d.c.lon,
        d.c.status, d.c.stars, d.c.first_seen, d.c.last_seen, quantities.label("quantities"),
    ).where(public_device(), established(cutoff))


def published_fixed(cutoff: Any) -> sa.ColumnElement[bool]:
    """Devices whose data enter zone series: consenting, established, fixed, not unreliable."""
    d = tables.devices
    return sa.and_(public_device(), d.c.kind == const("fixed"), d.c.status != const("unreliable"),
                   established(cutoff))


def published_mobile(cutoff: Any) -> sa.ColumnElement[bool]:
    """Devices whose points enter mobile cells and count toward their k: consenting,
    established, mobile, not unreliable."""
    d = tables.devices
    return sa.and_(public_device(), d.c.kind == const("mobile"), d.c.status != const("unreliable"),
                   established(cutoff))


def eligible_fixed(cutoff: Any) -> sa.Select[Any]:
    d = tables.devices
    return sa.select(d.c.id, d.c.h3_cell, d.c.lat, d.c.lon).where(published_fixed(cutoff))


# --- series aggregation -------------------------------------------------------------------------

def period(column: Any, interval: Interval) -> Any:
    if interval == Interval.DAY:
        return sa.func.date_trunc("day", column, "UTC")
    return column


def aggregates(h: Any, where: Any = None) -> list[Any]:
    """Aggregate columns over hourly device-rows `h` (a table or subquery); with `where`, over
    the rows meeting it only. `render.series_row` reads them."""
    valid = h.c.n > 0

    def only(fn: Any, cond: Any = None) -> Any:
        conds = [c for c in (where, cond) if c is not None]
        return fn.filter(sa.and_(*conds)) if conds else fn

    cols = [
        only(sa.func.count(), valid).label("device_hours"),
        sa.func.coalesce(only(sa.func.sum(h.c.n)), 0).label("n_readings"),
        only(sa.func.sum(h.c.sum)).label("s"),
        only(sa.func.sum(h.c.sum_sq)).label("ss"),
        only(sa.func.min(h.c.min)).label("min"),
        only(sa.func.max(h.c.max)).label("max"),
        only(sa.func.avg(h.c.calibrated_mean), valid).label("calibrated"),
        only(sa.func.percentile_cont(0.5).within_group(h.c.mean), valid).label("median"),
        sa.func.coalesce(only(sa.func.sum(h.c.n_flagged)), 0).label("n_flagged"),
    ]
    for name, bit in FLAG_BITS.items():
        cols.append(only(sa.func.count(), h.c.flags_any.op("&")(bit) != 0).label(f"f_{name}"))
    return cols


def hourly_from_readings(device_id: int, code: int, start: datetime, end: datetime) -> Any:
    """Readings of one device aggregated to the shape of the `hourly` table."""
    r = tables.readings
    ok = r.c.flags == 0
    hour = (sa.func.date_trunc("hour", r.c.time, "UTC")).label("hour")
    return (sa.select(
        r.c.device_id, r.c.quantity, hour,
        sa.func.count().filter(ok).label("n"),
        sa.func.coalesce(sa.func.sum(r.c.value).filter(ok), 0.0).label("sum"),
        sa.func.coalesce(sa.func.sum(r.c.value * r.c.value).filter(ok), 0.0).label("sum_sq"),
        sa.func.min(r.c.value).filter(ok).label("min"),
        sa.func.max(r.c.value).filter(ok).label("max"),
        sa.func.avg(r.c.value).filter(ok).label("mean"),
        sa.func.count().filter(sa.not_(ok)).label("n_flagged"),
        sa.func.coalesce(sa.func.bit_or(r.c.flags), 0).label("flags_any"),
        sa.cast(sa.null(), sa.Float).label("calibrated_mean"),
    ).where(r.c.device_id == device_id, r.c.quantity == code, r.c.time >= start, r.c.time < end)
     .group_by(r.c.device_id, r.c.quantity, hour).subquery("readings_hourly"))


def device_series(source: Any, device_id: int, code: int, start: datetime, end: datetime,
                  interval: Interval, after: datetime | None) -> sa.Select[Any]:
    """One device's series over `source` (the `hourly` table or `hourly_from_readings`)."""
    p = period(source.c.hour, interval).label("period")
    stmt = (sa.select(p, *aggregates(source))
            .where(source.c.device_id == device_id, source.c.quantity == code,
                   source.c.hour >= start, source.c.hour < end)
            .group_by(p).order_by(p))
    return stmt.having(p > after) if after is not None else stmt


def device_series_count(source: Any, device_id: int, code: int, start: datetime, end: datetime) -> sa.Select[Any]:
    """The number of hourly rows `device_series` gives over [start, end)."""
    hours = (sa.select(source.c.hour).distinct()
             .where(source.c.device_id == device_id, source.c.quantity == code,
                    source.c.hour >= start, source.c.hour < end).subquery("hours"))
    return sa.select(sa.func.count()).select_from(hours)


def hourly_extent(device_ids: list[int], code: int) -> sa.Select[Any]:
    """The first and the last hour of `hourly` rows of the devices for one quantity: two index
    probes per device (`hourly_series`), not a scan of their rows."""
    h = tables.hourly
    ids = sa.func.unnest(sa.literal(device_ids, ARRAY(sa.Integer))).table_valued("device_id").render_derived("ids")

    def probe(order: Any, name: str) -> Any:
        return (sa.select(h.c.hour).where(h.c.device_id == ids.c.device_id, h.c.quantity == code)
                .order_by(order).limit(1).lateral(name))

    first, last = probe(h.c.hour.asc(), "first"), probe(h.c.hour.desc(), "last")
    return (sa.select(sa.func.min(first.c.hour), sa.func.max(last.c.hour))
            .select_from(ids.join(first, sa.true()).join(last, sa.true())))


def readings_extent(device_id: int, code: int) -> sa.Select[Any]:
    r = tables.readings
    hour = sa.func.date_trunc("hour", r.c.time, "UTC")
    return sa.select(sa.func.min(hour), sa.func.max(hour)).where(r.c.device_id == device_id, r.c.quantity == code)


def py_round(x: Any, digits: int) -> Any:
    """`x` (double precision) rounded exactly as Python's `round(x, digits)` rounds a float, so
    that SQL compares the numbers `render.rounded` publishes: half to even on the exact binary
    value (PostgreSQL's own `round(numeric)` rounds half away from zero, and its float → numeric
    cast keeps 15 digits only). The float is split into its integer part and its fraction, each
    scaled by a power of two that makes it an exact integer (exact for |x| ≥ 2⁻²⁰; below, every
    rounding to ≤ 5 digits is ±0), then rounded in exact numeric arithmetic."""
    num = sa.Numeric
    ax = sa.func.abs(x)
    whole = sa.func.trunc(x)
    frac = x - whole  # exact (Sterbenz)

    def scaled(bits: int) -> Any:
        # a power of two as its exact decimal expansion (Decimal of a float is exact)
        return (sa.cast(sa.cast(frac * sa.literal(float(2 ** bits), sa.Float), sa.BigInteger), num)
                * sa.literal_column(format(Decimal(2.0 ** -bits), "f"), num))

    exact = sa.cast(sa.cast(whole, sa.BigInteger), num) + sa.case(
        (ax >= 1, scaled(52)), (ax >= 2.0 ** -10, scaled(62)), else_=scaled(72))
    t = exact * sa.literal_column(str(10 ** digits), num)
    f = sa.func.floor(t)
    d = t - f
    half = sa.literal_column("0.5", num)  # numeric: a float parameter would round d first
    r = sa.case((d > half, f + 1), (d < half, f), else_=f + sa.func.abs(sa.func.mod(f, 2)))
    unit = "0." + "0" * (digits - 1) + "1" if digits else "1"
    return sa.cast(r * sa.literal_column(unit, num), sa.Float)


# --- zones --------------------------------------------------------------------------------------

def zone_members_counts(cutoff: Any) -> sa.Select[Any]:
    """Published devices per administrative zone (`/v1/zones` n_devices)."""
    d, dz = tables.devices, tables.device_zones
    return (sa.select(dz.c.zone_id, sa.func.count()).join(d, d.c.id == dz.c.device_id)
            .where(published_fixed(cutoff)).group_by(dz.c.zone_id))


def admin_zone_devices() -> sa.Select[Any]:
    """Whether the administrative zone `:z` exists, and its published devices (ascending) at
    `:qa_cutoff`."""
    d, dz, z = tables.devices, tables.device_zones, tables.zones
    members = (sa.select(dz.c.device_id).join(d, d.c.id == dz.c.device_id)
               .where(dz.c.zone_id == param("z", sa.Text), published_fixed(param("qa_cutoff", TZ)))
               .order_by(dz.c.device_id))
    return sa.select(sa.exists().where(z.c.id == param("z", sa.Text)).label("known"),
                     sa.func.array(members.scalar_subquery()).label("ids"))


def _h3_bits() -> sa.ColumnElement[int]:
    """A device's H3 cell as a bigint, when `devices.h3_cell` is a cell id (15 hex digits, mode
    1). CASE first: PostgreSQL does not promise to test the pattern before casting."""
    cell = tables.devices.c.h3_cell
    as_bits = sa.cast(sa.cast(const("x").concat(sa.func.lpad(cell, const(16), const("0"))), BIT(64)), sa.BigInteger)
    return sa.case((cell.regexp_match(const("^8[0-9a-f]{14}$"), flags="i"), as_bits))


def _h3_usable(bits: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The stored cell is at the zone's resolution `:res` or finer."""
    return bits.op(">>")(const(52)).op("&")(const(15)) >= param("res", sa.Integer)


def h3_zone_devices() -> sa.Select[Any]:
    """The published devices of the H3 zone `:cell` (of resolution `:res`, masks `:keep` and
    `:set`, see `cells.h3_zone_params`), found in SQL: a stored cell at the zone's resolution or
    finer is a member when its parent is the zone. `unplaced`: published devices with
    coordinates in the zone's bounding box but no such cell (say the resolution setting became
    finer), as (id, lat, lon) arrays; `cells.placed` snaps them in Python."""
    d = tables.devices
    bits = _h3_bits()
    members = (sa.select(d.c.id)
               .where(published_fixed(param("qa_cutoff", TZ)), _h3_usable(bits),
                      bits.op("&")(param("keep", sa.BigInteger))
                      .op("|")(param("set", sa.BigInteger)) == param("cell", sa.BigInteger))
               .order_by(d.c.id))
    arrays = postgresql.array([sa.func.array_agg(sa.cast(d.c.id, sa.Float)), sa.func.array_agg(d.c.lat),
                               sa.func.array_agg(d.c.lon)])
    unplaced = (sa.select(sa.type_coerce(arrays, ARRAY(sa.Float, dimensions=2)))
                .where(published_fixed(param("qa_cutoff", TZ)), sa.not_(sa.func.coalesce(_h3_usable(bits), sa.false())),
                       d.c.lat.between(param("lat_lo", sa.Float), param("lat_hi", sa.Float)),
                       d.c.lon.between(param("lon_lo", sa.Float), param("lon_hi", sa.Float))))
    return sa.select(sa.true().label("known"), sa.func.array(members.scalar_subquery()).label("ids"),
                     unplaced.scalar_subquery().label("unplaced"))


def listed_zone_devices() -> sa.Select[Any]:
    """A zone whose devices the caller lists in `:ids` (some only Python could place)."""
    return sa.select(sa.true().label("known"), param("ids", ARRAY(sa.Integer)).label("ids"),
                     sa.null().cast(ARRAY(sa.Float)).label("unplaced"))


def zone_page(members: sa.Select[Any]) -> sa.Select[Any]:
    """The zone-series page in one statement, so a refresh committing meanwhile cannot pair one
    version's validity with another's rows. From `members` (does the zone exist, its published
    devices, and `unplaced`): the materialised part of the page (`b`, the end of the span the
    stored rows answer — the page end `:hi` or the watermark in whole periods — when they were
    built from these devices, this `:k` and renderer `:v`; and whether a write to `hourly` in it
    still waits for the refresh), then the stored chunks of [`:a`, b) when they hold, one per
    row (the state repeated; NULLs if none). Offsets are sent only for the chunks at the edges
    of the span. Parameters: z, q, unit, k, v, a, hi, first, size (and those of `members`)."""
    zr, zs, zi = tables.zone_rollup, tables.zone_series, tables.zone_invalidations
    z, q, unit = param("z", sa.Text), param("q", sa.SmallInteger), param("unit", sa.Text)
    a = param("a", TZ)
    m = members.cte("m")
    w = (sa.select(sa.func.least(param("hi", TZ), sa.func.date_trunc(unit, zr.c.watermark, const("UTC")))
                   .label("b"))
         .where(zr.c.zone_id == z, zr.c.device_ids == m.c.ids, zr.c.k == param("k", sa.Integer),
                zr.c.version == param("v", sa.Integer))
         .lateral("w"))
    pending = sa.exists().where(zi.c.quantity == q, zi.c.hour >= a, zi.c.hour < w.c.b)
    s = (sa.select(m.c.known, m.c.ids, m.c.unplaced, w.c.b, pending.label("pending"))
         .select_from(m.outerjoin(w, sa.true())).cte("s"))
    edge = sa.or_(zs.c.chunk < a, zs.c.chunk + param("size", sa.Interval) > s.c.b)
    c = (sa.select(zs, edge.label("edge"))
         .where(s.c.b > a, sa.not_(s.c.pending), zs.c.zone_id == z, zs.c.quantity == q, zs.c.interval == unit,
                zs.c.chunk >= param("first", TZ), zs.c.chunk < s.c.b)
         .lateral("c"))
    return (sa.select(s.c.known, s.c.ids, s.c.unplaced, s.c.b, s.c.pending, c.c.chunk, c.c.n, c.c.n_suppressed,
                      c.c.docs, c.c.raw_size, sa.case((c.c.edge, c.c.idx)), sa.case((c.c.edge, c.c.ends)),
                      sa.case((c.c.edge, c.c.suppressed)))
            .select_from(s.outerjoin(c, sa.true()))
            .order_by(c.c.chunk))


_PAGE = {"z", "q", "unit", "k", "v", "a", "hi", "first", "size", "qa_cutoff"}
ADMIN_ZONE_DEVICES = admin_zone_devices()
H3_ZONE_DEVICES = h3_zone_devices()
ADMIN_ZONE_PAGE = psycopg_sql(zone_page(ADMIN_ZONE_DEVICES.add_columns(sa.null().cast(ARRAY(sa.Float)).label("unplaced"))),
                              _PAGE)
H3_ZONE_PAGE = psycopg_sql(zone_page(H3_ZONE_DEVICES),
                           _PAGE | {"res", "cell", "keep", "set", "lat_lo", "lat_hi", "lon_lo", "lon_hi"})
LISTED_ZONE_PAGE = psycopg_sql(zone_page(listed_zone_devices()), _PAGE - {"qa_cutoff"} | {"ids"})


def _members(pairs: list[tuple[str, int]]) -> Any:
    """(zone_id, device_id) pairs as a relation (two zipped unnest() calls)."""
    return sa.select(
        sa.func.unnest(sa.literal([z for z, _ in pairs], ARRAY(sa.Text))).label("zone_id"),
        sa.func.unnest(sa.literal([d for _, d in pairs], ARRAY(sa.Integer))).label("device_id"),
    ).subquery("m")


def zone_hour_rows(pairs: list[tuple[str, int]], codes: list[int], start: datetime, end: datetime) -> Any:
    """Hourly device-rows of the zones in `pairs` over [start, end), each with `hour_devices`:
    the distinct devices reporting in that zone-hour, which k-anonymity compares with k (a
    zone-hour below k is suppressed: docs/privacy.md#zone-series)."""
    h, m = tables.hourly, _members(pairs)
    hour_devices = sa.func.count().filter(h.c.n > 0).over(partition_by=(m.c.zone_id, h.c.quantity, h.c.hour))
    return (sa.select(m.c.zone_id, h, hour_devices.label("hour_devices"))
            .join_from(h, m, m.c.device_id == h.c.device_id)
            .where(h.c.quantity.in_(codes), h.c.hour >= start, h.c.hour < end).subquery("b"))


def zone_hour_values(pairs: list[tuple[str, int]], code: int, start: datetime, end: datetime,
                     k: int) -> sa.Select[Any]:
    """The published hourly value of every zone in `pairs` (the map): per (zone_id, hour) with
    at least k reporting devices, the calibrated mean when any device is calibrated (`calibrated`)
    and the raw mean (`s` / `n`), as `aggregates` gives them to the series rows."""
    base = zone_hour_rows(pairs, [code], start, end)
    valid = base.c.n > 0
    return (sa.select(base.c.zone_id, base.c.hour, sa.func.avg(base.c.calibrated_mean).filter(valid).label("calibrated"),
                      sa.func.sum(base.c.sum).label("s"), sa.func.sum(base.c.n).label("n"))
            .where(base.c.hour_devices >= k, valid)
            .group_by(base.c.zone_id, base.c.hour))


def published_zone_members(cutoff: Any) -> sa.Select[Any]:
    """(zone_id, device_id) of the published devices of every administrative zone (QA `cutoff`)."""
    d, dz = tables.devices, tables.device_zones
    return (sa.select(dz.c.zone_id, dz.c.device_id).join(d, d.c.id == dz.c.device_id)
            .where(published_fixed(cutoff)).order_by(dz.c.zone_id, dz.c.device_id))


def map_snapshot(code: int, scale: str) -> sa.Select[Any]:
    s = tables.map_snapshots
    return sa.select(s).where(s.c.quantity == code, s.c.scale == scale)


def zone_aggregates(pairs: list[tuple[str, int]], codes: list[int], start: datetime, end: datetime,
                    interval: Interval, k: int) -> sa.Select[Any]:
    """The zone series of every zone in `pairs` over [start, end), per (zone_id, quantity,
    period). A zone-hour with fewer than k distinct reporting devices is left out of every
    aggregate and counted in `suppressed_hours`; a period whose hours were all suppressed has
    n_devices = 0 (and is not published). Used by the live path (one zone) and by the
    materialisation (`zone_rollup`, all zones), so both publish the same rows."""
    base = zone_hour_rows(pairs, codes, start, end)
    keys = (base.c.zone_id, base.c.quantity, period(base.c.hour, interval).label("period"))
    kept = base.c.hour_devices >= k
    n_devices = sa.func.count(sa.distinct(base.c.device_id)).filter(kept, base.c.n > 0).label("n_devices")
    suppressed = (sa.func.count(sa.distinct(base.c.hour))
                  .filter(base.c.hour_devices < k, base.c.hour_devices > 0).label("suppressed_hours"))
    return (sa.select(*keys, n_devices, suppressed, *aggregates(base, where=kept))
            .where(base.c.hour_devices > 0).group_by(*keys))


def zone_rows() -> sa.Select[Any]:
    z = tables.zones
    return sa.select(z.c.id, z.c.name, z.c.kind, z.c.properties).order_by(z.c.id)


def zone_geometry(zone_id: str) -> sa.Select[Any]:
    return sa.select(tables.zones.c.geometry).where(tables.zones.c.id == zone_id)


# --- mobile and reference stations --------------------------------------------------------------

def streaming_plan() -> sa.Select[Any]:
    """Planner settings for the rest of the transaction (`set_config(…, true)`; the driver undoes
    them with a savepoint) under which `mobile_cells_page` runs as an ordered index-only scan with
    streaming aggregations that stop at the page's limit. Without them PostgreSQL misjudges how
    many cell-hours reach k (the HAVING), hashes the whole range and sorts it: 10-20x slower
    (BENCHMARKS.md "Mobile cells")."""
    return sa.select(*[sa.func.set_config(const(name), const(value), sa.true())
                       for name, value in (("enable_hashagg", "off"), ("enable_sort", "off"),
                                           ("max_parallel_workers_per_gather", "0"))])


def mobile_cells_page(cutoff: Any, k: int, code: int, lo: datetime, hi: datetime,
                      after: tuple[datetime, int] | None, limit: int | None) -> sa.Select[Any]:
    """Public mobile cell-hours of quantity `code`, hours starting in [lo, hi) (whole hours: the
    caller aligns them), from the mobile rollup: each (hour, cell) summed over the trips of the
    published mobile devices, kept when at least `k` distinct devices are behind it; in (hour,
    cell) order after `after`, at most `limit` (+1, to tell whether a next page exists). Runs as
    an ordered index-only scan with two streaming aggregations under `streaming_plan`."""
    m, d = tables.mobile_cell_hours, tables.devices
    members = sa.select(d.c.id).where(published_mobile(cutoff))
    conds = [m.c.quantity == code, m.c.hour >= lo, m.c.hour < hi, m.c.device_id.in_(members)]
    if after is not None:
        conds.append(sa.tuple_(m.c.hour, m.c.cell) > sa.tuple_(sa.literal(after[0], TZ), sa.literal(after[1])))
    per_device = (sa.select(m.c.hour, m.c.cell, m.c.device_id, sa.func.sum(m.c.n).label("n"),
                            sa.func.sum(m.c.sum).label("s"), sa.func.min(m.c.min).label("mn"),
                            sa.func.max(m.c.max).label("mx"))
                  .where(*conds).group_by(m.c.hour, m.c.cell, m.c.device_id).subquery("per_device"))
    p = per_device.c
    n_devices = sa.func.count().label("n_devices")
    stmt = (sa.select(p.hour, p.cell, n_devices, sa.func.sum(p.n).label("n"), sa.func.sum(p.s).label("s"),
                      sa.func.min(p.mn).label("min"), sa.func.max(p.mx).label("max"))
            .group_by(p.hour, p.cell).having(sa.func.count() >= k).order_by(p.hour, p.cell))
    return stmt.limit(limit + 1) if limit is not None else stmt


def stations() -> sa.Select[Any]:
    s = tables.reference_stations
    return sa.select(s).order_by(s.c.code)


def station_exists(code: str) -> sa.Select[Any]:
    s = tables.reference_stations
    return sa.select(s.c.code).where(s.c.code == code)


def station_series(code: str, quantity: int, start: datetime, end: datetime, interval: Interval,
                   after: datetime | None, limit: int | None) -> sa.Select[Any]:
    """A station's valid measurements (validity unknown or > 0) per period."""
    rr = tables.reference_readings
    valid = sa.or_(rr.c.validity.is_(None), rr.c.validity > 0)
    p = period(rr.c.time, interval).label("period")
    stmt = (sa.select(p, sa.func.count().label("n"), sa.func.avg(rr.c.value).label("mean"),
                      sa.func.min(rr.c.value).label("min"), sa.func.max(rr.c.value).label("max"),
                      sa.func.percentile_cont(0.5).within_group(rr.c.value).label("median"),
                      sa.func.stddev_samp(rr.c.value).label("sd"))
            .where(rr.c.station_code == code, rr.c.quantity == quantity, rr.c.time >= start,
                   rr.c.time < end, valid)
            .group_by(p).order_by(p))
    if after is not None:
        stmt = stmt.having(p > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return stmt


# --- the published hourly rows as a relation (SensorThings filters on results) ------------------

def _hour_values(sub: Any, calibrated: Any, raw: Any, n_readings: Any, n_devices: Any, observed: Any,
                 expected: Any) -> sa.Select[Any]:
    """The published columns of hourly rows `sub` (aggregates with `period`), computed as
    `render.series_row` computes them (values rounded by `py_round`), for SQL to filter on."""
    cal = py_round(calibrated, 3)
    value = sa.func.coalesce(cal, py_round(raw, 3)) if raw is not None else calibrated
    percent = py_round(sa.cast(100.0 * observed, sa.Float) / sa.func.nullif(expected, 0), 1)
    return sa.select(sub.c.period.label("hour"), value.label("value"), cal.isnot(None).label("calibrated"),
                     sa.cast(n_readings, sa.Integer).label("n_readings"),
                     sa.cast(n_devices, sa.Integer).label("n_devices"),
                     sa.cast(observed, sa.Integer).label("observed_count"),
                     sa.cast(expected, sa.Integer).label("expected_count"), percent.label("percent_complete"))


def _raw_mean(sub: Any) -> Any:
    n = sub.c.n_readings
    return sa.case((n > 0, sub.c.s / sa.cast(n, sa.Float)))


def zone_published_hours(pairs: list[tuple[str, int]], code: int, start: datetime, end: datetime, k: int) -> sa.Select[Any]:
    """A zone's published hours over [start, end) (k-suppressed hours left out), from the live
    aggregation (`zone_aggregates`), as the columns `_hour_values` names."""
    sub = zone_aggregates(pairs, [code], start, end, Interval.HOUR, k).subquery("za")
    return (_hour_values(sub, sub.c.calibrated, _raw_mean(sub), sub.c.n_readings, sub.c.n_devices,
                         sub.c.device_hours, sub.c.n_devices)
            .where(sub.c.n_devices > 0))


def device_published_hours(device_id: int, code: int, start: datetime, end: datetime) -> sa.Select[Any]:
    sub = device_series(tables.hourly, device_id, code, start, end, Interval.HOUR, None).subquery("ds")
    return _hour_values(sub, sub.c.calibrated, _raw_mean(sub), sub.c.n_readings, sa.null(), sub.c.device_hours,
                        sa.literal(1))


def station_published_hours(code: str, quantity: int, start: datetime, end: datetime) -> sa.Select[Any]:
    sub = station_series(code, quantity, start, end, Interval.HOUR, None, None).subquery("ss")
    cols = _hour_values(sub, sa.cast(sa.null(), sa.Float), None, sub.c.n, sa.null(), sub.c.n, sa.literal(1))
    # station values are published unrounded and never calibrated by civicair
    return cols.with_only_columns(*[sub.c.mean.label("value") if c.name == "value" else
                                    (sa.false().label("calibrated") if c.name == "calibrated" else c)
                                    for c in cols.selected_columns])


def station_extent(code: str, quantity: int) -> sa.Select[Any]:
    """The first and last hour of a station's valid measurements."""
    rr = tables.reference_readings
    valid = sa.or_(rr.c.validity.is_(None), rr.c.validity > 0)
    return sa.select(sa.func.min(rr.c.time), sa.func.max(rr.c.time)).where(
        rr.c.station_code == code, rr.c.quantity == quantity, valid)


def zone_geometries() -> sa.Select[Any]:
    z = tables.zones
    return sa.select(z.c.id, z.c.geometry)
