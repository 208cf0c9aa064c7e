"""The first vertical slice: a direct-MQTT JSON message published to a real broker is stored in
`readings` and comes back from GET /v1/devices/{pseudonym}/series over HTTP."""

from __future__ import annotations

import json
import queue
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.security import pseudonym
from civicair.gateway.listener import MqttListener
from civicair.gateway.routing import TopicRouter
from civicair.ingest.writer import BatchWriter

from tests.conftest import wait_until

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def publish(mqtt_url: str, topic: str, payload: bytes) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_direct_mqtt_message_reaches_database_and_api(db, settings, mqtt_url, live_api, unique) -> None:
    uid = f"ca-{unique}"
    pseudo = pseudonym("test-secret", uid)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.devices).values(
            uid=uid, pseudonym=pseudo, name="balcony", kind="fixed", transport="mqtt",
            sensor_models=["SDS011"], consent_public=True, lat=48.58, lon=7.75, h3_cell="891fb4662a7ffff",
            publication="approved"))  # established: public at once
    prefix = f"test/{unique}/civicair/v1/devices"
    inbox: queue.Queue = queue.Queue(maxsize=1000)
    writer = BatchWriter(libpq_url(db.url), inbox, batch_max_age_ms=50)
    listener = MqttListener(mqtt_url, inbox, client_id=f"t-{unique}", router=TopicRouter(direct_prefix=prefix),
                            session_expiry_s=5)
    writer.start()
    listener.start()
    try:
        assert listener.connected.wait(5)
        t = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
        publish(mqtt_url, f"{prefix}/{uid}/up",
                json.dumps({"time": t.isoformat(), "readings": {"pm25": 12.5, "pm10": 20.0}}).encode())
        publish(mqtt_url, f"{prefix}/{uid}/up", b"{not json")
        wait_until(lambda: writer.stats.messages >= 2, 10, message="both messages processed")
    finally:
        listener.stop()
        writer.stop()

    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(tables.readings.c.quantity, tables.readings.c.value)).all()
        dead = conn.execute(sa.select(tables.dead_letters.c.payload, tables.dead_letters.c.topic)).all()
    assert sorted(rows) == [(2, 12.5), (3, 20.0)]
    assert [bytes(d.payload) for d in dead] == [b"{not json"]
    assert dead[0].topic == f"{prefix}/{uid}/up"

    r = httpx.get(f"{live_api}/v1/devices/{pseudo}/series", params={"quantity": "pm25"})
    assert r.status_code == 200, r.text
    values = [p["value"] for p in r.json()["results"]]
    assert values == [12.5]
    assert uid not in r.text and "balcony" not in r.text
