"""All SQL of the ingest package. Repositories never commit: the writer owns one transaction
per batch; the rollup rebuild and retention jobs own theirs.

The hot path uses psycopg directly (COPY into session-local staging tables, then one
`INSERT … ON CONFLICT DO NOTHING … RETURNING` feeding the hourly rollup in the same statement).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.domain import RefScheme
from civicair.core.security import ref_hash
from psycopg import sql
from sqlalchemy.engine import Connection

REF_COLUMN = {
    RefScheme.CIVICAIR: "uid",
    RefScheme.DEV_EUI: "dev_eui",
    RefScheme.TTS_ID: "tts_device_id",
    RefScheme.CHIP_ID: "chip_id",
}

READING_COLUMNS = ("device_id", "time", "quantity", "value", "flags", "lat", "lon", "received_at")
READING_TYPES = ("int4", "timestamptz", "int2", "float8", "int2", "float8", "float8", "timestamptz")
UPLINK_COLUMNS = ("device_id", "time", "route", "received_at", "f_cnt", "f_port", "rssi", "snr",
                  "gateway_count", "ns_time", "dedup_id", "battery_v", "payload")
UPLINK_TYPES = ("int4", "timestamptz", "text", "timestamptz", "int8", "int2", "float8", "float8",
                "int2", "timestamptz", "text", "float8", "bytea")
# staged only: for a broker re-delivery or a retained copy of a message without a time of its
# own, the earliest time of a stored uplink with the same payload that makes it a duplicate
UPLINK_STAGE_COLUMNS = (*UPLINK_COLUMNS, "recheck_since")
UPLINK_STAGE_TYPES = (*UPLINK_TYPES, "timestamptz")


def _copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))


_COPY_UPLINKS = _copy_statement("uplinks_stage", UPLINK_STAGE_COLUMNS)
_COPY_READINGS = _copy_statement("readings_stage", READING_COLUMNS)

_STAGE_DDL = (
    "create temp table if not exists readings_stage "
    "(like readings including defaults) on commit delete rows",
    "create temp table if not exists uplinks_stage "
    "(like uplinks including defaults, recheck_since timestamptz) on commit delete rows",
)

# New readings only (RETURNING skips the conflicting ones) feed the rollup in the same
# statement, so re-delivered and duplicate data never count twice. Flagged values count in
# n_flagged/flags_any only. Rows are ordered to keep lock order stable between processes.
_INSERT_READINGS_AND_ROLLUP = """
with ins as (
    insert into readings (device_id, time, quantity, value, flags, lat, lon, received_at)
    select device_id, time, quantity, value, flags, lat, lon, received_at from readings_stage
    on conflict do nothing
    returning device_id, quantity, time, value, flags
), agg as (
    select device_id, quantity, date_trunc('hour', time, 'UTC') as hour,
           count(*) filter (where flags = 0) as n,
           coalesce(sum(value) filter (where flags = 0), 0) as s,
           coalesce(sum(value * value) filter (where flags = 0), 0) as s2,
           min(value) filter (where flags = 0) as mn,
           max(value) filter (where flags = 0) as mx,
           count(*) filter (where flags <> 0) as nf,
           coalesce(bit_or(flags), 0) as fa
    from ins group by 1, 2, 3
), roll as (
    insert into hourly as h (device_id, quantity, hour, n, sum, sum_sq, min, max, mean,
                             n_flagged, flags_any, updated_at)
    select device_id, quantity, hour, n, s, s2, mn, mx, case when n > 0 then s / n end,
           nf, fa, now()
    from agg order by device_id, quantity, hour
    on conflict (device_id, quantity, hour) do update set
        n = h.n + excluded.n,
        sum = h.sum + excluded.sum,
        sum_sq = h.sum_sq + excluded.sum_sq,
        min = least(h.min, excluded.min),
        max = greatest(h.max, excluded.max),
        mean = case when h.n + excluded.n > 0
                    then (h.sum + excluded.sum) / (h.n + excluded.n) end,
        n_flagged = h.n_flagged + excluded.n_flagged,
        flags_any = h.flags_any | excluded.flags_any,
        updated_at = now()
    returning 1
)
select device_id, time, count(*) from ins group by 1, 2
"""

# Each duplicate test is a per-row index probe, guarded by the row's own key: `offset 0` keeps
# PostgreSQL from turning the EXISTS into an anti-join, which hashed the whole `uplinks` table
# on every batch (3M uplinks: 641 ms per batch of 2,000 instead of ~100 ms; it grows with the
# table). The network server's deduplication id decides when the row has one; the frame counter
# only without it, compared on network-server time (docs/formats.md#duplicates).
_INSERT_UPLINKS = """
insert into uplinks (device_id, time, route, received_at, f_cnt, f_port, rssi, snr,
                     gateway_count, ns_time, dedup_id, battery_v, payload)
