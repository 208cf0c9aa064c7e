"""All SQL of the calibration package (SQLAlchemy Core statement builders, then the functions that
execute them; bulk writes through COPY into a staging table). Repositories never commit: the
caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from civicair.calibration.importers import ReferenceRow, StationRow
from civicair.core import tables
from psycopg import sql
from sqlalchemy.dialects.postgresql import JSONB, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

CLOCK_BIT = 2  # core.domain.Flag.CLOCK
RUN_LOCK = 0x63616C69  # advisory lock of a calibration run ("cali"): one run at a time over all processes
_stage = sa.MetaData()
flag_stage = sa.Table(
    "calibration_flag_stage", _stage,
    sa.Column("device_id", sa.Integer), sa.Column("quantity", sa.SmallInteger), sa.Column("flag", sa.Text),
    sa.Column("scope", sa.Text), sa.Column("period_start", tables.TZ), sa.Column("period_end", tables.TZ),
    sa.Column("evidence", JSONB), prefixes=["temporary"], postgresql_on_commit="drop")
mean_stage = sa.Table(
    "calibration_mean_stage", _stage,
    sa.Column("device_id", sa.Integer), sa.Column("quantity", sa.SmallInteger), sa.Column("hour", tables.TZ),
    sa.Column("calibrated_mean", sa.Float), prefixes=["temporary"], postgresql_on_commit="drop")


# --- statement builders: reads ----------------------------------------------------------------
def fixed_devices_stmt(uid: str | None = None) -> sa.Select[Any]:
    d = tables.devices
    q = sa.select(d.c.id, d.c.uid, d.c.pseudonym, d.c.lat, d.c.lon, d.c.sensor_models, d.c.status, d.c.stars) \
        .where(d.c.kind == "fixed").order_by(d.c.id)
    return q.where(d.c.uid == uid) if uid is not None else q


def stations_stmt() -> sa.Select[Any]:
    t = tables.reference_stations
    return sa.select(t).order_by(t.c.code)


def reference_stmt(codes: Sequence[str], quantities: Sequence[int], start: datetime, end: datetime) -> sa.Select[Any]:
    t = tables.reference_readings
    return (sa.select(t.c.station_code, t.c.quantity, t.c.time, t.c.value)
            .where(t.c.station_code.in_(list(codes)), t.c.quantity.in_(list(quantities)), t.c.time >= start,
                   t.c.time < end))


def hourly_arrays_stmt(device_ids: Sequence[int], quantities: Sequence[int], start: datetime,
                       end: datetime) -> sa.Select[Any]:
    """Per (device, quantity): the window's rollup rows as arrays (hour offsets from `start`,
    unflagged readings, mean, flag bits), so a large window loads as a few thousand rows."""
    h = tables.hourly
    offset = sa.cast(sa.func.extract("epoch", h.c.hour - sa.literal(start, tables.TZ)) / 3600, sa.Integer)
    return (sa.select(h.c.device_id, h.c.quantity, sa.func.array_agg(offset).label("hours"),
                      sa.func.array_agg(h.c.n).label("n"), sa.func.array_agg(h.c.mean).label("mean"),
                      sa.func.array_agg(h.c.flags_any).label("flags_any"))
            .where(h.c.device_id.in_(list(device_ids)), h.c.quantity.in_(list(quantities)), h.c.hour >= start,
                   h.c.hour < end)
            .group_by(h.c.device_id, h.c.quantity))


def clock_counts_stmt(device_ids: Sequence[int], quantities: Sequence[int], start: datetime,
                      end: datetime) -> sa.Select[Any]:
    """Readings the ingest flagged CLOCK, per (device, quantity, hour): only the hours whose rollup
    row carries the bit are probed (by the readings primary key), and only CLOCK readings count."""
    h, r = tables.hourly, tables.readings
    join = sa.and_(r.c.device_id == h.c.device_id, r.c.quantity == h.c.quantity, r.c.time >= h.c.hour,
                   r.c.time < h.c.hour + sa.text("interval '1 hour'"), r.c.flags.op("&")(CLOCK_BIT) != 0)
    return (sa.select(h.c.device_id, h.c.quantity, h.c.hour, sa.func.count().label("n"))
            .select_from(h.join(r, join))
            .where(h.c.device_id.in_(list(device_ids)), h.c.quantity.in_(list(quantities)), h.c.hour >= start,
                   h.c.hour < end, h.c.flags_any.op("&")(CLOCK_BIT) != 0)
            .group_by(h.c.device_id, h.c.quantity, h.c.hour))


def last_status_stmt(device_ids: Sequence[int]) -> sa.Select[Any]:
    h = tables.device_status_history
    return (sa.select(h.c.device_id, h.c.status, h.c.stars).ext(distinct_on(h.c.device_id))
            .where(h.c.device_id.in_(list(device_ids)))
            .order_by(h.c.device_id, h.c.changed_at.desc(), h.c.id.desc()))


# --- statement builders: writes ----------------------------------------------------------------
def flag_replacement_stmts(device_ids: Sequence[int], quantities: Sequence[int], start: datetime) -> list[sa.Executable]:
    """The stored flags of these devices and quantities become this run's: window verdicts are
    replaced; runs of hours starting in the window are recomputed; a run reaching into the window
    from before is cut at the window start and continued by the new run starting there (one row
    per event, however often the window slides over it)."""
    f, s = tables.device_flags, flag_stage
    mine = sa.and_(f.c.device_id.in_(list(device_ids)), f.c.quantity.in_(list(quantities)))
    hours = f.c.scope == "hours"
    merged = (sa.update(f).where(mine, hours, f.c.period_end == start, f.c.flag == s.c.flag, f.c.device_id == s.c.device_id,
                                 f.c.quantity == s.c.quantity, s.c.scope == "hours", s.c.period_start == start)
              .values(period_end=s.c.period_end,
                      evidence=sa.case((s.c.evidence.has_key("hours"), s.c.evidence.op("||")(sa.func.jsonb_build_object(
                          "hours", sa.func.extract("epoch", s.c.period_end - f.c.period_start) / 3600))),
                          else_=s.c.evidence))
              .returning(f.c.device_id, f.c.quantity, f.c.flag).cte("merged"))
    drop_merged = (sa.delete(s).where(s.c.device_id == merged.c.device_id, s.c.quantity == merged.c.quantity,
                                      s.c.flag == merged.c.flag, s.c.period_start == start))
    cols = ["device_id", "quantity", "flag", "scope", "period_start", "period_end", "evidence"]
    return [
        sa.delete(f).where(mine, f.c.scope == "window"),
        sa.delete(f).where(mine, hours, f.c.period_start >= start),
        sa.update(f).where(mine, hours, f.c.period_start < start, f.c.period_end > start).values(period_end=start),
        drop_merged.add_cte(merged),
        sa.insert(f).from_select(cols, sa.select(*(s.c[c] for c in cols))),
    ]


def calibrated_means_stmt() -> sa.Update:
    """Set `calibrated_mean` on the staged rollup rows (changed ones only: an unchanged row is not
    rewritten, nor logged as invalidating the materialised zone series). Rows erased meanwhile
    are not brought back."""
    h, s = tables.hourly, mean_stage
    return (sa.update(h).where(h.c.device_id == s.c.device_id, h.c.quantity == s.c.quantity, h.c.hour == s.c.hour,
                               h.c.calibrated_mean.is_distinct_from(s.c.calibrated_mean))
            .values(calibrated_mean=s.c.calibrated_mean, updated_at=sa.func.now()))


def calibration_replacement_stmts(device_ids: Sequence[int], quantities: Sequence[int],
                                  day_start: datetime) -> list[sa.Executable]:
    """Before this run's model rows go in: the active row of the same UTC day is superseded and
    dropped (one history row per device, quantity and day), an older active row is deactivated."""
    c = tables.calibrations
    mine = sa.and_(c.c.device_id.in_(list(device_ids)), c.c.quantity.in_(list(quantities)), c.c.active)
    return [sa.delete(c).where(mine, c.c.fitted_at >= day_start), sa.update(c).where(mine).values(active=False)]


def run_lock_stmt(wait: bool) -> sa.Select[Any]:
    fn = sa.func.pg_advisory_xact_lock if wait else sa.func.pg_try_advisory_xact_lock
    return sa.select(fn(RUN_LOCK))


# --- execution ---------------------------------------------------------------------------------
def lock_run(conn: Connection, *, wait: bool) -> bool:
    """Take the calibration run's lock for this transaction; False if another run holds it."""
    value = conn.execute(run_lock_stmt(wait)).scalar()
    return True if wait else bool(value)


