"""SQL of the gateway package: quarantine rows and dead letters, MQTT credentials of devices,
the installation's identity and the gateway client-id leases."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Row

q = tables.quarantine
dev = tables.devices


def list_quarantine(conn: Connection, *, include_replayed: bool = False, limit: int = 100) -> list[Row]:
    stmt = sa.select(q.c.id, q.c.received_at, q.c.source, q.c.topic, q.c.ref_scheme, q.c.ref_value,
                     q.c.device_id, q.c.replayed_at, sa.func.length(q.c.payload).label("size"))
    if not include_replayed:
        stmt = stmt.where(q.c.replayed_at.is_(None))
    return list(conn.execute(stmt.order_by(q.c.id).limit(limit)))


def quarantine_row(conn: Connection, row_id: int) -> Row | None:
    return conn.execute(sa.select(q).where(q.c.id == row_id)).first()


def device_by_uid(conn: Connection, uid: str) -> Row | None:
    return conn.execute(sa.select(dev).where(dev.c.uid == uid)).first()


def attach(conn: Connection, row_id: int, device_id: int) -> None:
    conn.execute(sa.update(q).where(q.c.id == row_id).values(device_id=device_id))


def set_device_ref(conn: Connection, device_id: int, column: str, value: str) -> None:
    conn.execute(sa.update(dev).where(dev.c.id == device_id).values({column: value}))


def attached_unreplayed(conn: Connection) -> list[Row]:
    return list(conn.execute(
        sa.select(q, dev.c.uid).join(dev, dev.c.id == q.c.device_id)
        .where(q.c.replayed_at.is_(None)).order_by(q.c.id)
    ))


def mark_replayed(conn: Connection, row_ids: list[int], at: datetime) -> None:
    conn.execute(sa.update(q).where(q.c.id.in_(row_ids)).values(replayed_at=at))


# --- dead letters (gateway/dead_letters.py) -----------------------------------------------------
dl = tables.dead_letters
over = tables.kept_overflow


def dead_letter_list(conn: Connection, *, include_replayed: bool = False, source: str | None = None,
                     ref_value: str | None = None, error_contains: str | None = None,
                     before_id: int | None = None, limit: int = 100) -> list[Row]:
    """Newest first (`before_id` pages back)."""
    stmt = sa.select(dl.c.id, dl.c.received_at, dl.c.source, dl.c.topic, dl.c.error, dl.c.ref_scheme,
                     dl.c.ref_value, dl.c.replayed_at, dl.c.replay_error,
                     sa.func.octet_length(dl.c.payload).label("size"))
    if not include_replayed:
        stmt = stmt.where(dl.c.replayed_at.is_(None))
    if source is not None:
        stmt = stmt.where(dl.c.source == source)
    if ref_value is not None:
        stmt = stmt.where(dl.c.ref_value == ref_value)
    if error_contains:
        stmt = stmt.where(dl.c.error.contains(error_contains, autoescape=True))
    if before_id is not None:
        stmt = stmt.where(dl.c.id < before_id)
    return list(conn.execute(stmt.order_by(dl.c.id.desc()).limit(limit)))


def dead_letter_row(conn: Connection, row_id: int) -> Row | None:
    return conn.execute(sa.select(dl).where(dl.c.id == row_id)).first()


def overflow_rows(conn: Connection) -> list[Row]:
    return list(conn.execute(sa.select(over).order_by(over.c.last_at.desc())))


def device_id_by_chip(conn: Connection, chip_id: str) -> int | None:
    return conn.execute(sa.select(dev.c.id).where(dev.c.chip_id == chip_id)).scalar_one_or_none()


# psycopg, inside the replay's own transaction (with the store of the replayed message)
MARK_REPLAYED = "update dead_letters set replayed_at = now(), replay_error = null where id = %s"
MARK_REPLAY_FAILED = "update dead_letters set replay_error = %s where id = %s"


def mqtt_accounts(conn: Connection) -> list[Row]:
    return list(conn.execute(
        sa.select(dev.c.uid, dev.c.mqtt_username, dev.c.mqtt_password_hash)
        .where(dev.c.mqtt_username.isnot(None), dev.c.mqtt_password_hash.isnot(None))
        .order_by(dev.c.mqtt_username)
    ))


def mqtt_account(conn: Connection, username: str) -> Row | None:
    """The device logging in to the embedded broker with this MQTT username."""
    return conn.execute(sa.select(dev.c.uid, dev.c.mqtt_password_hash).where(dev.c.mqtt_username == username)).first()
# --- MQTT client ids: the installation's identity and the leases (gateway/lease.py) -------------
inst = tables.installation
lease = tables.gateway_leases


def installation_id(conn: Connection) -> str:
    """This installation's id (created by migration 0011; made again if the table was emptied)."""
    found = conn.execute(sa.select(inst.c.id).order_by(inst.c.created_at, inst.c.id).limit(1)).scalar()
    if found is None:
        conn.execute(sa.insert(inst))
        found = conn.execute(sa.select(inst.c.id).order_by(inst.c.created_at, inst.c.id).limit(1)).scalar_one()
    return str(found)


