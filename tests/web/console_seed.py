"""What the operator console's tests work on, made through the product's own paths: a dead letter
a release without today's decoder kept (a sensor.community push), a ChirpStack uplink from a
DevEUI no device has (quarantined by the writer), a lorawan device it belongs to, and volunteer
devices registered and pushing through the public HTTP API (pending publication)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from civicair.calibration.repository import create_partner_key
from civicair.core import tables
from civicair.core.db import Database, libpq_url
from civicair.core.security import hash_secret, new_api_key
from civicair.core.settings import Settings
from civicair.gateway.formats.push import push_topic
from civicair.gateway.routing import TopicRouter
from civicair.ingest.writer import Inbound, store_batch

from tests.gateway import fixtures as fx
from tests.gateway.support import add_device

UNKNOWN_EUI = "0102030405060708"


@dataclass
class Console:
    dead_letter: int
    airrohr: int  # the device of the dead letter
    quarantined: int
    late_uid: str  # the device the quarantined uplink belongs to
    late: int


def key_with(db: Database, *scopes: str, name: str = "Régie air") -> str:
    key = new_api_key()
    with db.engine.begin() as conn:
        create_partner_key(conn, name, hash_secret(key), list(scopes))
    return key


def seed_console(db: Database, settings: Settings, now: datetime | None = None) -> Console:
    now = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(minutes=20)
    airrohr = add_device(db, "ca-airrohr", transport="http", chip_id="esp8266-77")
    body = json.dumps({"sensordatavalues": [{"value_type": "P1", "value": "8.5"},
                                            {"value_type": "P2", "value": "4.5"}]}).encode()
    topic = push_topic("/v1/push/sensor-community", {"x-pin": "1", "x-sensor": "esp8266-77"})
    with db.engine.begin() as conn:  # kept by an older release that could not read it
        dead = conn.execute(sa.insert(tables.dead_letters).values(
            received_at=now, source="sensor_community", topic=topic, payload=body, error="old decoder bug",
            ref_scheme="civicair", ref_value="ca-airrohr").returning(tables.dead_letters.c.id)).scalar_one()
    router = TopicRouter.from_settings(settings)
    up_topic = f"{settings.chirpstack_topic_prefix}/app/device/{UNKNOWN_EUI}/event/up"
    with psycopg.connect(libpq_url(db.url)) as pconn:
        store_batch(pconn, [Inbound("chirpstack", up_topic, fx.chirpstack_up(UNKNOWN_EUI, fx.BINARY), now,
                                    router.decoder_for(up_topic), ref=router.ref_for(up_topic))])
    with db.engine.connect() as conn:
        quarantined = conn.execute(sa.select(tables.quarantine.c.id)).scalar_one()
    late = add_device(db, "ca-late-lora", transport="lorawan")
    return Console(dead, airrohr, quarantined, "ca-late-lora", late)


def register_and_push(base: str, lat: float, lon: float, values: list[float], now: datetime | None = None) -> dict[str, Any]:
    """A volunteer's fixed sensor, registered and pushing pm25 through the public API: pending
    publication (its first reading starts the QA window)."""
    r = httpx.post(f"{base}/v1/volunteer/devices", timeout=10, json={
        "name": "balcon", "kind": "fixed", "sensors": ["SDS011"], "transport": "http", "lat": lat, "lon": lon,
        "email": "someone@example.org", "consent_public": True})
    assert r.status_code == 201, r.text
    device = r.json()
    now = now or datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    items = [{"time": (start + timedelta(minutes=10 * i)).isoformat(), "readings": {"pm25": v}}
             for i, v in enumerate(values) if start + timedelta(minutes=10 * i) < now]
    p = httpx.post(f"{base}/v1/push", json=items, timeout=30,
                   headers={"Authorization": f"Bearer {device['credentials']['device_token']}"})
    assert p.status_code == 201, p.text
    return device


def readings(db: Database, device_id: int) -> list[tuple[int, float]]:
    with db.engine.connect() as conn:
        return [(r.quantity, r.value) for r in conn.execute(
            sa.select(tables.readings.c.quantity, tables.readings.c.value)
            .where(tables.readings.c.device_id == device_id).order_by(tables.readings.c.quantity, tables.readings.c.time))]


def publication(db: Database, uid: str) -> str:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(tables.devices.c.publication).where(tables.devices.c.uid == uid)).scalar_one()


def map_cells(base: str) -> set[str]:
    """The H3 cells the public map JSON holds."""
    r = httpx.get(f"{base}/v1/map/latest", params={"quantity": "pm25"}, timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    found = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if obj.get("type") == "Feature" or ("properties" in obj and "id" in obj):
                props = obj.get("properties") or {}
                if props.get("kind") == "h3":
                    found.add(str(props.get("id") or obj.get("id")))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(doc)
    return found
