"""Issue 19 item 7: the embedded broker (amqtt, what `civicair up` starts with nothing configured)
authenticates and authorises devices like the Mosquitto setup. The probe: a wrong password was
accepted and its reading stored; an anonymous `pm25: 999` to a demo sensor was stored. Here the
service's own wiring (`runtime.start_embedded_broker` + `start_pipeline`) runs, real MQTT clients
attack it, and only the right password on the device's own topic is stored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.firmware_tools.service import register_device, rotate_credentials

from civicair.runtime import start_embedded_broker, start_pipeline
from tests.conftest import wait_until
from tests.gateway.support import DeviceClient as Client

pytestmark = pytest.mark.db


def _count(db, table: sa.Table) -> int:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.fixture
def embedded(db, settings, unique) -> Iterator[tuple[int, str]]:  # type: ignore[no-untyped-def]
    _, broker = start_embedded_broker(settings.model_copy(update={"embedded_broker_port": 0}), db, demo=False)
    pipe = start_pipeline(settings, libpq_url(db.url), broker.gateway_url, client_id=f"gw-{unique}", mqtt_v311=True)
    try:
        assert pipe.listener.connected.wait(10)
        yield broker.broker.port, broker.gateway_url
    finally:
        pipe.stop()
        broker.broker.stop()


def _register(db, settings, name: str):  # type: ignore[no-untyped-def]
    req = RegistrationRequest(name=name, kind="fixed", sensors=["SDS011"], transport="mqtt", lat=48.58, lon=7.75,
                              email=f"{name}@example.org")
    with db.engine.begin() as conn:
        return register_device(conn, settings, req)


def test_embedded_broker_refuses_anonymous_and_wrong_passwords_and_other_topics(db, settings, embedded) -> None:
    port, gateway_url = embedded
    victim, attacker = _register(db, settings, "victim"), _register(db, settings, "attacker")
    topic = victim.credentials.mqtt_topic
    clients: list[Client] = []
    try:
        anonymous = Client(port, None, None)
        wrong = Client(port, victim.uid, "not-the-password")
        unknown = Client(port, "ca-000000000000", "whatever")
        clients += [anonymous, wrong, unknown]
        assert anonymous.refused and wrong.refused and unknown.refused
        # a gateway's username without its password is no better
        gateway_user = urlsplit(gateway_url).username
        assert gateway_user
        guess = Client(port, gateway_user, "guess")
        clients.append(guess)
        assert guess.refused

        # a registered device may log in, but publishes only under its own topic and reads nothing
        other = Client(port, attacker.credentials.mqtt_username, attacker.credentials.mqtt_password)
        clients.append(other)
        assert other.refused is False
        other.c.subscribe("#", qos=1)
        wait_until(lambda: other.suback, 5, message="SUBACK")
        assert other.suback == [128]  # refused
        other.publish(topic, {"readings": {"pm25": 999}})  # the victim's topic

        good = Client(port, victim.credentials.mqtt_username, victim.credentials.mqtt_password)
        clients.append(good)
        assert good.refused is False
        good.publish(topic, {"time": "2026-11-30T10:00:00Z", "readings": {"pm25": 12.5}})
        wait_until(lambda: _count(db, tables.readings) >= 1, 10, message="the right password's reading stored")
        time.sleep(1.0)  # anything else would have been stored by now
        with db.engine.connect() as conn:
            stored = conn.execute(sa.select(tables.readings.c.value)).scalars().all()
        assert stored == [12.5]
        assert _count(db, tables.quarantine) == 0 and _count(db, tables.dead_letters) == 0
        assert other.messages == []  # it received nobody's messages

        # a rotated password works at once; the old one no longer logs in
        with db.engine.begin() as conn:
            # the same connection: a second one, never closed, stayed idle in a transaction and
            # blocked the next test's truncate until garbage collection ran (CI hung on it)
            fresh = rotate_credentials(conn, settings, conn.execute(
                sa.select(tables.devices.c.id).where(tables.devices.c.uid == victim.uid)).scalar_one())
        old = Client(port, victim.uid, victim.credentials.mqtt_password)
        new = Client(port, victim.uid, fresh.mqtt_password)
        clients += [old, new]
        assert old.refused and new.refused is False
    finally:
        for c in clients:
            c.close()


def test_a_database_outage_keeps_known_devices_publishing_and_refuses_unknown_ones(settings, unique) -> None:
    """The soak test found it: with the database stopped, every re-check and login of the embedded
    broker raised, dropping the devices' connections (their in-flight time-less messages were then
    re-sent and stored twice). Now a connected device keeps its rights through the outage, a device
    that logged in before logs in again with its password, a wrong password and a device never seen
    are refused, and no traceback is logged."""
    import logging

    from civicair.core.broker import EmbeddedBroker, free_port
    from civicair.core.db import Database, create_engine
    from civicair.core.migrate import upgrade
    from civicair.gateway.embedded_auth import BrokerDirectory, ServiceAccount, broker_plugins

    from tests.pg_instance import PostgresInstance

    pg = PostgresInstance()
    pg.start()
    url = pg.create_database("outage")
    engine = create_engine(url)
    db = Database(url=url, read_url=url, engine=engine, read_engine=engine)
    broker = None
    clients: list[Client] = []
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("civicair.gateway.embedded_auth").addHandler(handler)
    try:
        upgrade(engine)
        known = _register(db, settings, f"known-{unique}")
        never = _register(db, settings, f"never-{unique}")
        reader = ServiceAccount("reader", "reader-pw", read=("#",))
        directory = BrokerDirectory(db, settings.direct_topic_prefix, [reader], recheck_s=0.5)
        broker = EmbeddedBroker(port=free_port(), plugins=broker_plugins(directory))
        broker.start()
        port = broker.port
        sub = Client(port, "reader", "reader-pw")
        clients.append(sub)
        sub.c.subscribe("#", qos=1)
        wait_until(lambda: sub.suback, 5, message="subscribed")
        topic = f"{settings.direct_topic_prefix}/{known.uid}/up"
        dev = Client(port, known.credentials.mqtt_username, known.credentials.mqtt_password)
        clients.append(dev)
        assert dev.refused is False
        dev.publish(topic, {"readings": {"pm25": 1}})
        wait_until(lambda: len(sub.messages) == 1, 5, message="delivered with the database up")

        pg.stop("immediate")
        time.sleep(1.0)  # past recheck_s: the next publish re-checks against a database that is down
        dev.publish(topic, {"readings": {"pm25": 2}})
        wait_until(lambda: len(sub.messages) == 2, 10, message="a connected device keeps publishing")
        assert dev.c.is_connected()
        dev.close()
        again = Client(port, known.credentials.mqtt_username, known.credentials.mqtt_password)
        clients.append(again)
        assert again.refused is False, "a known device logs in again with its password"
        again.publish(topic, {"readings": {"pm25": 3}})
        wait_until(lambda: len(sub.messages) == 3, 10, message="and publishes")
        wrong = Client(port, known.credentials.mqtt_username, "not-the-password")
        clients.append(wrong)
        assert wrong.refused is True
        stranger = Client(port, never.credentials.mqtt_username, never.credentials.mqtt_password)
        clients.append(stranger)
        assert stranger.refused is True, "a device never seen is refused while the database is down"

        pg.start()
        later = Client(port, never.credentials.mqtt_username, never.credentials.mqtt_password)
        clients.append(later)
        assert later.refused is False, "with the database back, it logs in"
        assert [json.loads(m)["readings"]["pm25"] for m in sub.messages] == [1, 2, 3]
    finally:
        logging.getLogger("civicair.gateway.embedded_auth").removeHandler(handler)
        for c in clients:
            c.close()
        if broker is not None:
            broker.stop()
        engine.dispose()
        pg.close()
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records if r.exc_info]
    assert any("database unavailable" in r.getMessage() for r in records)
