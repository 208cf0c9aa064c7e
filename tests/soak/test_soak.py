"""The soak test (issue 19): readings published at a steady rate through every path while the
database and the broker are restarted under them; at the end, published = stored, no duplicate,
no 500, memory flat.

Everything is test-owned: a PostgreSQL server on a free port (tests/pg_instance.py), a
`mosquitto -c` with persistence on a free port, and two civicair processes as an operator runs
them: `civicair gateway` on that Mosquitto, and `civicair up` with its embedded amqtt broker
and the API (HTTP push). Paths and what they carry:

| path | route | messages |
|---|---|---|
| Mosquitto → `civicair gateway` | direct MQTT JSON, own time | `A` devices |
| Mosquitto → `civicair gateway` | ChirpStack v4 JSON uplinks (dedup id, fCnt) | `B` devices |
| embedded amqtt → `civicair up` | direct MQTT JSON without time (stored at arrival) | `C` devices, each with its own credentials |
| HTTP → `civicair up` | `POST /v1/push`, own time; 503 retried as a client does | `D` devices |

Faults (seconds into the run, scaled to `CIVICAIR_SOAK_S`, default 240): database stopped
(fast) and started; Mosquitto stopped (SIGTERM, it saves its sessions) and started; database
killed (SIGKILL: crash recovery at start); Mosquitto and the database down together. A message
counts as published when its PUBACK (or its HTTP 201) arrived; a publisher re-sends what was
not acknowledged, as devices do. Time-less messages go only where the broker is not restarted:
a device's own re-send of a time-less message the broker had received is indistinguishable from
a new reading (docs/formats.md#duplicates), which is the device's at-least-once, not civicair's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psutil
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import create_engine
from civicair.core.migrate import upgrade
from civicair.core.security import hash_secret, pseudonym
from civicair.gateway.codecs import civicair_binary
from civicair.gateway.mosquitto_auth import hash_mosquitto_password

from tests.conftest import wait_until
from tests.pg_instance import PostgresInstance, private_dir

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow, pytest.mark.soak]

REPO = Path(__file__).resolve().parents[2]
SOAK_S = float(os.environ.get("CIVICAIR_SOAK_S", "240"))
TICK_S = 0.5  # every path publishes one message per device per tick
A, B, C, D = 8, 4, 8, 4  # devices per path


def _at(fraction: float) -> float:
    return SOAK_S * fraction


class Mosquitto:
    def __init__(self) -> None:
        self.port = free_port()
        # started as root, mosquitto runs as the `mosquitto` user: a folder it may write its
        # persistence file to, outside pytest's root (reset to mode 0700 by every session)
        root = self.root = private_dir("civicair-test-mosquitto-")
        root.chmod(0o777)
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {root}/\nautosave_interval 5\nmax_queued_messages 1000000\n"
            "max_queued_bytes 0\nmax_inflight_messages 20\nmessage_size_limit 262144\n")
        self.log = open(root / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=self.log, stderr=self.log)
        wait_until(lambda: _listening(self.port), 10, message="mosquitto listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the persistent sessions
            self.proc.wait(15)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class Tally:
    """What a publisher knows it delivered: per device, the values acknowledged."""

    acked: dict[str, set[int]] = field(default_factory=dict)
    unacked: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, device: str, seq: int) -> None:
        with self.lock:
            self.acked.setdefault(device, set()).add(seq)

    def status(self, code: int) -> None:
        with self.lock:
            self.statuses[code] = self.statuses.get(code, 0) + 1


def _mqtt_client(url: str, client_id: str, user: str | None = None, password: str | None = None) -> mqtt.Client:
    port = int(url.rsplit(":", 1)[1])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                         clean_session=False)
    if user:
        client.username_pw_set(user, password)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(0.5, 2)
    client.connect_async("127.0.0.1", port, keepalive=10)
    client.loop_start()
    return client


class MqttPublisher(threading.Thread):
    """One device family on one broker: a message per device per tick, QoS 1; a message is
    published once its PUBACK came. One that could not be sent (broker away) is sent again at
    the next tick, as a device's firmware does; paho also re-sends what was in flight when the
    connection dropped (the copies of a timed message repeat its readings' keys)."""

    def __init__(self, name: str, clients: dict[str, mqtt.Client], make: Any, stop: threading.Event,
                 tally: Tally) -> None:
        super().__init__(name=f"soak-{name}", daemon=True)
        self.clients, self.make, self.stop_event, self.tally = clients, make, stop, tally
        self.pending: list[tuple[str, int, mqtt.MQTTMessageInfo]] = []
        self.retry: list[tuple[str, int]] = []

    def _send(self, device: str, seq: int) -> None:
        topic, payload = self.make(device, seq)
        self.pending.append((device, seq, self.clients[device].publish(topic, payload, qos=1)))

    def run(self) -> None:
        seq = 0
        next_tick = time.monotonic()
        while not self.stop_event.is_set():
            retry, self.retry = self.retry, []
            for device, old in retry:
                self._send(device, old)
            for device in self.clients:
                self._send(device, seq)
            seq += 1
            self._collect()
            next_tick += TICK_S
            self.stop_event.wait(max(0.0, next_tick - time.monotonic()))

    def _collect(self) -> None:
        still = []
        for device, seq, info in self.pending:
            try:
                published = info.is_published()
            except (RuntimeError, ValueError):  # not sent: the client was not connected
                self.retry.append((device, seq))
                continue
            if published:
                self.tally.ack(device, seq)
            else:
                still.append((device, seq, info))
        self.pending = still

    def finish(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (self.pending or self.retry) and time.monotonic() < deadline:
            retry, self.retry = self.retry, []
            for device, seq in retry:
                self._send(device, seq)
            self._collect()
            time.sleep(0.2)
        self.tally.unacked += len(self.pending) + len(self.retry)


class HttpPublisher(threading.Thread):
    def __init__(self, base: str, tokens: dict[str, str], stop: threading.Event, tally: Tally, t0: datetime) -> None:
        super().__init__(name="soak-http", daemon=True)
        self.base, self.tokens, self.stop_event, self.tally, self.t0 = base, tokens, stop, tally, t0

    def run(self) -> None:
        seq = 0
        next_tick = time.monotonic()
        with httpx.Client(timeout=30) as client:
            while not self.stop_event.is_set():
                for device, token in self.tokens.items():
                    body = {"time": (self.t0 + timedelta(seconds=seq)).isoformat(),
                            "readings": {"pm25": seq % 500 / 10, "pm10": 1 + seq % 300 / 10}}
                    while True:  # a client retries what was not stored; the body is idempotent
                        try:
                            r = client.post(f"{self.base}/v1/push", json=body,
                                            headers={"Authorization": f"Bearer {token}"})
                        except httpx.HTTPError as exc:
                            self.tally.status(0)
                            self.tally.errors.append(f"{type(exc).__name__}")
                            time.sleep(0.5)
                            continue
                        self.tally.status(r.status_code)
                        if r.status_code == 201:
                            self.tally.ack(device, seq)
                            break
                        if r.status_code != 503:
                            self.tally.errors.append(f"{r.status_code} {r.text[:200]}")
                            break
                        time.sleep(0.5)
                seq += 1
                next_tick += TICK_S
                self.stop_event.wait(max(0.0, next_tick - time.monotonic()))


def _env(data: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update(CIVICAIR_DATA_DIR=str(data), CIVICAIR_PSEUDONYM_SECRET="soak-secret", CIVICAIR_LOG_LEVEL="info",
               CIVICAIR_INGEST_RETRY_MAX_S="2", CIVICAIR_BATCH_MAX_AGE_MS="100", CIVICAIR_API_DB_TIMEOUT_S="2",
               CIVICAIR_RATE_LIMIT_PER_MINUTE="1000000", CIVICAIR_DATABASE_WAIT_S="60", **values)
    return env


def _rss_mb(proc: subprocess.Popen) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 2**20


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)


def test_soak_published_equals_stored_through_restarts(tmp_path) -> None:
    pg = PostgresInstance()
    pg.start()
    url = pg.create_database("soak")
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    upgrade(engine)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    run = uuid.uuid4().hex[:6]
    devices: list[dict[str, Any]] = []
    passwords: dict[str, str] = {}
    for family, n in (("a", A), ("b", B), ("c", C), ("d", D)):
        for i in range(n):
            uid = f"soak-{family}{i}-{run}"
            row: dict[str, Any] = {"uid": uid, "pseudonym": pseudonym("soak-secret", uid), "name": uid, "kind": "fixed",
                                   "transport": {"b": "lorawan", "d": "http"}.get(family, "mqtt"),
                                   "consent_public": True, "token_hash": hash_secret(f"tok-{uid}"),
                                   "dev_eui": None, "mqtt_username": None, "mqtt_password_hash": None}
            if family == "b":
                row["dev_eui"] = f"ab{run}{i:08x}"[:16].ljust(16, "0")
            if family == "c":
                passwords[uid] = f"pw-{uid}"
                row.update(mqtt_username=uid, mqtt_password_hash=hash_mosquitto_password(passwords[uid]))
            devices.append(row)
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.devices), devices)
    uid_of = {d["uid"]: d for d in devices}
    family = {d["uid"]: d["uid"].split("-")[1][0] for d in devices}

    broker = Mosquitto()
    broker.start()
    api_port = free_port()
    gateway = _start(["gateway"], _env(tmp_path / "gw", CIVICAIR_DATABASE_URL=url, CIVICAIR_MQTT_URL=broker.url,
                                       CIVICAIR_MQTT_CLIENT_ID=f"soak-gw-{run}"), tmp_path / "gateway.log")
    up = _start(["up"], _env(tmp_path / "up", CIVICAIR_DATABASE_URL=url, CIVICAIR_API_PORT=str(api_port),
                             CIVICAIR_EMBEDDED_BROKER_PORT=str(free_port()),
                             CIVICAIR_MQTT_CLIENT_ID=f"soak-up-{run}"), tmp_path / "up.log")
    base = f"http://127.0.0.1:{api_port}"
    stop = threading.Event()
    tallies = {k: Tally() for k in "abcd"}
    publishers: list[Any] = []
    samples: dict[str, list[tuple[float, float]]] = {"gateway": [], "up": []}
    clients: list[mqtt.Client] = []
    try:
        def embedded_url() -> str | None:
            found = re.search(r"broker: embedded amqtt at (mqtt://[\d.]+:\d+)", (tmp_path / "up.log").read_text())
            return found.group(1) if found else None

        amqtt_url = wait_until(embedded_url, 90, interval=0.5, message="civicair up started its broker")
        wait_until(lambda: (httpx.get(f"{base}/health", timeout=2).json()["status"] == "ok")
                   if _listening(api_port) else False, 90, interval=0.5, message="civicair up healthy")
        wait_until(lambda: "MQTT client id" in (tmp_path / "gateway.log").read_text(), 60, message="gateway up")
        time.sleep(2)  # both gateways subscribed

        def direct(uid: str, seq: int) -> tuple[str, bytes]:
            t = t0 + timedelta(seconds=seq)
            return (f"civicair/v1/devices/{uid}/up",
                    json.dumps({"time": t.isoformat(), "readings": {"pm25": seq % 500 / 10, "pm10": 2.0}}).encode())

        def chirpstack(uid: str, seq: int) -> tuple[str, bytes]:
            eui = uid_of[uid]["dev_eui"]
            t = t0 + timedelta(seconds=seq)
            frame = civicair_binary.encode(pm25=seq % 500 / 10, pm10=3.0)
            doc = {"deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{uid}/{seq}")), "time": t.isoformat(),
                   "deviceInfo": {"devEui": eui}, "fCnt": seq % 65536, "fPort": 1,
                   "data": base64.b64encode(frame).decode(),
                   "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -100, "snr": 5.0, "nsTime": t.isoformat()}]}
            return f"application/soak/device/{eui}/event/up", json.dumps(doc).encode()

        def timeless(uid: str, seq: int) -> tuple[str, bytes]:
            return f"civicair/v1/devices/{uid}/up", json.dumps({"readings": {"pm25": seq, "pm10": 4.0}}).encode()

        shared_a = _mqtt_client(broker.url, f"soak-pub-a-{run}")
        shared_b = _mqtt_client(broker.url, f"soak-pub-b-{run}")
        clients += [shared_a, shared_b]
        per_c = {uid: _mqtt_client(amqtt_url, f"soak-pub-{uid}", uid, passwords[uid]) for uid in passwords}
        clients += list(per_c.values())
        publishers = [
            MqttPublisher("a", {u: shared_a for u in uid_of if family[u] == "a"}, direct, stop, tallies["a"]),
            MqttPublisher("b", {u: shared_b for u in uid_of if family[u] == "b"}, chirpstack, stop, tallies["b"]),
            MqttPublisher("c", per_c, timeless, stop, tallies["c"]),
            HttpPublisher(base, {u: f"tok-{u}" for u in uid_of if family[u] == "d"}, stop, tallies["d"], t0),
        ]
        start = time.monotonic()
        for p in publishers:
            p.start()

        faults = [
            (_at(0.15), "database stop", lambda: pg.stop("fast")),
            (_at(0.22), "database start", pg.start),
            (_at(0.35), "mosquitto stop", broker.stop),
            (_at(0.40), "mosquitto start", broker.start),
            (_at(0.55), "database kill -9", pg.kill),
            (_at(0.60), "database start", pg.start),
            (_at(0.72), "mosquitto and database stop", lambda: (broker.stop(), pg.stop("immediate"))),
            (_at(0.80), "mosquitto and database start", lambda: (pg.start(), broker.start())),
        ]
        done_faults: list[str] = []
        while time.monotonic() - start < SOAK_S:
            elapsed = time.monotonic() - start
            while faults and faults[0][0] <= elapsed:
                _, what, action = faults.pop(0)
                action()
                done_faults.append(f"{elapsed:.0f}s {what}")
            for name, proc in (("gateway", gateway), ("up", up)):
                assert proc.poll() is None, f"civicair {name} exited during the soak"
                samples[name].append((elapsed, _rss_mb(proc)))
            time.sleep(1.0)
        stop.set()
        for p in publishers:
            p.join(60)
        for p in publishers:
            if isinstance(p, MqttPublisher):
                p.finish(60)
        published = {k: sum(len(v) for v in t.acked.values()) for k, t in tallies.items()}

        def stored_per_device() -> dict[str, int]:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(tables.devices.c.uid, sa.func.count())
                                    .join(tables.readings, tables.readings.c.device_id == tables.devices.c.id)
                                    .group_by(tables.devices.c.uid)).all()
            return {uid: n for uid, n in rows}

        expected = {uid: 2 * len(tallies[family[uid]].acked.get(uid, ())) for uid in uid_of}
        deadline = time.monotonic() + 180  # draining the spool and the broker queues
        while stored_per_device() != expected and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(5)  # nothing more arrives afterwards: no late duplicate
        final = stored_per_device()
        with engine.connect() as conn:
            hourly_n = conn.execute(sa.select(sa.func.sum(tables.hourly.c.n + tables.hourly.c.n_flagged))).scalar()
            readings_n = conn.execute(sa.select(sa.func.count()).select_from(tables.readings)).scalar()
            uplinks_b = conn.execute(sa.select(sa.func.count()).select_from(tables.uplinks)
                                     .where(tables.uplinks.c.route == "chirpstack")).scalar()
            dead = conn.execute(sa.select(tables.dead_letters.c.error)).scalars().all()
            quarantined = conn.execute(sa.select(sa.func.count()).select_from(tables.quarantine)).scalar()
    finally:
        stop.set()
        for c in clients:
            c.disconnect()
            c.loop_stop()
        outputs = {}
        for name, proc in (("gateway", gateway), ("up", up)):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            outputs[name] = (tmp_path / f"{name}.log").read_text()
            (Path(tempfile.gettempdir()) / f"civicair-soak-{name}.log").write_text(outputs[name])  # for a post-mortem
        broker.close()
        engine.dispose()
        pg.close()

    differ = {uid: (final.get(uid, 0), n) for uid, n in expected.items() if final.get(uid, 0) != n}
    report = {"faults": done_faults, "quarantined": quarantined, "published": published, "stored_readings": readings_n,
              "stored_vs_expected": differ, "dead_letters": len(dead),
              "http_statuses": tallies["d"].statuses, "unacked": {k: t.unacked for k, t in tallies.items()},
              "rss_mb": {k: [round(v) for _, v in s[:: max(1, len(s) // 12)]] for k, s in samples.items()}}
    print(json.dumps(report))
    assert len(done_faults) == 8, report
    assert all(n > 0 for n in published.values()), report
    assert sum(t.unacked for t in tallies.values()) == 0, report
    # published = stored, per device, and nothing twice (the rollup counted each reading once)
    assert final == expected, report
    assert readings_n == sum(expected.values()) == hourly_n, report
    assert uplinks_b == published["b"], report
    assert dead == [] and quarantined == 0, (dead[:5], report)
    # 0 × 5xx but the documented 503 of a push during a database outage (retried, then stored)
    assert set(tallies["d"].statuses) <= {201, 503, 0}, report
    assert not [e for e in tallies["d"].errors if not e.startswith(("ConnectError", "ReadError", "RemoteProtocol"))], report
    for name in ("gateway", "up"):
        assert "Traceback" not in outputs[name], outputs[name][-3000:]
    # memory flat: the last fifth against the second fifth (after warm-up), both medians
    for name, s in samples.items():
        values = [v for _, v in s]
        fifth = max(1, len(values) // 5)
        early, late = statistics.median(values[fifth:2 * fifth]), statistics.median(values[-fifth:])
        assert late - early <= max(40.0, 0.25 * early), (name, early, late, report)