def fixed_devices(conn: Connection, uid: str | None = None) -> list[Any]:
    return list(conn.execute(fixed_devices_stmt(uid)).all())


def stations(conn: Connection) -> list[Any]:
    return list(conn.execute(stations_stmt()).all())


def reference_series(conn: Connection, codes: Sequence[str], quantities: Sequence[int], start: datetime,
                     end: datetime) -> list[Any]:
    return list(conn.execute(reference_stmt(codes, quantities, start, end)).all()) if codes else []


def hourly_arrays(conn: Connection, device_ids: Sequence[int], quantities: Sequence[int], start: datetime,
                  end: datetime) -> list[Any]:
    return list(conn.execute(hourly_arrays_stmt(device_ids, quantities, start, end)).all()) if device_ids else []


def clock_counts(conn: Connection, device_ids: Sequence[int], quantities: Sequence[int], start: datetime,
                 end: datetime) -> list[Any]:
    return list(conn.execute(clock_counts_stmt(device_ids, quantities, start, end)).all()) if device_ids else []


def _copy(conn: Connection, table: sa.Table, rows: Iterable[Sequence[Any]]) -> None:
    conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
    conn.execute(sa.delete(table))
    raw = conn.connection.driver_connection
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns))
    with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def write_calibrated_means(conn: Connection, rows: Iterable[tuple[int, int, datetime, float | None]]) -> int:
    """Rows (device_id, quantity, hour, calibrated_mean or None to clear it); returns rows changed."""
    _copy(conn, mean_stage, rows)
    return int(conn.execute(calibrated_means_stmt()).rowcount)


