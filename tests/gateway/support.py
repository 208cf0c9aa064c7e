"""Test helpers of the gateway tests: devices, a real listener + writer pair, publishing."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.security import hash_secret, pseudonym
from civicair.gateway.listener import MqttListener
from civicair.gateway.routing import TopicRouter
from civicair.ingest.writer import BatchWriter


def add_device(db, uid: str, **columns: object) -> int:  # type: ignore[no-untyped-def]
    values = dict(uid=uid, pseudonym=pseudonym("test-secret", uid), name=uid, kind="fixed",
                  transport="mqtt", consent_public=True)
    if "token" in columns:
        columns["token_hash"] = hash_secret(str(columns.pop("token")))
    values.update(columns)
    with db.engine.begin() as conn:
        return conn.execute(sa.insert(tables.devices).values(**values).returning(tables.devices.c.id)).scalar_one()


def make_router(unique: str) -> TopicRouter:
    base = f"test/{unique}"
    return TopicRouter(direct_prefix=f"{base}/civicair/v1/devices", chirpstack_prefix=f"{base}/application",
                       tts_prefix=f"{base}/v3")


@contextmanager
def pipeline(db, mqtt_url: str, router: TopicRouter, client_id: str, *,  # type: ignore[no-untyped-def]
             shared_group: str | None = None) -> Iterator[tuple[MqttListener, BatchWriter]]:
    inbox: queue.Queue = queue.Queue(maxsize=1000)
    writer = BatchWriter(libpq_url(db.url), inbox, batch_max_age_ms=50)
    listener = MqttListener(mqtt_url, inbox, client_id=client_id, router=router,
                            shared_group=shared_group, session_expiry_s=5)
    writer.start()
    listener.start()
    try:
        assert listener.connected.wait(5)
        yield listener, writer
    finally:
        listener.stop()
        writer.stop()


@contextmanager
def publisher(mqtt_url: str) -> Iterator[mqtt.Client]:
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(mqtt_url: str, messages: list[tuple[str, bytes]]) -> None:
    with publisher(mqtt_url) as client:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)


def readings(db, device_id: int | None = None) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    q = sa.select(tables.readings.c.quantity, tables.readings.c.value).order_by(tables.readings.c.quantity)
    if device_id is not None:
        q = q.where(tables.readings.c.device_id == device_id)
    with db.engine.connect() as conn:
        return [(r.quantity, round(r.value, 4)) for r in conn.execute(q)]


def count(db, table: sa.Table) -> int:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


class DeviceClient:
    """A device's MQTT 3.1.1 client; `refused` is the CONNACK's verdict."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack = threading.Event()
        self.refused: bool | None = None
        self.messages: list[bytes] = []
        self.suback: list[int] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.messages.append(m.payload)
        self.c.on_subscribe = lambda _c, _u, _m, codes, _p: self.suback.extend(int(getattr(x, "value", x)) for x in codes)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connack.wait(5), "no CONNACK"

    def _on_connect(self, _c, _u, _flags, reason, _props) -> None:  # type: ignore[no-untyped-def]
        self.refused = reason.is_failure
        self.connack.set()
        if reason.is_failure:
            self.c.disconnect()

    def publish(self, topic: str, doc: dict) -> None:
        info = self.c.publish(topic, json.dumps(doc).encode(), qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
        # paho 2.2: a client whose network thread ended by itself (its CONNACK refused, then
        # disconnect) keeps the socket pair loop_start made: the run would end on unclosed sockets
        self.c._reset_sockets(sockpair_only=True)
