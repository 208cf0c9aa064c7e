"""All SQL of firmware_tools. Repositories never commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.firmware_tools.identifiers import DeviceIdentifiers
from sqlalchemy.dialects.postgresql import BYTEA, insert
from sqlalchemy.engine import Connection, Row

d = tables.devices


def insert_device(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(sa.insert(d).values(**values).returning(d.c.id)).scalar_one())


def device_by_uid(conn: Connection, uid: str) -> Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.uid == uid)).first()


def device_by_id(conn: Connection, device_id: int) -> Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.id == device_id)).first()


def uid_with_dev_eui(conn: Connection, dev_eui: str) -> str | None:
    return conn.execute(sa.select(d.c.uid).where(d.c.dev_eui == dev_eui)).scalar()


def uid_with_chip_id(conn: Connection, chip_id: str) -> str | None:
    return conn.execute(sa.select(d.c.uid).where(d.c.chip_id == chip_id)).scalar()


def update_device(conn: Connection, device_id: int, values: dict[str, Any]) -> None:
    conn.execute(sa.update(d).where(d.c.id == device_id).values(**values))


def readings_count_since(conn: Connection, device_id: int, since: datetime) -> int:
    r = tables.readings
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(r)
        .where(r.c.device_id == device_id, r.c.received_at >= since)
    ).scalar_one())


def latest_readings(conn: Connection, device_id: int, since: datetime, limit: int = 20) -> list[Any]:
    r = tables.readings
    return list(conn.execute(
        sa.select(r.c.time, r.c.quantity, r.c.value, r.c.flags, r.c.received_at)
        .where(r.c.device_id == device_id, r.c.received_at >= since)
        .order_by(r.c.received_at.desc(), r.c.quantity).limit(limit)
    ).all())


def recent_flags(conn: Connection, device_id: int, limit: int = 20) -> list[Any]:
    f = tables.device_flags
    return list(conn.execute(
        sa.select(f.c.flag, f.c.quantity, f.c.period_start, f.c.period_end)
        .where(f.c.device_id == device_id).order_by(f.c.period_end.desc()).limit(limit)
    ).all())


def active_calibrations(conn: Connection, device_id: int) -> list[Any]:
    c = tables.calibrations
    return list(conn.execute(
        sa.select(c.c.quantity, c.c.method, c.c.fitted_at, c.c.n_pairs, c.c.sensor_class,
                  c.c.uncertainty_pct, c.c.station_code)
        .where(c.c.device_id == device_id, c.c.active.is_(True)).order_by(c.c.quantity)
    ).all())


def quarantined_since(conn: Connection, since: datetime, limit: int = 50) -> list[Any]:
    q = tables.quarantine
    return list(conn.execute(
        sa.select(q.c.id, q.c.received_at, q.c.source, q.c.topic, q.c.ref_scheme, q.c.ref_value, q.c.payload)
        .where(q.c.received_at >= since).order_by(q.c.received_at.desc()).limit(limit)
    ).all())


def dead_letters_since(conn: Connection, since: datetime, limit: int = 50) -> list[Any]:
    dl = tables.dead_letters
    return list(conn.execute(
        sa.select(dl.c.id, dl.c.received_at, dl.c.source, dl.c.topic, dl.c.error, dl.c.payload)
        .where(dl.c.received_at >= since).order_by(dl.c.received_at.desc()).limit(limit)
    ).all())


def latest_battery(conn: Connection, device_id: int) -> Any:
    """The device's last status report (ChirpStack event/status) and its last battery voltage
    from an uplink's payload, newest first."""
    b = tables.battery_reports
    return conn.execute(
        sa.select(b.c.time, b.c.level_pct, b.c.external_power, b.c.margin_db)
        .where(b.c.device_id == device_id).order_by(b.c.time.desc()).limit(1)
    ).first()


def _names(table: sa.Table, ids: DeviceIdentifiers) -> sa.ColumnElement[bool]:
    """A raw message (topic, payload) naming the device in any of its forms."""
    return sa.or_(*[table.c.topic.icontains(t, autoescape=True) for t in ids.topic_parts],
                  *[sa.func.position(sa.literal(p, BYTEA).op("in")(table.c.payload)) > 0 for p in ids.payload_parts])