def replace_flags(conn: Connection, device_ids: Sequence[int], quantities: Sequence[int], start: datetime,
                  rows: Iterable[tuple[int, int, str, str, datetime, datetime, str]]) -> int:
    """Rows (device_id, quantity, flag, scope, period_start, period_end, evidence JSON text)."""
    _copy(conn, flag_stage, rows)
    n = 0
    for stmt in flag_replacement_stmts(device_ids, quantities, start):
        n = conn.execute(stmt).rowcount
    return int(n)


def store_calibrations(conn: Connection, rows: Sequence[dict[str, Any]], device_ids: Sequence[int],
                       quantities: Sequence[int], now: datetime) -> None:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for stmt in calibration_replacement_stmts(device_ids, quantities, day):
        conn.execute(stmt)
    if rows:
        conn.execute(sa.insert(tables.calibrations), [{**r, "active": True, "fitted_at": now} for r in rows])


def set_statuses(conn: Connection, rows: Sequence[tuple[int, str, int | None, list[dict[str, str]]]]) -> int:
    """Rows (device_id, status, stars, reasons): the devices are updated; a status or stars that
    differ from the device's last history row append one. Returns the history rows added."""
    if not rows:
        return 0
    last = {r.device_id: (r.status, r.stars) for r in conn.execute(last_status_stmt([r[0] for r in rows]))}
    d = tables.devices
    conn.execute(sa.update(d).where(d.c.id == sa.bindparam("b_id"))
                 .values(status=sa.bindparam("b_status"), stars=sa.bindparam("b_stars")),
                 [{"b_id": i, "b_status": s, "b_stars": st} for i, s, st, _ in rows])
    changed = [{"device_id": i, "status": s, "stars": st, "reasons": rs} for i, s, st, rs in rows
               if last.get(i) != (s, st)]
    if changed:
        conn.execute(sa.insert(tables.device_status_history), changed)
    return len(changed)


