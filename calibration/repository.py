"""All SQL of the calibration package (SQLAlchemy Core). Repositories never commit: the caller
owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.calibration.importers import ReferenceRow, StationRow
from civicair.core import tables
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

CLOCK_BIT = 2  # core.domain.Flag.CLOCK


# --- reference data -----------------------------------------------------------------------------
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


def stations(conn: Connection) -> list[Any]:
    t = tables.reference_stations
    return list(conn.execute(sa.select(t).order_by(t.c.code)).all())


def reference_series(conn: Connection, codes: Sequence[str], quantity: int, start: datetime, end: datetime):
    t = tables.reference_readings
    return conn.execute(
        sa.select(t.c.station_code, t.c.time, t.c.value)
        .where(t.c.station_code.in_(list(codes)), t.c.quantity == quantity, t.c.time >= start, t.c.time < end)
    ).all()


# --- devices and their hourly data ------------------------------------------------------------
def fixed_devices(conn: Connection, uid: str | None = None) -> list[Any]:
    d = tables.devices
    q = sa.select(d.c.id, d.c.uid, d.c.pseudonym, d.c.lat, d.c.lon, d.c.sensor_models, d.c.status, d.c.stars) \
        .where(d.c.kind == "fixed").order_by(d.c.id)
    if uid is not None:
        q = q.where(d.c.uid == uid)
    return list(conn.execute(q).all())


def hourly_raw(conn: Connection, device_ids: Sequence[int], quantities: Sequence[int], start: datetime, end: datetime):
    """Per (device, quantity, hour) from the `hourly` rollup the ingest maintains: n, sum, sum_sq,
    min, max, mean of the unflagged readings, and `n_clock`, the flagged readings of an hour
    whose flags include CLOCK."""
    h = tables.hourly
    clock = h.c.flags_any.op("&")(CLOCK_BIT) != 0
    return conn.execute(
        sa.select(h.c.device_id, h.c.quantity, h.c.hour, h.c.n, h.c.sum, h.c.sum_sq, h.c.min, h.c.max, h.c.mean,
                  sa.case((clock, h.c.n_flagged), else_=0).label("n_clock"))
        .where(h.c.device_id.in_(list(device_ids)), h.c.quantity.in_(list(quantities)),
               h.c.hour >= start, h.c.hour < end)
    ).all()


_STAGE_CALIBRATED = (
    "create temp table if not exists calibrated_stage (device_id integer, quantity smallint, hour timestamptz, "
    "n integer, sum float8, sum_sq float8, min float8, max float8, mean float8, calibrated_mean float8) "
    "on commit drop"
)
_UPSERT_CALIBRATED = (
    "insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, calibrated_mean) "
    "select device_id, quantity, hour, n, sum, sum_sq, min, max, mean, calibrated_mean from calibrated_stage "
    "order by device_id, quantity, hour "
    "on conflict (device_id, quantity, hour) do update set calibrated_mean = excluded.calibrated_mean, "
    "updated_at = now() "
    # unchanged rows are not rewritten (nor logged as invalidating the materialised zone series)
    "where hourly.calibrated_mean is distinct from excluded.calibrated_mean"
)


def write_calibrated_means(conn: Connection, rows: Sequence[tuple]) -> int:
    """Set `calibrated_mean` on the hourly rows (bulk: COPY into a staging table, then one upsert;
    a row the rollup has not created yet gets the rollup values the job read — the ingest rollup
    owns those columns). Rows: (device_id, quantity, hour, n, sum, sum_sq, min, max, mean,
    calibrated_mean). Runs in the caller's transaction."""
    if not rows:
        return 0
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_STAGE_CALIBRATED)
        cur.execute("truncate calibrated_stage")
        with cur.copy("copy calibrated_stage from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(_UPSERT_CALIBRATED)
        n = cur.rowcount
        cur.execute("truncate calibrated_stage")
    return int(n)


# --- results ------------------------------------------------------------------------------------
def store_calibration(conn: Connection, row: dict[str, Any]) -> int:
    t = tables.calibrations
    conn.execute(sa.update(t).where(t.c.device_id == row["device_id"], t.c.quantity == row["quantity"],
                                    t.c.active).values(active=False))
    return int(conn.execute(sa.insert(t).values(**row, active=True).returning(t.c.id)).scalar_one())


def replace_flags(conn: Connection, device_ids: Sequence[int], start: datetime, end: datetime,
                  rows: Sequence[dict[str, Any]]) -> None:
    """Flags are recomputed per window: drop this window's old flags of these devices first."""
    t = tables.device_flags
    if device_ids:
        conn.execute(sa.delete(t).where(t.c.device_id.in_(list(device_ids)), t.c.period_start >= start,
                                        t.c.period_end <= end))
    if rows:
        conn.execute(sa.insert(t), list(rows))


def set_status(conn: Connection, device_id: int, status: str, stars: int | None, reasons: list[str],
               previous: tuple[str, int | None] | None) -> bool:
    """Update the device; append to the history when status or stars changed. True if changed."""
    d = tables.devices
    conn.execute(sa.update(d).where(d.c.id == device_id).values(status=status, stars=stars))
    h = tables.device_status_history
    last = conn.execute(sa.select(h.c.status, h.c.stars).where(h.c.device_id == device_id)
                        .order_by(h.c.changed_at.desc(), h.c.id.desc()).limit(1)).first()
    if last is not None and (last.status, last.stars) == (status, stars):
        return False
    conn.execute(sa.insert(h).values(device_id=device_id, status=status, stars=stars, reasons=reasons))
    return True


# --- partner reads ------------------------------------------------------------------------------
def device_by_pseudonym(conn: Connection, pseudonym: str):
    d = tables.devices
    return conn.execute(sa.select(d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.status, d.c.stars,
                                  d.c.lat, d.c.lon, d.c.h3_cell).where(d.c.pseudonym == pseudonym)).first()


def calibration_history(conn: Connection, device_id: int, limit: int = 100):
    t = tables.calibrations
    return conn.execute(sa.select(t).where(t.c.device_id == device_id)
                        .order_by(t.c.fitted_at.desc(), t.c.id.desc()).limit(limit)).all()


def status_history(conn: Connection, device_id: int, limit: int = 100):
    h = tables.device_status_history
    return conn.execute(sa.select(h).where(h.c.device_id == device_id)
                        .order_by(h.c.changed_at.desc(), h.c.id.desc()).limit(limit)).all()


def device_flags(conn: Connection, device_id: int, limit: int = 500):
    t = tables.device_flags
    return conn.execute(sa.select(t).where(t.c.device_id == device_id)
                        .order_by(t.c.period_start.desc()).limit(limit)).all()


def hourly_series(conn: Connection, device_id: int, quantity: int, start: datetime, end: datetime):
    t = tables.hourly
    return conn.execute(sa.select(t.c.hour, t.c.mean, t.c.calibrated_mean)
                        .where(t.c.device_id == device_id, t.c.quantity == quantity, t.c.hour >= start,
                               t.c.hour < end).order_by(t.c.hour)).all()


def active_calibrations(conn: Connection):
    t = tables.calibrations
    return conn.execute(sa.select(t.c.device_id, t.c.quantity, t.c.method, t.c.station_code, t.c.sensor_class,
                                  t.c.uncertainty_pct).where(t.c.active)).all()


def partner_devices(conn: Connection, *, status: str | None = None, sensor_type: str | None = None,
                    device_ids: Sequence[int] | None = None):
    d = tables.devices
    q = sa.select(d.c.id, d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.status, d.c.stars, d.c.h3_cell,
                  d.c.last_seen).order_by(d.c.pseudonym)
    if status:
        q = q.where(d.c.status == status)
    if sensor_type:
        q = q.where(sa.literal(sensor_type) == sa.any_(d.c.sensor_models))
    if device_ids is not None:
        q = q.where(d.c.id.in_(list(device_ids)))
    return conn.execute(q).all()


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
