"""Operator rules of the gateway: quarantine attach + replay, Mosquitto file sync."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from civicair.core.db import Database, libpq_url
from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.errors import Conflict, DeviceNotFound, NotFound
from civicair.core.files import write_atomic
from civicair.gateway import mosquitto_auth, repository
from civicair.gateway.routing import TopicRouter
from civicair.ingest.repository import REF_COLUMN
from civicair.ingest.writer import BatchResult, Inbound, store_batch
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)


def attach_quarantined(db: Database, row_id: int, device_uid: str, *, remember: bool = False) -> str:
    """Attach quarantine row `row_id` to a registered device. `remember` also records the
    message's device reference (DevEUI, TTS id, chip id) on the device, so later messages resolve."""
    with db.engine.begin() as conn:
        row = repository.quarantine_row(conn, row_id)
        if row is None:
            raise NotFound(f"no quarantine entry {row_id}")
        device = repository.device_by_uid(conn, device_uid)
        if device is None:
            raise DeviceNotFound(f"no device with uid {device_uid!r}")
        repository.attach(conn, row_id, device.id)
        note = f"quarantine {row_id} attached to {device_uid}"
        if remember:
            column = REF_COLUMN[RefScheme(row.ref_scheme)]
            current = getattr(device, column)
            if current not in (None, row.ref_value):
                raise Conflict(f"{device_uid} already has {column} {current!r}")
            try:
                with conn.begin_nested():
                    repository.set_device_ref(conn, device.id, column, row.ref_value)
            except IntegrityError:
                raise Conflict(f"{column} {row.ref_value!r} belongs to another device") from None
            note += f"; {column} set to {row.ref_value}"
    return note


@dataclass
class ReplayResult:
    messages: int = 0
    readings_written: int = 0
    dead_letters: int = 0


def replay_quarantined(db: Database, router: TopicRouter) -> ReplayResult:
    """Re-decode every attached, not yet replayed quarantine row from its topic and raw payload
    and store it for its attached device (same path as live messages; idempotent)."""
    with db.engine.connect() as conn:
        rows = repository.attached_unreplayed(conn)
    if not rows:
        return ReplayResult()
    batch = [Inbound(row.source, row.topic, bytes(row.payload), row.received_at,
                     _decode_as(router, row.topic, row.uid)) for row in rows]
    with psycopg.connect(libpq_url(db.url)) as pconn:
        stored: BatchResult = store_batch(pconn, batch)
    with db.engine.begin() as conn:
        repository.mark_replayed(conn, [r.id for r in rows], datetime.now(UTC))
    return ReplayResult(len(rows), stored.readings_written, stored.dead_letters)


def _decode_as(router: TopicRouter, topic: str, uid: str):
    def decode(payload: bytes) -> Uplink:
        return replace(router.decode(topic, payload), device=DeviceRef(RefScheme.CIVICAIR, uid))

    return decode


@dataclass
class SyncResult:
    devices: int
    skipped: list[str]
    changed: bool = True  # a file was rewritten (False: both already held this content)


def sync_mosquitto_files(db: Database, password_path: Path, acl_path: Path, *,
                         gateway_user: str | None, gateway_password: str | None,
                         direct_prefix: str, chirpstack_user: str | None = None,
                         chirpstack_password: str | None = None,
                         chirpstack_prefix: str = "application") -> SyncResult:
    """(Re)write the password and ACL files from the devices table, atomically, and only when
    their content changes. A service user's password keeps its hash from the current file when
    that hash still matches (a new salt each run would change the file every time)."""
    with db.engine.connect() as conn:
        rows = repository.mqtt_accounts(conn)
    accounts, skipped = [], []
    for r in rows:
        if not mosquitto_auth.valid_username(r.mqtt_username) or not r.mqtt_password_hash.startswith("$"):
            skipped.append(r.uid)
            continue
        accounts.append(mosquitto_auth.MqttAccount(r.mqtt_username, r.mqtt_password_hash, r.uid))
    current = _current_hashes(password_path)

    def service_hash(user: str, password: str) -> str:
        old = current.get(user)
        if old and mosquitto_auth.verify_mosquitto_password(password, old):
            return old
        return mosquitto_auth.hash_mosquitto_password(password)

    gateway_users = []
    if gateway_user:
        gateway_users.append(gateway_user)
        if gateway_password:
            accounts.insert(0, mosquitto_auth.MqttAccount(gateway_user, service_hash(gateway_user, gateway_password)))
    n_devices = len(accounts) - (1 if gateway_user and gateway_password else 0)
    servers = []
    if chirpstack_user:
        servers.append((chirpstack_user, chirpstack_prefix))
        if chirpstack_password:
            accounts.insert(0, mosquitto_auth.MqttAccount(chirpstack_user,
                                                          service_hash(chirpstack_user, chirpstack_password)))
    changed = _write_if_changed(password_path, mosquitto_auth.password_file(accounts))
    changed |= _write_if_changed(acl_path, mosquitto_auth.acl_file(
        gateway_users, [a for a in accounts if a.topic_uid], direct_prefix, network_servers=servers))
    return SyncResult(n_devices, skipped, changed)


def reload_mosquitto(pid_file: Path) -> int:
    """SIGHUP the broker whose pid `pid_file` holds (Mosquitto's `pid_file`): it re-reads its
    password and ACL files. Returns the pid."""
    text = pid_file.read_text().strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{pid_file}: not a process id: {text[:20]!r}")
    os.kill(int(text), signal.SIGHUP)
    return int(text)


def _current_hashes(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _write_if_changed(path: Path, text: str) -> bool:
    return write_atomic(path, text.encode(), mode=0o640)  # password hashes: not world-readable


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A quarantined message (unknown device) as the operator console shows it."""

    id: int
    received_at: datetime
    source: str
    topic: str
    ref: str  # "<scheme>=<value>": the device reference no registered device has
    size: int
    device_uid: str | None  # attached to
    replayed_at: datetime | None
    payload: bytes | None = None  # only for one entry


def list_quarantine(db: Database, *, include_replayed: bool = False, limit: int = 100) -> list[Quarantined]:
    with db.engine.connect() as conn:
        rows = repository.list_quarantine(conn, include_replayed=include_replayed, limit=limit)
        uids = repository.device_uids(conn, {r.device_id for r in rows if r.device_id})
    return [Quarantined(r.id, r.received_at, r.source, r.topic, f"{r.ref_scheme}={r.ref_value}", int(r.size or 0),
                        uids.get(r.device_id), r.replayed_at) for r in rows]


def get_quarantined(db: Database, row_id: int) -> Quarantined:
    with db.engine.connect() as conn:
        r = repository.quarantine_row(conn, row_id)
        if r is None:
            raise NotFound(f"no quarantine entry {row_id}")
        uids = repository.device_uids(conn, {r.device_id} if r.device_id else set())
    return Quarantined(r.id, r.received_at, r.source, r.topic, f"{r.ref_scheme}={r.ref_value}", len(r.payload),
                       uids.get(r.device_id), r.replayed_at, bytes(r.payload))