# --- reference data ----------------------------------------------------------------------------
def upsert_stations(conn: Connection, rows: Iterable[StationRow], *, overwrite: bool = True) -> int:
    """Insert or update stations; with overwrite=False (stations seen in a measurement file)
    existing names/coordinates are kept. Returns rows inserted or changed."""
    t = tables.reference_stations
    n = 0
    for r in rows:
        stmt = pg_insert(t).values(code=r.code, name=r.name, lat=r.lat, lon=r.lon,
                                   station_type=r.station_type, network=r.network)
        if overwrite:
            ex = stmt.excluded
            new = {"name": ex.name, "lat": sa.func.coalesce(ex.lat, t.c.lat), "lon": sa.func.coalesce(ex.lon, t.c.lon),
                   "station_type": sa.func.coalesce(ex.station_type, t.c.station_type),
                   "network": sa.func.coalesce(ex.network, t.c.network)}
            changed = sa.or_(*(t.c[k].is_distinct_from(v) for k, v in new.items()))
            stmt = stmt.on_conflict_do_update(index_elements=[t.c.code], set_=new, where=changed)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.code])
        n += len(conn.execute(stmt.returning(t.c.code)).all())
    return n


def add_station_pollutants(conn: Connection, pollutants: dict[str, set[str]]) -> None:
    t = tables.reference_stations
    for code, names in pollutants.items():
        row = conn.execute(sa.select(t.c.pollutants).where(t.c.code == code)).first()
        if row is None:
            continue
        merged = sorted(set(row.pollutants) | names)
        if merged != sorted(row.pollutants):
            conn.execute(sa.update(t).where(t.c.code == code).values(pollutants=merged))


def upsert_reference_readings(conn: Connection, rows: Sequence[ReferenceRow], chunk: int = 5000) -> int:
    """Idempotent: an identical row changes nothing; returns rows inserted or changed."""
    t = tables.reference_readings
    n = 0
    for i in range(0, len(rows), chunk):
        part = rows[i: i + chunk]
        # the last occurrence wins within one file (a corrected hour later in the file)
        dedup = {(r.station_code, r.quantity, r.time): r for r in part}
        stmt = pg_insert(t).values([
            {"station_code": r.station_code, "quantity": r.quantity, "time": r.time, "value": r.value,
             "validity": r.validity, "source": r.source} for r in dedup.values()
        ])
        ex = stmt.excluded
        upsert = stmt.on_conflict_do_update(
            index_elements=[t.c.station_code, t.c.quantity, t.c.time],
            set_={"value": ex.value, "validity": ex.validity, "source": ex.source},
            where=sa.or_(t.c.value.is_distinct_from(ex.value), t.c.validity.is_distinct_from(ex.validity)),
        ).returning(t.c.station_code)
        n += len(conn.execute(upsert).all())
    return n


# --- partner reads -----------------------------------------------------------------------------
def device_by_pseudonym(conn: Connection, pseudonym: str) -> Any:
    d = tables.devices
    return conn.execute(sa.select(d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.status, d.c.stars,
                                  d.c.lat, d.c.lon, d.c.h3_cell).where(d.c.pseudonym == pseudonym)).first()


def calibration_history(conn: Connection, device_id: int, quantity: int, limit: int = 60) -> list[Any]:
    t = tables.calibrations
    return list(conn.execute(sa.select(t).where(t.c.device_id == device_id, t.c.quantity == quantity)
                             .order_by(t.c.fitted_at.desc(), t.c.id.desc()).limit(limit)).all())


def status_history(conn: Connection, device_id: int, limit: int = 100) -> list[Any]:
    h = tables.device_status_history
    return list(conn.execute(sa.select(h).where(h.c.device_id == device_id)
                             .order_by(h.c.changed_at.desc(), h.c.id.desc()).limit(limit)).all())


def device_flags(conn: Connection, device_id: int, quantities: Sequence[int], since: datetime | None = None,
                 limit: int = 1000) -> list[Any]:
    t = tables.device_flags
    q = sa.select(t).where(t.c.device_id == device_id, t.c.quantity.in_(list(quantities)))
    if since is not None:
        q = q.where(t.c.period_end > since)
    return list(conn.execute(q.order_by(t.c.period_start.desc()).limit(limit)).all())


