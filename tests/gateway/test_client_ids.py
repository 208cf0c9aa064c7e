"""MQTT client ids (issue 19, item 22): a unique default per installation and host, a lease that
keeps a second live gateway with the same id from starting, and a session takeover that is
logged loudly and not fought over. Before: two instances with the README's settings shared
`civicair-gateway-1`, the second received 6,039 queued messages of the first, and the two
knocked each other off 14 times."""

from __future__ import annotations

import logging
import os
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.errors import Conflict
from civicair.gateway.lease import ClientIdLease, default_client_id, derive_client_id

from civicair.runtime import start_pipeline
from tests.conftest import wait_until
from tests.gateway.support import add_device, publish_all, readings

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def test_default_client_ids_differ_per_installation_and_host_and_stay_stable() -> None:
    a = default_client_id("3f2c9a10-0000-4000-8000-000000000000", "gw1.example.org")
    assert a == "civicair-3f2c9a10-gw1"
    assert a == default_client_id("3f2c9a10-0000-4000-8000-000000000000", "gw1.example.org")
    assert a != default_client_id("77aa0000-0000-4000-8000-000000000000", "gw1.example.org")
    assert a != default_client_id("3f2c9a10-0000-4000-8000-000000000000", "gw2")
    assert default_client_id("3f2c9a10", "weird host_name!") == "civicair-3f2c9a10-weird-host-name"


def test_the_default_client_id_comes_from_the_database_identity(db) -> None:
    first = derive_client_id(libpq_url(db.url), host="h")
    assert first == derive_client_id(libpq_url(db.url), host="h")  # stable across restarts
    with db.engine.connect() as conn:
        installation = conn.execute(sa.select(tables.installation.c.id)).scalar_one()
    assert first == default_client_id(str(installation), "h")


def test_a_second_live_gateway_with_the_same_id_refuses_to_start(db, settings, unique) -> None:
    prefix = f"test/{unique}/civicair/v1/devices"
    add_device(db, f"d-{unique}")
    settings = settings.model_copy(update={"direct_topic_prefix": prefix, "chirpstack_enabled": False,
                                           "tts_enabled": False, "mqtt_session_expiry_s": 30,
                                           "mqtt_client_id": None, "batch_max_age_ms": 50})
    conninfo = libpq_url(db.url)
    mqtt_v311 = not settings.mqtt_url or False
    first = start_pipeline(settings, conninfo, settings.mqtt_url, mqtt_v311=mqtt_v311)
    try:
        assert first.listener.connected.wait(10)
        assert first.listener.client_id == derive_client_id(conninfo)  # the default: derived, not fixed
        with pytest.raises(Conflict, match="held by a live gateway"):
            start_pipeline(settings, conninfo, settings.mqtt_url, mqtt_v311=mqtt_v311)
        # the first one kept its session and still receives
        publish_all(settings.mqtt_url, [(f"{prefix}/d-{unique}/up", b'{"readings": {"pm25": 4.5}}')])
        wait_until(lambda: readings(db) == [(2, 4.5)], 10, message="first gateway still stores")
        assert first.listener.connected.is_set() and not first.listener.taken_over.is_set()
    finally:
        first.stop()
    # stopped: the id is free again
    again = start_pipeline(settings, conninfo, settings.mqtt_url, mqtt_v311=mqtt_v311)
    again.stop()


def test_a_lease_left_by_a_dead_process_of_this_host_or_an_expired_one_is_taken(db) -> None:
    conninfo = libpq_url(db.url)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.gateway_leases).values(
            client_id="gone", holder="old", host=os.uname().nodename, pid=2**22 + 7,  # no such pid
            started_at=sa.func.now(), heartbeat_at=sa.func.now()))
        conn.execute(sa.insert(tables.gateway_leases).values(
            client_id="elsewhere", holder="old", host="another-host", pid=1,
            started_at=sa.func.now(), heartbeat_at=sa.func.now() - sa.text("interval '31 seconds'")))
        conn.execute(sa.insert(tables.gateway_leases).values(
            client_id="alive-elsewhere", holder="old", host="another-host", pid=1,
            started_at=sa.func.now(), heartbeat_at=sa.func.now()))
    for client_id in ("gone", "elsewhere"):
        lease = ClientIdLease(conninfo, client_id)
        lease.acquire()
        lease.release()
    with pytest.raises(Conflict, match="another-host"):
        ClientIdLease(conninfo, "alive-elsewhere").acquire()


def test_a_session_takeover_is_logged_and_not_fought_over(db, settings, unique, caplog) -> None:
    """Another client (not a civicair gateway: it holds no lease) uses our client id and keeps
    reconnecting, as paho does. This Mosquitto (2.0.11) closes the old connection without a
    reason code, so the listener sees quick drops: it says so loudly and slows down to one
    attempt per `reconnect_max_s` instead of taking the session back every second."""
    parts = urlsplit(settings.mqtt_url)
    settings = settings.model_copy(update={"direct_topic_prefix": f"test/{unique}/d", "chirpstack_enabled": False,
                                           "tts_enabled": False, "mqtt_client_id": f"takeover-{unique}"})
    pipeline = start_pipeline(settings, libpq_url(db.url), settings.mqtt_url)
    thief = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"takeover-{unique}", protocol=mqtt.MQTTv5)
    thief.reconnect_delay_set(1, 1)
    thief_connects: list[float] = []
    thief.on_connect = lambda *a: thief_connects.append(time.monotonic())
    try:
        assert pipeline.listener.connected.wait(10)
        with caplog.at_level(logging.ERROR, logger="civicair.gateway.listener"):
            thief.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=False)
            thief.loop_start()
            wait_until(lambda: pipeline.listener.takeover_suspected.is_set() or pipeline.listener.taken_over.is_set(),
                       30, message="takeover noticed")
            settled = time.monotonic()
            time.sleep(8)
        assert any("SAME CLIENT ID" in r.getMessage() or "TAKEN OVER" in r.getMessage() for r in caplog.records)
        # no more fighting: the other client keeps the session (at most one more takeover by us)
        assert len([t for t in thief_connects if t > settled]) <= 1, thief_connects
    finally:
        thief.disconnect()
        thief.loop_stop()
        pipeline.stop()


def test_a_broker_that_reports_the_takeover_stops_the_listener(caplog) -> None:
    """An MQTT v5 broker that sends DISCONNECT 0x8E "Session taken over": the listener stops
    reconnecting at once. Driven through paho's own callback
    with paho's own reason code (the broker here does not send it)."""
    import queue

    from civicair.gateway.listener import MqttListener
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    listener = MqttListener("mqtt://127.0.0.1:9", queue.Queue(), client_id="reported")
    client = listener._make_client()
    with caplog.at_level(logging.ERROR, logger="civicair.gateway.listener"):
        listener._on_disconnect(client, None, None, ReasonCode(PacketTypes.DISCONNECT, identifier=0x8E), None)
    assert listener.taken_over.is_set() and any("TAKEN OVER" in r.getMessage() for r in caplog.records)


def test_the_derived_id_is_cached_for_a_start_during_a_database_outage(db, tmp_path) -> None:
    from civicair.core.broker import free_port
    from civicair.core.errors import ServiceUnavailable

    cache = tmp_path / "mqtt_client_id"
    derived = derive_client_id(libpq_url(db.url), cache=cache)
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    assert derive_client_id(down, cache=cache) == derived
    with pytest.raises(ServiceUnavailable, match="CIVICAIR_MQTT_CLIENT_ID"):
        derive_client_id(down, cache=tmp_path / "absent")
