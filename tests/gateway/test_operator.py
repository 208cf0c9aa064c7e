"""Operator commands over a real database and a real Mosquitto: quarantine attach + replay,
`mosquitto sync` password/ACL files checked by a `mosquitto -c` on a free port."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import libpq_url
from civicair.gateway.mosquitto_auth import hash_mosquitto_password, verify_mosquitto_password
from civicair.ingest.writer import Inbound, store_batch

from tests.conftest import REPO, wait_until
from tests.gateway import fixtures as fx
from tests.gateway.support import add_device, make_router, readings

pytestmark = [pytest.mark.db]

UNKNOWN = "0102030405060708"


def cli(settings, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update({"CIVICAIR_DATABASE_URL": settings.database_url.get_secret_value(),
                "CIVICAIR_MQTT_URL": settings.mqtt_url, "CIVICAIR_DATA_DIR": str(settings.data_dir),
                "CIVICAIR_PSEUDONYM_SECRET": settings.pseudonym_secret.get_secret_value()})
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_quarantine_attach_and_replay(db, settings, unique) -> None:
    router = make_router(unique)
    topic = f"{router.chirpstack_prefix}/app/device/{UNKNOWN}/event/up"
    with psycopg.connect(libpq_url(db.url)) as conn:
        store_batch(conn, [Inbound("mqtt", topic, fx.chirpstack_up(UNKNOWN, fx.BINARY), datetime.now(UTC),
                                   lambda p: router.decode(topic, p))])
    with db.engine.connect() as conn:
        entry = conn.execute(sa.select(tables.quarantine.c.id)).scalar_one()
    dev = add_device(db, f"late-{unique}", transport="lorawan")
    env = {"CIVICAIR_CHIRPSTACK_TOPIC_PREFIX": router.chirpstack_prefix}

    listed = cli(settings, "quarantine", "list")
    assert listed.returncode == 0 and f"dev_eui={UNKNOWN}" in listed.stdout and "waiting" in listed.stdout
    bad = cli(settings, "quarantine", "attach", str(entry), "no-such-device")
    assert bad.returncode == 1 and "no device" in bad.stderr and "Traceback" not in bad.stderr
    ok = cli(settings, "quarantine", "attach", str(entry), f"late-{unique}", "--remember")
    assert ok.returncode == 0, ok.stderr
    replay = cli(settings, "quarantine", "replay", env_extra=env)
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 message(s): 6 reading(s)" in replay.stdout
    assert readings(db, dev) == [(1, 4.2), (2, 7.5), (3, 11.0), (6, 18.25), (7, 55.5), (8, 1008.4)]
    again = cli(settings, "quarantine", "replay", env_extra=env)
    assert "replayed 0 message(s)" in again.stdout
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(tables.devices.c.dev_eui).where(tables.devices.c.id == dev)).scalar_one() == UNKNOWN
        assert conn.execute(sa.select(tables.quarantine.c.replayed_at)).scalar_one() is not None


def test_hash_format_round_trip() -> None:
    h = hash_mosquitto_password("s3cret")
    assert h.startswith("$7$101$") and len(h.split("$")) == 5
    assert verify_mosquitto_password("s3cret", h) and not verify_mosquitto_password("wrong", h)
    assert hash_mosquitto_password("s3cret") != h  # salted


def _shipped_conf(tmp: Path, port: int, passwd: Path, acl: Path) -> Path:
    text = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    text = text.replace("/mosquitto/auth/civicair.passwd", str(passwd)).replace("/mosquitto/auth/civicair.acl", str(acl))
    text = text.replace("/mosquitto/data/", str(tmp) + "/")
    if os.geteuid() == 0:
        text += "\nuser root\n"
    conf = tmp / "mosquitto.conf"
    conf.write_text(text)
    return conf


def _shut_down(clients: list[mqtt.Client], proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Disconnect the test's clients, then stop its broker."""
    for c in clients:
        c.disconnect()
        c.loop_stop()
    proc.terminate()
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def _client(port: int, user: str, password: str, cid: str) -> tuple[mqtt.Client, object]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    result: queue.Queue = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: result.put(rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, result.get(timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto binary not installed")
def test_mosquitto_sync_files_work_with_a_real_broker(db, settings, tmp_path, unique) -> None:
    add_device(db, "ca-alice", mqtt_username="ca-alice", mqtt_password_hash=hash_mosquitto_password("alice-pw"))
    add_device(db, "ca-bob", mqtt_username="ca-bob", mqtt_password_hash=hash_mosquitto_password("bob-pw"))
    add_device(db, "ca-carol", mqtt_username="carol", mqtt_password_hash=hash_mosquitto_password("carol-pw"))
    add_device(db, "ca-bad", mqtt_username="has space", mqtt_password_hash=hash_mosquitto_password("x"))
    passwd, acl = tmp_path / "civicair.passwd", tmp_path / "civicair.acl"
    r = cli(settings, "mosquitto", "sync", "--password-file", str(passwd), "--acl-file", str(acl),
            "--gateway-user", "gw", "--gateway-password", "gw-pw",
            "--chirpstack-user", "cs", "--chirpstack-password", "cs-pw")
    assert r.returncode == 0, r.stderr
    assert "3 device(s)" in r.stdout and "skipped device ca-bad" in r.stderr
    assert "pattern write civicair/v1/devices/%u/up" in acl.read_text()
    assert "user cs\ntopic readwrite application/#" in acl.read_text()

    port = free_port()
    proc = subprocess.Popen(["mosquitto", "-c", str(_shipped_conf(tmp_path, port, passwd, acl))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    clients: list[mqtt.Client] = []
    try:
        def up() -> bool:
            try:
                with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return proc.poll() is not None
        wait_until(up, 10, message="mosquitto listening")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""

        wrong, rc = _client(port, "ca-alice", "nope", f"w-{unique}")
        clients.append(wrong)
        assert rc.is_failure
        gw, rc = _client(port, "gw", "gw-pw", f"gw-{unique}")
        clients.append(gw)
        assert not rc.is_failure
        got: list[tuple[str, bytes]] = []

        def on_message(cl, u, m) -> None:  # type: ignore[no-untyped-def]
            got.append((m.topic, m.payload))
        gw.on_message = on_message
        subscribed = threading.Event()
        gw.on_subscribe = lambda *a: subscribed.set()
        gw.subscribe("civicair/v1/devices/#", qos=1)
        assert subscribed.wait(10)
        alice, rc = _client(port, "ca-alice", "alice-pw", f"a-{unique}")
        clients.append(alice)
        assert not rc.is_failure
        carol, rc = _client(port, "carol", "carol-pw", f"c-{unique}")
        clients.append(carol)
        assert not rc.is_failure
        alice.publish("civicair/v1/devices/ca-bob/up", b"spoof", qos=1).wait_for_publish(5)
        alice.publish("civicair/v1/devices/ca-alice/up", b"own", qos=1).wait_for_publish(5)
        carol.publish("civicair/v1/devices/ca-carol/up", b"carol", qos=1).wait_for_publish(5)
        cs, rc = _client(port, "cs", "cs-pw", f"cs-{unique}")
        clients.append(cs)
        assert not rc.is_failure
        cs.publish("civicair/v1/devices/ca-alice/up", b"cs-spoof", qos=1).wait_for_publish(5)
        wait_until(lambda: len(got) >= 2, 10, message="own-topic messages delivered")
        alice.publish("civicair/v1/devices/ca-alice/up", b"marker", qos=1).wait_for_publish(5)
        wait_until(lambda: any(p == b"marker" for _, p in got), 10, message="marker delivered")
        assert sorted(got) == sorted([("civicair/v1/devices/ca-alice/up", b"own"),
                                      ("civicair/v1/devices/ca-carol/up", b"carol"),
                                      ("civicair/v1/devices/ca-alice/up", b"marker")])
    finally:
        _shut_down(clients, proc)