def hourly_series(conn: Connection, device_id: int, quantity: int, start: datetime, end: datetime) -> list[Any]:
    t = tables.hourly
    return list(conn.execute(sa.select(t.c.hour, t.c.mean, t.c.calibrated_mean)
                             .where(t.c.device_id == device_id, t.c.quantity == quantity, t.c.hour >= start,
                                    t.c.hour < end).order_by(t.c.hour)).all())


def station(conn: Connection, code: str) -> Any:
    t = tables.reference_stations
    return conn.execute(sa.select(t).where(t.c.code == code)).first()


def reference_span(conn: Connection, code: str, quantity: int) -> Any:
    t = tables.reference_readings
    return conn.execute(sa.select(sa.func.min(t.c.time), sa.func.max(t.c.time) + timedelta(hours=1), sa.func.count())
                        .where(t.c.station_code == code, t.c.quantity == quantity)).one()


def active_calibrations(conn: Connection, device_ids: Sequence[int] | None = None) -> list[Any]:
    t = tables.calibrations
    q = sa.select(t.c.device_id, t.c.quantity, t.c.method, t.c.station_code, t.c.sensor_class, t.c.uncertainty_pct,
                  t.c.status, t.c.stars, t.c.metrics["kind"].astext.label("kind"), t.c.a, t.c.b, t.c.c,
                  t.c.metrics["out_of_fold"]["r2"].astext.label("r2")).where(t.c.active)
    if device_ids is not None:
        q = q.where(t.c.device_id.in_(list(device_ids)))
    return list(conn.execute(q.order_by(t.c.device_id, t.c.quantity)).all())


def partner_devices(conn: Connection, *, status: str | None = None, sensor_type: str | None = None,
                    device_ids: Sequence[int] | None = None) -> list[Any]:
    d = tables.devices
    q = sa.select(d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.status, d.c.stars, d.c.h3_cell,
                  d.c.last_seen).order_by(d.c.pseudonym)
    if status:
        q = q.where(d.c.status == status)
    if sensor_type:
        q = q.where(sa.literal(sensor_type) == sa.any_(d.c.sensor_models))
    if device_ids is not None:
        q = q.where(d.c.id.in_(list(device_ids)))
    return list(conn.execute(q).all())


# --- partner keys ----------------------------------------------------------------------------
def create_partner_key(conn: Connection, name: str, key_hash: str, scopes: list[str]) -> int:
    t = tables.partner_api_keys
    return int(conn.execute(sa.insert(t).values(name=name, key_hash=key_hash, scopes=scopes)
                            .returning(t.c.id)).scalar_one())


def partner_keys(conn: Connection):
    t = tables.partner_api_keys
    return conn.execute(sa.select(t.c.id, t.c.name, t.c.scopes, t.c.created_at, t.c.revoked_at, t.c.last_used_at)
                        .order_by(t.c.id)).all()


def revoke_partner_keys(conn: Connection, *, key_id: int | None = None, name: str | None = None) -> list[int]:
    """Revoke (at once: every request checks `revoked_at`) the key `key_id`, or every key named
    `name`; returns the ids revoked now (already revoked ones are left as they are)."""
    t = tables.partner_api_keys
    which = t.c.id == key_id if key_id is not None else t.c.name == name
    return list(conn.execute(sa.update(t).where(which, t.c.revoked_at.is_(None)).values(revoked_at=sa.func.now())
                             .returning(t.c.id)).scalars())


def partner_key(conn: Connection, *, key_hash: str | None = None, key_id: int | None = None) -> Any:
    """An unrevoked partner key by the hash of its secret or by its id (a signed-in session)."""
    t = tables.partner_api_keys
    q = sa.select(t.c.id, t.c.name, t.c.scopes).where(t.c.revoked_at.is_(None))
    q = q.where(t.c.key_hash == key_hash) if key_hash is not None else q.where(t.c.id == key_id)
    return conn.execute(q).first()