select s.device_id, s.time, s.route, s.received_at, s.f_cnt, s.f_port, s.rssi, s.snr,
       s.gateway_count, s.ns_time, s.dedup_id, s.battery_v, s.payload
from uplinks_stage s
where not (s.dedup_id is not null and exists (
    select 1 from uplinks u where u.dedup_id = s.dedup_id offset 0))
  and not (s.dedup_id is null and s.f_cnt is not null and exists (
    select 1 from uplinks u
    where u.device_id = s.device_id and u.f_cnt = s.f_cnt
      and coalesce(u.ns_time, u.time) > coalesce(s.ns_time, s.time) - interval '10 minutes'
      and coalesce(u.ns_time, u.time) < coalesce(s.ns_time, s.time) + interval '10 minutes' offset 0))
  and not (s.recheck_since is not null and exists (
    select 1 from uplinks u
    where u.device_id = s.device_id and u.payload = s.payload
      and u.time >= s.recheck_since and u.time < s.time offset 0))
on conflict do nothing
returning device_id, time
"""


_STAGED: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()  # connections set up (committed)


def ensure_staging(conn: psycopg.Connection) -> bool:
    """Session-local staging tables (emptied at each commit) and no JIT for the session: the
    batch statements are estimated costly enough to be compiled, which took longer (~90 ms) than
    running them. Done once per connection — three round trips less per batch, which counts for
    the small transactions of the HTTP push group commit; returns True when it was done now:
    the caller calls `staged(conn)` once that transaction committed (a rollback undoes it)."""
    if conn in _STAGED:
        return False
    with conn.cursor() as cur:
        cur.execute("set jit = off")
        for ddl in _STAGE_DDL:
            cur.execute(ddl)
    return True


def staged(conn: psycopg.Connection) -> None:
    _STAGED.add(conn)


def resolve_devices(
    conn: psycopg.Connection, refs: Iterable[tuple[RefScheme, str]]
) -> dict[tuple[RefScheme, str], tuple[int, bool]]:
    """(scheme, value) → (device id, is mobile) for the known devices among `refs`."""
    wanted: dict[RefScheme, set[str]] = {}
    for scheme, value in refs:
        wanted.setdefault(scheme, set()).add(value)
    found: dict[tuple[RefScheme, str], tuple[int, bool]] = {}
    for scheme, values in wanted.items():
        column = REF_COLUMN[scheme]  # from a fixed map, never from input
        cur = conn.execute(
            sql.SQL("select {c}, id, kind = 'mobile' from devices where {c} = any(%s)").format(c=sql.Identifier(column)),
            (list(values),),
        )
        for value, device_id, mobile in cur.fetchall():
            found[(scheme, value)] = (device_id, bool(mobile))
    return found


def insert_uplinks(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> set[tuple[int, datetime]]:
    """Stage and insert uplink rows (`UPLINK_STAGE_COLUMNS`); returns the (device_id, time) of
    those that were new: not a LoRaWAN duplicate by deduplication id, or (without one) by device
    + fCnt within 10 minutes of network-server time, or by key; nor, for a row with a
    `recheck_since`, a copy of a payload the device's uplinks since then hold."""
    with conn.cursor() as cur:
        with cur.copy(_COPY_UPLINKS) as copy:
            copy.set_types(UPLINK_STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(_INSERT_UPLINKS)
        return {(r[0], r[1]) for r in cur.fetchall()}


def insert_readings(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> dict[tuple[int, datetime], int]:
    """COPY into staging, insert the new ones and fold exactly those into `hourly`; returns how
    many readings were new per (device_id, time)."""
    with conn.cursor() as cur:
        # binary COPY: ~6x cheaper per row on the client than text (profiled, BENCHMARKS.md)
        with cur.copy(_COPY_READINGS) as copy:
            copy.set_types(READING_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(_INSERT_READINGS_AND_ROLLUP)
        return {(r[0], r[1]): int(r[2]) for r in cur.fetchall()}


def _insert_rows(conn: psycopg.Connection, table: str, columns: Sequence[str],
                 rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("insert into {} ({}) values ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns))), rows)


def insert_dead_letters(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (received_at, source, topic, payload, error, device_id, ref_scheme, ref_value):
    `device_id` the authenticated device (token-authenticated HTTP pushes), `ref_scheme`/`ref_value`
    the device the message names as far as known (quotas, replay, erasure)."""
    _insert_rows(conn, "dead_letters", ("received_at", "source", "topic", "payload", "error", "device_id",
                                        "ref_scheme", "ref_value"), rows)


def count_blocked(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]], key: str) -> list[tuple[Any, ...]]:
    """Quarantine rows (`insert_quarantine`'s) whose device reference is a blocked hardware id
    (an erased device's) are counted on their block entry; returns the others."""
    hashes = [ref_hash(key, row[3], row[4]) for row in rows]
    cur = conn.execute(
        "update blocked_refs b set messages = b.messages + v.n, last_message_at = greatest(b.last_message_at, v.t) "
        "from (select h, count(*) as n, max(t) as t from unnest(%s::text[], %s::timestamptz[]) as u(h, t) "
        "group by h) v where b.ref_hash = v.h returning b.ref_hash",
        (hashes, [row[0] for row in rows]))
    blocked = {r[0] for r in cur.fetchall()}
    return [row for row, h in zip(rows, hashes, strict=True) if h not in blocked]


def insert_quarantine(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (received_at, source, topic, ref_scheme, ref_value, payload)."""
    _insert_rows(conn, "quarantine", ("received_at", "source", "topic", "ref_scheme", "ref_value", "payload"), rows)


def insert_battery_reports(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """rows: (device_id, time, received_at, level_pct, external_power, margin_db); a repeated
    report (same device and time) is kept once. Returns how many were new."""
    with conn.cursor() as cur:
        cur.executemany("insert into battery_reports (device_id, time, received_at, level_pct, external_power, "
                        "margin_db) values (%s, %s, %s, %s, %s, %s) on conflict do nothing", rows, returning=False)
        return max(cur.rowcount, 0)


_KEPT_TABLES = {"dead_letters", "quarantine"}


def kept_usage(conn: psycopg.Connection, table: str, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(rows, payload bytes) already kept in `table` per (ref_scheme, ref_value); ('', '') is the
    bucket of dead letters that name no registered device."""
    assert table in _KEPT_TABLES  # a fixed name, never input
    out: dict[tuple[str, str], tuple[int, int]] = {}
    named = [k for k in keys if k != ("", "")]
    with conn.cursor() as cur:
        if named:
            cur.execute(sql.SQL("select ref_scheme, ref_value, count(*), coalesce(sum(octet_length(payload)), 0) "
                                "from {} where (ref_scheme, ref_value) in "
                                "(select * from unnest(%s::text[], %s::text[])) group by 1, 2").format(sql.Identifier(table)),
                        ([k[0] for k in named], [k[1] for k in named]))
            out.update({(r[0], r[1]): (int(r[2]), int(r[3])) for r in cur.fetchall()})
        if ("", "") in keys:
            cur.execute(sql.SQL("select count(*), coalesce(sum(octet_length(payload)), 0) from {} "
                                "where ref_scheme is null").format(sql.Identifier(table)))
            n, size = cur.fetchone() or (0, 0)
            out[("", "")] = (int(n), int(size))
    return out


def count_overflow(conn: psycopg.Connection, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (ref_scheme, ref_value, refused, refused_bytes, first_at, last_at, last_error)."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into kept_overflow as k (kind, ref_scheme, ref_value, refused, refused_bytes, first_at, "
            "last_at, last_error) values (%s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (kind, ref_scheme, ref_value) do update set refused = k.refused + excluded.refused, "
            "refused_bytes = k.refused_bytes + excluded.refused_bytes, "
            "last_at = greatest(k.last_at, excluded.last_at), last_error = excluded.last_error",
            [(table, *r) for r in rows])


def touch_devices(conn: psycopg.Connection, seen: dict[int, tuple[datetime, datetime, datetime]]) -> None:
    """seen: device id → (earliest, latest reading time, earliest arrival) of this batch. First
    seen is a minimum and last seen a maximum over every batch; `first_received_at` (the start of
    the publication QA window) is the arrival time of the first stored batch."""
    if seen:
        ids = sorted(seen)
        conn.execute(
            "update devices d set last_seen = greatest(d.last_seen, v.last), "
            "first_seen = least(d.first_seen, v.first), "
            "first_received_at = coalesce(d.first_received_at, v.arrived) "
            "from unnest(%s::int[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
            "as v(id, first, last, arrived) where d.id = v.id",
            (ids, [seen[i][0] for i in ids], [seen[i][1] for i in ids], [seen[i][2] for i in ids]),
        )


# --- rollup rebuild and retention (SQLAlchemy Core, own transactions by the caller) ----------

def rebuild_hourly(conn: Connection, since: datetime, until: datetime | None = None) -> int:
    """Recompute `hourly` from raw readings for hours >= since (< until); keeps
    `calibrated_mean`. Hours whose raw readings were pruned by retention are left as they are.
    Returns the number of hourly rows written."""
    r = tables.readings
    hour = sa.func.date_trunc("hour", r.c.time, "UTC").label("hour")
    ok = r.c.flags == 0
    n = sa.func.count().filter(ok)
    s = sa.func.coalesce(sa.func.sum(r.c.value).filter(ok), 0.0)
    cond = r.c.time >= since
    if until is not None:
        cond = sa.and_(cond, r.c.time < until)
    select = (
        sa.select(
            r.c.device_id, r.c.quantity, hour, n.label("n"), s.label("sum"),
            sa.func.coalesce(sa.func.sum(r.c.value * r.c.value).filter(ok), 0.0).label("sum_sq"),
            sa.func.min(r.c.value).filter(ok).label("min"),
            sa.func.max(r.c.value).filter(ok).label("max"),
            sa.case((n > 0, s / n), else_=None).label("mean"),
            sa.func.count().filter(r.c.flags != 0).label("n_flagged"),
            sa.func.coalesce(sa.func.bit_or(r.c.flags), 0).label("flags_any"),
            sa.func.now().label("updated_at"),
        )
        .where(cond)
        .group_by(r.c.device_id, r.c.quantity, hour)
    )
    from sqlalchemy.dialects.postgresql import insert

    h = tables.hourly
    cols = ["device_id", "quantity", "hour", "n", "sum", "sum_sq", "min", "max", "mean",
            "n_flagged", "flags_any", "updated_at"]
    stmt = insert(h).from_select(cols, select)
    stmt = stmt.on_conflict_do_update(
        index_elements=[h.c.device_id, h.c.quantity, h.c.hour],
        set_={c: stmt.excluded[c] for c in cols[3:]},
    )
    return len(conn.execute(stmt.returning(h.c.hour)).all())


def timescaledb_installed(conn: Connection) -> bool:
    return bool(conn.execute(
        sa.text("select 1 from pg_extension where extname = 'timescaledb'")).scalar())


def readings_is_hypertable(conn: Connection) -> bool:
    return bool(conn.execute(sa.text(
        "select 1 from timescaledb_information.hypertables where hypertable_name = 'readings'"
    )).scalar())


def set_timescale_retention(conn: Connection, days: int) -> None:
    """The hypertable's retention policy, replaced so a changed setting takes effect."""
    conn.execute(sa.text("select remove_retention_policy('readings', if_exists => true)"))
    conn.execute(sa.text("select add_retention_policy('readings', make_interval(days => :d))"), {"d": days})


def delete_readings_before(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Delete at most `limit` raw readings older than `cutoff`; returns how many."""
    r = tables.readings
    victims = sa.select(r.c.device_id, r.c.time, r.c.quantity).where(r.c.time < cutoff).limit(limit)
    stmt = sa.delete(r).where(
        sa.tuple_(r.c.device_id, r.c.time, r.c.quantity).in_(victims))
    return conn.execute(stmt).rowcount


def delete_battery_reports_before(conn: Connection, cutoff: datetime, limit: int) -> int:
    b = tables.battery_reports
    victims = sa.select(b.c.device_id, b.c.time).where(b.c.time < cutoff).limit(limit)
    return conn.execute(sa.delete(b).where(sa.tuple_(b.c.device_id, b.c.time).in_(victims))).rowcount


def delete_uplinks_before(conn: Connection, cutoff: datetime, limit: int) -> int:
    u = tables.uplinks
    victims = sa.select(u.c.device_id, u.c.time).where(u.c.time < cutoff).limit(limit)
    stmt = sa.delete(u).where(sa.tuple_(u.c.device_id, u.c.time).in_(victims))
    return conn.execute(stmt).rowcount


def delete_kept_before(conn: Connection, table: sa.Table, cutoff: datetime, limit: int) -> int:
    """Delete at most `limit` dead letters or quarantine entries received before `cutoff`."""
    victims = sa.select(table.c.id).where(table.c.received_at < cutoff).order_by(table.c.id).limit(limit)
    return conn.execute(sa.delete(table).where(table.c.id.in_(victims))).rowcount


def delete_overflow_before(conn: Connection, cutoff: datetime) -> int:
    """Overflow counts whose last refused message is older than `cutoff`."""
    o = tables.kept_overflow
    return conn.execute(sa.delete(o).where(o.c.last_at < cutoff)).rowcount