def lease_row(conn: Connection, client_id: str) -> Row | None:
    return conn.execute(
        sa.select(lease, (sa.func.now() - lease.c.heartbeat_at).label("age")).where(lease.c.client_id == client_id)
    ).first()


def take_lease(conn: Connection, client_id: str, holder: str, host: str, pid: int,
               replacing: str | None) -> bool:
    """Take the lease: a new row, or the row still held by `replacing` (judged stale by the
    caller). False when another holder got it meanwhile."""
    values = dict(client_id=client_id, holder=holder, host=host, pid=pid, started_at=sa.func.now(),
                  heartbeat_at=sa.func.now())
    if replacing is None:
        return conn.execute(insert(lease).values(**values)
                            .on_conflict_do_nothing(index_elements=[lease.c.client_id])).rowcount == 1
    return conn.execute(sa.update(lease).where(lease.c.client_id == client_id, lease.c.holder == replacing)
                        .values(**{k: v for k, v in values.items() if k != "client_id"})).rowcount == 1


def renew_lease(conn: Connection, client_id: str, holder: str) -> bool:
    return conn.execute(sa.update(lease).where(lease.c.client_id == client_id, lease.c.holder == holder)
                        .values(heartbeat_at=sa.func.now())).rowcount == 1


def release_lease(conn: Connection, client_id: str, holder: str) -> None:
    conn.execute(sa.delete(lease).where(lease.c.client_id == client_id, lease.c.holder == holder))


# --- operations health (gateway/health.py) ------------------------------------------------------
def lease_rows(conn: Connection) -> list[Row]:
    """Every gateway lease, with the seconds since its holder last renewed it."""
    age = sa.func.extract("epoch", sa.func.now() - lease.c.heartbeat_at).label("age_s")
    return list(conn.execute(sa.select(lease, age).order_by(lease.c.client_id)))


def kept_counts(conn: Connection) -> Row:
    """Dead letters waiting for a replay; quarantine rows waiting for a device, and attached ones
    waiting for their replay."""
    waiting_dl = sa.select(sa.func.count()).select_from(dl).where(dl.c.replayed_at.is_(None)).scalar_subquery()
    unknown = (sa.select(sa.func.count()).select_from(q)
               .where(q.c.replayed_at.is_(None), q.c.device_id.is_(None)).scalar_subquery())
    attached = (sa.select(sa.func.count()).select_from(q)
                .where(q.c.replayed_at.is_(None), q.c.device_id.isnot(None)).scalar_subquery())
    return conn.execute(sa.select(waiting_dl.label("dead_letters"), unknown.label("quarantine"),
                                  attached.label("attached"))).one()


def pipeline_marks(conn: Connection) -> Row:
    """When a device last sent data (devices is small: no scan of readings), and the work the
    scheduled jobs have left: zone, bike-cell and export invalidations waiting, the last
    calibration fit, the newest map snapshot."""
    def newest(column: sa.Column) -> sa.ScalarSelect:
        return sa.select(sa.func.max(column)).scalar_subquery()

    def count(table: sa.Table) -> sa.ScalarSelect:
        return sa.select(sa.func.count()).select_from(table).scalar_subquery()

    return conn.execute(sa.select(
        newest(dev.c.last_seen).label("last_seen"),
        count(tables.zone_invalidations).label("zone_backlog"),
        count(tables.mobile_invalidations).label("mobile_backlog"),
        count(tables.export_invalidations).label("export_backlog"),
        newest(tables.calibrations.c.fitted_at).label("last_calibration"),
        newest(tables.map_snapshots.c.built_at).label("last_map_snapshot"))).one()


def device_uids(conn: Connection, device_ids: set[int]) -> dict[int, str]:
    if not device_ids:
        return {}
    return {r.id: r.uid for r in conn.execute(sa.select(dev.c.id, dev.c.uid).where(dev.c.id.in_(sorted(device_ids))))}