def erase_device(conn: Connection, device_id: int, ids: DeviceIdentifiers,
                 blocked: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """Delete every row keyed by this device in every table that has a `device_id` column
    (readings, uplinks, hourly, calibrations, flags, status history, mobile rollup, dead letters
    of its HTTP pushes, …); every quarantined or dead-lettered message naming it by any of its
    identifiers (`identifiers.device_identifiers`); the materialised zone series built with it;
    then the device row itself (all personal fields). `blocked`: (ref hash, scheme, reason) of
    the hardware ids to block."""
    counts: dict[str, int] = {}
    for table in tables.metadata.sorted_tables:
        if "device_id" in table.c and table.name != "quarantine":
            counts[table.name] = conn.execute(sa.delete(table).where(table.c.device_id == device_id)).rowcount
    q, dl = tables.quarantine, tables.dead_letters
    refs = [sa.and_(q.c.ref_scheme == scheme, q.c.ref_value == value) for scheme, value in ids.refs]
    counts["quarantine"] = conn.execute(
        sa.delete(q).where(sa.or_(q.c.device_id == device_id, *refs, _names(q, ids)))).rowcount
    counts["dead_letters"] += conn.execute(sa.delete(dl).where(_names(dl, ids))).rowcount
    zr, zs = tables.zone_rollup, tables.zone_series
    zones = conn.execute(sa.delete(zr).where(sa.literal(device_id) == sa.any_(zr.c.device_ids)).returning(zr.c.zone_id)).scalars().all()
    counts["zone_series"] = conn.execute(sa.delete(zs).where(zs.c.zone_id.in_(list(zones)))).rowcount if zones else 0
    rows = [{"ref_hash": h, "scheme": scheme, "reason": reason} for h, scheme, reason in blocked]
    if rows:
        b = tables.blocked_refs
        conn.execute(insert(b).values(rows).on_conflict_do_nothing(index_elements=[b.c.ref_hash]))
    counts["blocked_refs"] = len(rows)
    counts["devices"] = conn.execute(sa.delete(d).where(d.c.id == device_id)).rowcount
    return counts


def unblock(conn: Connection, ref_hashes: Iterable[str]) -> None:
    """A hardware id registered again (its owner re-registers the sensor) is no longer blocked."""
    b = tables.blocked_refs
    conn.execute(sa.delete(b).where(b.c.ref_hash.in_(list(ref_hashes))))


def registrations_since(conn: Connection, client_key: str, since: datetime) -> tuple[int, datetime | None]:
    """(registrations of this client network since `since`, the oldest of them), serialised per
    network (transaction-level advisory lock), so concurrent requests cannot both pass the limit."""
    r = tables.registrations
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(client_key))))
    n, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(r.c.at))
                             .where(r.c.client_key == client_key, r.c.at > since)).one()
    return int(n), oldest


def record_registration(conn: Connection, client_key: str, at: datetime, prune_before: datetime) -> None:
    r = tables.registrations
    conn.execute(sa.delete(r).where(r.c.at < prune_before))
    conn.execute(sa.insert(r).values(client_key=client_key, at=at))


# --- sign-ups waiting for their e-mail confirmation (firmware_tools/signup.py) ---------------------
su = tables.signups


def prune_signups(conn: Connection, now: datetime) -> None:
    """Expired sign-ups go, with the request they hold (e-mail, position)."""
    conn.execute(sa.delete(su).where(su.c.expires_at < now))


def signups_for_email_since(conn: Connection, email_key: str, since: datetime) -> int:
    """Confirmation mails sent to this address since `since`, serialised per address (advisory
    lock), so concurrent sign-ups cannot both pass the limit."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("signup:" + email_key))))
    return int(conn.execute(sa.select(sa.func.count()).select_from(su)
                            .where(su.c.email_key == email_key, su.c.created_at > since)).scalar_one())


def insert_signup(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(sa.insert(su).values(**values).returning(su.c.id)).scalar_one())


def pending_signup(conn: Connection, token_hash: str, now: datetime, *, lock: bool = False) -> Row[Any] | None:
    q = sa.select(su).where(su.c.token_hash == token_hash, su.c.confirmed_at.is_(None), su.c.expires_at >= now)
    return conn.execute(q.with_for_update() if lock else q).first()


def confirm_signup(conn: Connection, signup_id: int, uid: str, now: datetime) -> None:
    conn.execute(sa.update(su).where(su.c.id == signup_id).values(confirmed_at=now, device_uid=uid, request=None))


def mark_credentials_shown(conn: Connection, signup_id: int, now: datetime) -> bool:
    """True the first time only: the credentials page is shown once."""
    return conn.execute(sa.update(su).where(su.c.id == signup_id, su.c.confirmed_at.isnot(None), su.c.shown_at.is_(None))
                        .values(shown_at=now).returning(su.c.id)).first() is not None


# --- "my sensor" (issue 17s): the browser signs in with the device token ---------------------------
def device_by_token_hash(conn: Connection, token_hash: str) -> Row[Any] | None:
    return conn.execute(sa.select(d).where(d.c.token_hash == token_hash)).first()
