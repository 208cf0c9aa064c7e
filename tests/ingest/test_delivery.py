"""Delivery guarantees with real processes, a real broker (our own Mosquitto) and real faults:

- a gateway SIGKILLed between receive and commit: after restart the reading is stored once;
- a gateway SIGKILLed between commit and ack: the broker re-delivers (DUP), and a message
  without a time of its own is still stored once;
- the database cut by a TCP proxy: batches spool to disk, the gateway is killed and restarted
  while the database is still down, and everything replays in order exactly once;
- two gateway processes on one shared subscription split the load.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.ingest.spool import load

from tests.conftest import REPO, wait_until
from tests.ingest.helpers import add_device, hourly, rows, start_mosquitto
from tests.ingest.tcpproxy import TcpProxy

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")]

BASE = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    proc, url = start_mosquitto(tmp_path)
    yield url
    proc.terminate()
    proc.wait(10)


class Gateway:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "civicair.bench.gateway_process", *args], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert json.loads(line)["event"] == "started", line

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()  # type: ignore[union-attr]

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.proc.stdout.close()  # type: ignore[union-attr]
        return json.loads(out.strip().splitlines()[-1])


def gateway_env(settings, db_url: str, broker: str, prefix: str, client_id: str, data_dir: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update({
        "CIVICAIR_DATABASE_URL": db_url, "CIVICAIR_MQTT_URL": broker,
        "CIVICAIR_DIRECT_TOPIC_PREFIX": prefix, "CIVICAIR_MQTT_CLIENT_ID": client_id,
        "CIVICAIR_DATA_DIR": str(data_dir), "CIVICAIR_BATCH_MAX_AGE_MS": "50",
        "CIVICAIR_INGEST_RETRY_MAX_S": "0.5", "CIVICAIR_MQTT_SESSION_EXPIRY_S": "60",
        "CIVICAIR_LOG_LEVEL": "warning",
    })
    return env


class Publisher:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()

    def send(self, topic: str, t: datetime, value: float) -> None:
        body = json.dumps({"time": t.isoformat(), "readings": {"pm25": value}}).encode()
        self.client.publish(topic, body, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tear_down(pub: Publisher, gw: Gateway, proxy: TcpProxy) -> None:
    pub.close()
    if gw.proc.poll() is None:
        gw.kill()
    proxy.close()


def readings_count(db) -> int:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tables.readings)).scalar_one()


def writer_waits_on_lock(db) -> bool:  # type: ignore[no-untyped-def]
    with db.engine.connect() as probe:  # a fresh transaction: pg_stat_activity is a snapshot
        return bool(probe.execute(sa.text(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
            "and query like '%readings_stage%'")).scalar())


def spooled_messages(directory: Path) -> int:
    if not directory.exists():
        return 0  # read only: never construct a Spool here (it would clean up the writer's files)
    return sum(len(load(p) or []) for p in sorted(directory.glob("*.spool")))


def test_sigkill_between_receive_and_commit_stores_the_reading_once(db, settings, broker, unique, tmp_path) -> None:
    dev = add_device(db, "k1")
    prefix = f"test/{unique}/civicair/v1/devices"
    env = gateway_env(settings, db.url, broker, prefix, f"gw-{unique}", tmp_path / "gw")
    gw = Gateway(env)
    pub = Publisher(broker)
    try:
        pub.send(f"{prefix}/k1/up", BASE, 1.0)
        wait_until(lambda: readings_count(db) == 1, 20, message="first reading stored")
        # hold the writer between receive and commit: its insert waits on our table lock
        with db.engine.connect() as lock_conn:
            lock_conn.execute(sa.text("lock table readings in access exclusive mode"))
            pub.send(f"{prefix}/k1/up", BASE + timedelta(minutes=1), 2.0)
            wait_until(lambda: writer_waits_on_lock(db), 20, message="writer blocked on commit")
            gw.kill()
            lock_conn.rollback()
        assert readings_count(db) == 1
        gw = Gateway(env)  # same client id: the persistent session redelivers the un-acked message
        wait_until(lambda: readings_count(db) == 2, 20, message="redelivered reading stored")
        pub.send(f"{prefix}/k1/up", BASE + timedelta(minutes=2), 3.0)
        wait_until(lambda: readings_count(db) == 3, 20, message="later reading stored")
        gw.stop()
    finally:
        pub.close()
        if gw.proc.poll() is None:
            gw.kill()
    assert rows(db, tables.readings, "value") == [(1.0,), (2.0,), (3.0,)]
    assert hourly(db)[(dev, 2, BASE)]["n"] == 3


def test_sigkill_between_commit_and_ack_stores_a_timeless_message_once(db, settings, broker, unique, tmp_path) -> None:
    dev = add_device(db, "k2")
    prefix = f"test/{unique}/civicair/v1/devices"
    parts = urlsplit(broker)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 1883)
    env = gateway_env(settings, db.url, f"mqtt://127.0.0.1:{proxy.port}", prefix, f"gw-{unique}", tmp_path / "gw")
    gw = Gateway(env)
    pub = Publisher(broker)
    timeless = json.dumps({"readings": {"pm25": 7.5}}).encode()  # no time: stored at its arrival
    try:
        proxy.deafen()  # the gateway's PUBACK will not reach the broker
        pub.client.publish(f"{prefix}/k2/up", timeless, qos=1).wait_for_publish(5)
        wait_until(lambda: readings_count(db) == 1, 20, message="timeless reading stored")
        gw.kill()  # committed, never acknowledged
        proxy.restore()
        gw = Gateway(env)  # same client id: the broker re-delivers it with the DUP flag
        pub.client.publish(f"{prefix}/k2/up", json.dumps({"readings": {"pm25": 9.0}}).encode(),
                           qos=1).wait_for_publish(5)
        wait_until(lambda: readings_count(db) >= 2, 20, message="next reading stored")
        stats = gw.stop()
    finally:
        tear_down(pub, gw, proxy)
    assert sorted(v for (v,) in rows(db, tables.readings, "value")) == [7.5, 9.0]
    assert stats["uplinks_duplicate"] == 1  # the re-delivery was received, and recognised
    assert sum(h["n"] for k, h in hourly(db).items() if k[0] == dev) == 2


def test_database_outage_spools_survives_restart_and_replays_in_order(db, settings, broker, unique, tmp_path) -> None:
    dev = add_device(db, "o1")
    prefix = f"test/{unique}/civicair/v1/devices"
    u = sa.engine.make_url(db.url)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
    proxied = u.set(port=proxy.port).render_as_string(hide_password=False)
    data_dir = tmp_path / "gw"
    env = gateway_env(settings, proxied, broker, prefix, f"gw-{unique}", data_dir)
    gw = Gateway(env)
    pub = Publisher(broker)
    topic = f"{prefix}/o1/up"
    try:
        for i in range(5):
            pub.send(topic, BASE + timedelta(minutes=i), float(i))
        wait_until(lambda: readings_count(db) == 5, 20, message="first readings stored")
        proxy.cut()  # the database becomes unreachable
        for i in range(5, 10):
            pub.send(topic, BASE + timedelta(minutes=i), float(i))
        wait_until(lambda: spooled_messages(data_dir / "spool") >= 5, 30, message="batches spooled")
        gw.kill()  # process restart in the middle of the outage
        gw = Gateway(env)
        for i in range(10, 15):
            pub.send(topic, BASE + timedelta(minutes=i), float(i))
        wait_until(lambda: spooled_messages(data_dir / "spool") >= 10, 30, message="new batches join the spool (B may be there twice: at-least-once)")
        assert readings_count(db) == 5
        proxy.restore()
        wait_until(lambda: readings_count(db) == 15, 30, message="spool replayed")
        wait_until(lambda: spooled_messages(data_dir / "spool") == 0, 10, message="spool emptied")
        stats = gw.stop()
    finally:
        tear_down(pub, gw, proxy)
    assert stats["spooled"] >= 1
    assert rows(db, tables.readings, "value") == [(float(i),) for i in range(15)]
    with db.engine.connect() as conn:  # replayed in order: received_at follows publication order
        order = [r[0] for r in conn.execute(sa.select(tables.readings.c.value)
                                             .order_by(tables.readings.c.received_at, tables.readings.c.time))]
    assert order == sorted(order)
    h = hourly(db)[(dev, 2, BASE)]
    assert (h["n"], h["sum"]) == (15, float(sum(range(15))))


def test_two_gateways_share_one_subscription(db, settings, broker, unique, tmp_path) -> None:
    add_device(db, "s1")
    prefix = f"test/{unique}/civicair/v1/devices"
    gws = [Gateway(gateway_env(settings, db.url, broker, prefix, f"gw{i}-{unique}", tmp_path / f"gw{i}"),
                   "--shared-group", f"g{unique}") for i in range(2)]
    pub = Publisher(broker)
    n = 200
    try:
        for i in range(n):
            pub.send(f"{prefix}/s1/up", BASE + timedelta(seconds=i), float(i))
        wait_until(lambda: readings_count(db) == n, 30, message="all readings stored")
    finally:
        pub.close()
        stats = [g.stop() for g in gws]
    assert [s["messages"] > 0 for s in stats] == [True, True]
    assert sum(s["messages"] for s in stats) == n
    assert readings_count(db) == n
