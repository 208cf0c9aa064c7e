"""A retained MQTT message through real brokers (issue 19, item 14): stored once, not again at
every reconnect of the gateway. Before: each reconnect stored a time-less retained message
again (a new arrival time each time). The embedded amqtt broker (MQTT 3.1.1) sends the retained
message at every subscription; Mosquitto with MQTT v5 and retain handling 1 only for a new
subscription."""

from __future__ import annotations

import time

import pytest
from civicair.core.broker import ANONYMOUS, EmbeddedBroker, free_port

from tests.conftest import wait_until
from tests.gateway.support import add_device, make_router, pipeline, publisher, readings

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


@pytest.fixture(params=["embedded amqtt", "mosquitto"])
def broker_url(request, mqtt_url):  # type: ignore[no-untyped-def]
    if request.param == "mosquitto":
        if "1883" not in mqtt_url:
            pytest.skip("the machine's Mosquitto is not the test broker")
        yield mqtt_url
        return
    broker = EmbeddedBroker(port=free_port(), plugins=ANONYMOUS)
    broker.start()
    yield broker.url
    broker.stop()


def test_a_retained_timeless_message_is_stored_once_across_reconnects(db, broker_url, unique) -> None:
    router = make_router(unique)
    dev = add_device(db, f"r-{unique}")
    topic = f"{router.direct_prefix}/r-{unique}/up"
    with publisher(broker_url) as client:
        client.publish(topic, b'{"readings": {"pm25": 6.5}}', qos=1, retain=True).wait_for_publish(10)
    try:
        for attempt in range(3):  # the first connection, then two reconnects of the same session
            with pipeline(db, broker_url, router, f"ret-{unique}") as (_, writer):
                if attempt == 0:
                    wait_until(lambda: readings(db, dev) == [(2, 6.5)], 15, message="the retained message stored")
                time.sleep(1.5)  # what the broker re-sends on this subscription arrives meanwhile
                assert readings(db, dev) == [(2, 6.5)], f"stored again at reconnect {attempt}"
    finally:
        with publisher(broker_url) as client:  # clear the retained message
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
