"""The listener against real brokers: MQTT 3.1.1 fallback on the embedded amqtt broker,
reconnect after the broker restarts, metrics counted by the writer."""

from __future__ import annotations

import json
import queue
import shutil
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from civicair.core.broker import ANONYMOUS, EmbeddedBroker, free_port
from civicair.core.db import libpq_url
from civicair.gateway.listener import MqttListener
from civicair.gateway.routing import TopicRouter
from civicair.ingest import metrics
from civicair.ingest.writer import BatchWriter

from tests.conftest import wait_until
from tests.ingest.helpers import add_device, rows, start_mosquitto

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def publish(url: str, topic: str, payload: bytes, protocol: int = mqtt.MQTTv311) -> None:
    parts = urlsplit(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
    c.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def body(value: float) -> bytes:
    t = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return json.dumps({"time": t, "readings": {"pm25": value}}).encode()


def test_falls_back_to_mqtt311_on_the_embedded_broker(db, unique, tmp_path) -> None:
    from civicair.core import tables

    add_device(db, "e1")
    broker = EmbeddedBroker(port=free_port(), plugins=ANONYMOUS)
    broker.start()
    prefix = f"test/{unique}/civicair/v1/devices"
    inbox: queue.Queue = queue.Queue(maxsize=100)
    writer = BatchWriter(libpq_url(db.url), inbox, batch_max_age_ms=20, spool_dir=tmp_path / "spool")
    listener = MqttListener(broker.url, inbox, client_id=f"t-{unique}", router=TopicRouter(direct_prefix=prefix),
                            session_expiry_s=5, v5_probe_s=1.5)
    before = metrics.READINGS_WRITTEN._value.get()
    writer.start()
    try:
        listener.start()
        assert listener.connected.is_set()
        assert listener.protocol == mqtt.MQTTv311
        publish(broker.url, f"{prefix}/e1/up", body(3.0))
        wait_until(lambda: writer.stats.readings_written == 1, 10, message="stored via amqtt")
    finally:
        listener.stop()
        writer.stop()
        broker.stop()
    assert rows(db, tables.readings, "value") == [(3.0,)]
    assert metrics.READINGS_WRITTEN._value.get() == before + 1


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")
def test_reconnects_after_the_broker_restarts(db, unique, tmp_path) -> None:
    add_device(db, "e2")
    proc, url = start_mosquitto(tmp_path)
    prefix = f"test/{unique}/civicair/v1/devices"
    inbox: queue.Queue = queue.Queue(maxsize=100)
    writer = BatchWriter(libpq_url(db.url), inbox, batch_max_age_ms=20)
    listener = MqttListener(url, inbox, client_id=f"t-{unique}", router=TopicRouter(direct_prefix=prefix),
                            session_expiry_s=30, reconnect_min_s=0.1, reconnect_max_s=0.5)
    writer.start()
    try:
        listener.start()
        assert listener.protocol == mqtt.MQTTv5 and listener.connected.is_set()
        publish(url, f"{prefix}/e2/up", body(1.0))
        wait_until(lambda: writer.stats.readings_written == 1, 10)
        proc.terminate()
        proc.wait(10)
        wait_until(lambda: not listener.connected.is_set(), 10, message="disconnect noticed")
        conf = tmp_path / "mosquitto.conf"
        proc = __import__("subprocess").Popen(["mosquitto", "-c", str(conf)])
        wait_until(listener.connected.is_set, 20, message="reconnected")
        publish(url, f"{prefix}/e2/up", body(2.0))
        wait_until(lambda: writer.stats.readings_written == 2, 10, message="stored after reconnect")
    finally:
        listener.stop()
        writer.stop()
        proc.terminate()
        proc.wait(10)
