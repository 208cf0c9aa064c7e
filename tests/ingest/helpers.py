"""Test helpers for the ingest tests: devices, inbound messages, table reads."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.security import pseudonym
from civicair.gateway.formats.direct import decode_direct_json
from civicair.ingest.writer import Inbound


def add_device(db, uid: str, *, kind: str = "fixed", transport: str = "mqtt", dev_eui: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with db.engine.begin() as conn:
        return conn.execute(sa.insert(tables.devices).values(
            uid=uid, pseudonym=pseudonym("test-secret", uid), name=uid, kind=kind,
            transport=transport, dev_eui=dev_eui).returning(tables.devices.c.id)).scalar_one()


def direct(uid: str, time: datetime | None, readings: dict, *, received_at: datetime | None = None) -> Inbound:
    doc: dict = {"readings": readings}
    if time is not None:
        doc["time"] = time.isoformat()
    payload = json.dumps(doc).encode()
    topic = f"civicair/v1/devices/{uid}/up"
    return Inbound("mqtt", topic, payload, received_at or datetime.now(UTC),
                   lambda p: decode_direct_json(uid, p, topic=topic), ref=DeviceRef(RefScheme.CIVICAIR, uid))


def fixed(uplink: Uplink, payload: bytes = b"raw", received_at: datetime | None = None) -> Inbound:
    return Inbound("chirpstack", "application/x/device/y/event/up", payload,
                   received_at or datetime.now(UTC), lambda _p: uplink)


def rows(db, table: sa.Table, *cols: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        sel = sa.select(*[table.c[c] for c in cols]).order_by(*[table.c[c] for c in cols])
        return [tuple(r) for r in conn.execute(sel)]


def hourly(db) -> dict[tuple[int, int, datetime], dict]:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return {(r.device_id, r.quantity, r.hour): dict(r._mapping)
                for r in conn.execute(sa.select(tables.hourly))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(tmp: Path) -> tuple[subprocess.Popen, str]:
    """Our own Mosquitto (no persistence) on a free port, with an unlimited per-client queue."""
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nmax_inflight_messages 0\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")
