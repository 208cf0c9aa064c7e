"""`civicair bench ingest`: MQTT → database throughput, latency, memory, loss, against the
ceiling (COPY of the same rows into an empty table) and the naive baseline (one autocommitted
INSERT per reading), measured in the same run.

Phase 1 (throughput): several publisher processes publish N synthetic readings (6 per message,
a mix of canonical, sensor.community and other alias spellings, pressure partly in Pa) at QoS 1
into the broker's queue for the gateway's persistent session, then the gateway process
(`python -m civicair.bench.gateway_process`; `--gateways N`: N of them on one shared subscription `$share/...`,
each with its own session) starts and the clock runs until every reading is queryable (counted
in `readings`).
Phase 2 (latency): N/5 (at most 120,000) more readings published at the target rate
(`--rate`, 20,000 readings/s); p50/p99 of publish → committed, from the gateway's commit hook.

The broker is our own `mosquitto -c` on a free port (the project config: unlimited per-client
queue) when the binary exists, else CIVICAIR_MQTT_URL.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import typer

READINGS_PER_MESSAGE = 6
NAME_SETS = (
    (("pm1", 1), ("pm25", 1), ("pm10", 1), ("temperature", 1), ("humidity", 1), ("pressure", 1)),
    (("P0", 1), ("P2", 1), ("P1", 1), ("BME280_temperature", 1), ("BME280_humidity", 1),
     ("BME280_pressure", 100)),  # sensor.community names, pressure in Pa
    (("pm1_0", 1), ("pm2_5", 1), ("pm10", 1), ("temp", 1), ("rh", 1), ("press", 1)),
)
BASE_VALUES = (6.0, 9.0, 14.0, 18.5, 62.0, 1012.0)


def mosquitto_config(port: int) -> str:
    """Broker settings that make ack-after-commit fast and lossless (docs/storage.md#broker-settings)."""
    return (f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nmax_queued_bytes 0\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def message_body(seq: int, now: float) -> bytes:
    names = NAME_SETS[seq % len(NAME_SETS)]
    jitter = (seq % 97) / 10
    readings = {name: round((base + jitter) * scale, 2)
                for (name, scale), base in zip(names, BASE_VALUES, strict=True)}
    t = datetime.fromtimestamp(now, UTC).isoformat()
    return json.dumps({"time": t, "readings": readings}).encode()


def _publisher(url: str, topics: list[str], messages: int, rate: float, start_evt, out_q) -> None:
    import paho.mqtt.client as mqtt

    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    start_evt.wait()
    t0 = time.time()
    last = None
    for i in range(messages):
        now = time.time()
        if rate > 0:
            due = t0 + i / rate
            if due > now:
                time.sleep(due - now)
                now = time.time()
        last = client.publish(topics[i % len(topics)], message_body(i, now), qos=1)
    if last is not None:
        last.wait_for_publish(120)
    t1 = time.time()
    client.disconnect()
    client.loop_stop()
    out_q.put((t0, t1, messages))


def _publish(url: str, topics: list[str], messages: int, publishers: int, rate_msgs: float) -> tuple[float, float]:
    ctx = mp.get_context("fork")
    start_evt, out_q = ctx.Event(), ctx.Queue()
    procs = []
    for p in range(publishers):
        share = messages // publishers + (1 if p < messages % publishers else 0)
        mine = topics[p::publishers]
        procs.append(ctx.Process(target=_publisher, daemon=True,
                                 args=(url, mine, share, rate_msgs / publishers if rate_msgs else 0, start_evt, out_q)))
    for pr in procs:
        pr.start()
    time.sleep(0.5)
    start_evt.set()
    results = [out_q.get(timeout=600) for _ in procs]
    for pr in procs:
        pr.join(10)
    return min(r[0] for r in results), max(r[1] for r in results)


def _count(conn, ids: list[int]) -> int:
    return int(conn.execute("select count(*) from readings where device_id = any(%s)", (ids,)).fetchone()[0])


def _wait_stored(conn, ids: list[int], expected: int, stall_s: float = 20.0) -> tuple[int, float]:
    """Poll until `expected` readings are queryable (or no progress for stall_s)."""
    last_n, last_change = -1, time.time()
    while True:
        n = _count(conn, ids)
        now = time.time()
        if n >= expected:
            return n, now
        if n != last_n:
            last_n, last_change = n, now
        elif now - last_change > stall_s:
            return n, last_change
        time.sleep(0.2)


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _ceiling_and_naive(conninfo: str, ids: list[int], naive_sample: int) -> tuple[float, float, float]:
    """(plain COPY rows/s, naive INSERT rows/s, binary COPY rows/s) for the rows the gateway
    stored, copied by a client (psycopg 3) into an empty table with the readings primary key.
    Each COPY is measured twice, best kept (the figure is noisy on a busy 2-core machine)."""
    import psycopg
    from civicair.ingest.repository import READING_TYPES

    suffix = uuid.uuid4().hex[:8]
    ceil_t, naive_t = f"bench_ceiling_{suffix}", f"bench_naive_{suffix}"
    cols = "device_id, time, quantity, value, flags, lat, lon, received_at"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(f"select {cols} from readings where device_id = any(%s)", (ids,)).fetchall()
        try:
            for t in (ceil_t, naive_t):
                conn.execute(f"create table {t} (like readings including all)")

            def copy_rate(binary: bool) -> float:
                best = float("inf")
                for _ in range(2):
                    conn.execute(f"truncate {ceil_t}")
                    t0 = time.perf_counter()
                    fmt = " (format binary)" if binary else ""
                    with conn.transaction(), conn.cursor().copy(f"copy {ceil_t} ({cols}) from stdin{fmt}") as copy:
                        if binary:
                            copy.set_types(READING_TYPES)
                        for row in rows:
                            copy.write_row(row)
                    best = min(best, time.perf_counter() - t0)
                return len(rows) / best

            plain = copy_rate(False)  # docs/targets.md#ingest: "plain COPY of the same rows"
            binary = copy_rate(True)
            sample = rows[:naive_sample]
            t0 = time.perf_counter()
            for row in sample:
                conn.execute(f"insert into {naive_t} ({cols}) values (%s,%s,%s,%s,%s,%s,%s,%s)", row)
            naive_s = time.perf_counter() - t0
        finally:
            for t in (ceil_t, naive_t):
                conn.execute(f"drop table if exists {t}")
    return plain, len(sample) / naive_s if naive_s else float("nan"), binary


def bench_ingest(
    readings: int = typer.Option(1_000_000, "--readings", help="Synthetic readings to publish (phase 1)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object as the last line."),
    publishers: int = typer.Option(3, "--publishers", help="Publisher processes (one manages ~3,500 msg/s)."),
    devices: int = typer.Option(300, "--devices", help="Synthetic devices."),
    rate: float = typer.Option(20_000, "--rate", help="Phase 2 (latency) rate in readings/s; 0 skips it."),
    gateways: int = typer.Option(1, "--gateways", min=1, max=8,
                                 help="Gateway processes; more than one share one subscription ($share/...)."),
) -> None:
    """MQTT → database ingest: readings/s, ratio to the COPY ceiling and to naive INSERTs,
    p50/p99 publish→queryable, gateway peak RSS, lost and duplicated."""
    import psycopg
    from civicair.core.console import console, fail, settings_or_exit
    from civicair.core.db import libpq_url, open_database
    from civicair.core.errors import CivicairError
    from civicair.core.migrate import upgrade
    from civicair.core.security import pseudonym

    settings = settings_or_exit()
    try:
        db = open_database(settings)
    except CivicairError as exc:
        fail(exc)
    upgrade(db.engine)
    conninfo = libpq_url(db.url)
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="civicair-bench-"))
    broker = None
    if shutil.which("mosquitto"):
        port = _free_port()
        (tmp / "mosquitto.conf").write_text(mosquitto_config(port))
        broker = subprocess.Popen(["mosquitto", "-c", str(tmp / "mosquitto.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(port)
        mqtt_url = f"mqtt://127.0.0.1:{port}"
        broker_note = f"own mosquitto on :{port} (max_queued_messages 0)"
    elif settings.mqtt_url:
        mqtt_url = settings.mqtt_url
        broker_note = f"{mqtt_url} (no mosquitto binary: its own queue limits apply)"
    else:
        fail("bench ingest needs the mosquitto binary or CIVICAIR_MQTT_URL")
    prefix = f"bench/{run}/civicair/v1/devices"
    uids = [f"bench-{run}-{i}" for i in range(devices)]
    procs: list[subprocess.Popen] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ids = [conn.execute(
                "insert into devices (uid, pseudonym, name, kind, transport) "
                "values (%s, %s, %s, 'fixed', 'mqtt') returning id",
                (u, pseudonym("bench", u), u)).fetchone()[0] for u in uids]  # type: ignore[index]
        topics = [f"{prefix}/{u}/up" for u in uids]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
        env.update({"CIVICAIR_DATABASE_URL": db.url, "CIVICAIR_MQTT_URL": mqtt_url,
                    "CIVICAIR_DIRECT_TOPIC_PREFIX": prefix, "CIVICAIR_LOG_LEVEL": "warning",
                    "CIVICAIR_BATCH_MAX_ROWS": str(settings.batch_max_rows),
                    "CIVICAIR_BATCH_MAX_AGE_MS": str(settings.batch_max_age_ms),
                    "CIVICAIR_QUEUE_MAX": str(settings.queue_max)})
        if gateways > 1:
            env["CIVICAIR_MQTT_SHARED_GROUP"] = f"bench-{run}"
        lat_files = [tmp / f"latency-{g}.json" for g in range(gateways)]
        cwd = Path(__file__).resolve().parent.parent

        def start_gateway(g: int) -> subprocess.Popen:
            own = {**env, "CIVICAIR_MQTT_CLIENT_ID": f"bench-gw-{run}-{g}", "CIVICAIR_DATA_DIR": str(tmp / f"gw{g}")}
            proc = subprocess.Popen([sys.executable, "-m", "civicair.bench.gateway_process", "--latency-file", str(lat_files[g])],
                                    env=own, stdout=subprocess.PIPE, text=True, cwd=cwd)
            started = json.loads(proc.stdout.readline() or "{}")  # type: ignore[union-attr]
            if not started.get("connected"):
                proc.kill()
                fail("the gateway process did not connect to the broker")
            return proc

        def stop_gateways(running: list[subprocess.Popen]) -> None:
            for proc in running:
                proc.send_signal(signal.SIGTERM)
            for proc in running:
                proc.communicate(timeout=60)

        messages = math.ceil(readings / READINGS_PER_MESSAGE)
        expected = messages * READINGS_PER_MESSAGE
        console.print(f"bench ingest: {expected:,} readings in {messages:,} messages, {publishers} "
                      f"publishers, {devices} devices, {gateways} gateway process(es)"
                      f"{' on one shared subscription' if gateways > 1 else ''}; broker: {broker_note}")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # phase 1: the gateways' persistent sessions exist, the gateways are stopped, the
            # broker queue is pre-loaded, then the drain is measured from the gateways' connect.
            procs = [start_gateway(g) for g in range(gateways)]
            stop_gateways(procs)
            t_first, t_pub_end = _publish(mqtt_url, topics, messages, publishers, 0)
            procs = [start_gateway(g) for g in range(gateways)]
            t_start = time.time()
            stored, t_done = _wait_stored(conn, ids, expected)
            phase1_s = t_done - t_start
            # phase 2: live publishing at the target rate, for latency
            phase2_start = time.time()
            expected2 = 0
            if rate > 0:
                messages2 = min(messages // 5, 20_000)
                expected2 = messages2 * READINGS_PER_MESSAGE
                _publish(mqtt_url, topics, messages2, max(1, publishers - 1), rate / READINGS_PER_MESSAGE)
                stored_total, _ = _wait_stored(conn, ids, expected + expected2)
            else:
                stored_total = stored
            with conn.execute("select coalesce(sum(n + n_flagged), 0) from hourly where device_id = any(%s)",
                              (ids,)) as cur:
                rolled = int(cur.fetchone()[0])  # type: ignore[index]
        peak_rss = max(_peak_rss_mb(proc.pid) for proc in procs)
        stop_gateways(procs)
        lat_all = [x for f in lat_files if f.exists() for x in json.loads(f.read_text())]
        lat2 = sorted(lat for t, lat in lat_all if t >= phase2_start)
        ceiling, naive, ceiling_binary = _ceiling_and_naive(conninfo, ids, min(5000, expected))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout:
                proc.stdout.close()
        if broker is not None:
            broker.terminate()
            broker.wait(10)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("delete from readings where device_id in (select id from devices where uid like %s)",
                         (f"bench-{run}-%",))
            conn.execute("delete from hourly where device_id in (select id from devices where uid like %s)",
                         (f"bench-{run}-%",))
            conn.execute("delete from devices where uid like %s", (f"bench-{run}-%",))
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    total_expected = expected + expected2
    lost = max(0, total_expected - stored_total)
    duplicated = max(0, stored_total - total_expected) + abs(rolled - stored_total)
    per_s = stored / phase1_s
    out = {
        "readings": expected, "messages": messages, "publishers": publishers, "gateways": gateways,
        "readings_per_s": round(per_s), "ceiling_per_s": round(ceiling), "ceiling_binary_per_s": round(ceiling_binary), "ratio_to_binary_ceiling": round(per_s / ceiling_binary, 3), "naive_per_s": round(naive),
        "ratio_to_ceiling": round(per_s / ceiling, 3), "ratio_to_naive": round(per_s / naive, 1),
        "p50_latency_s": round(pct(lat2, 0.5), 3), "p99_latency_s": round(pct(lat2, 0.99), 3),
        "latency_rate_readings_per_s": rate,
        "peak_rss_mb": round(peak_rss, 1), "lost": lost, "duplicated": duplicated,
        "publish_s": round(t_pub_end - t_first, 2), "drain_s": round(phase1_s, 2),
    }
    console.print(f"gateway:  {out['readings_per_s']:>10,} readings/s ({stored:,} readings in {phase1_s:.1f} s, "
                  f"drained from a pre-loaded broker queue; publishing took {out['publish_s']} s)")
    console.print(f"ceiling:  {out['ceiling_per_s']:>10,} readings/s (plain COPY of the same rows into an empty table; binary COPY: {out['ceiling_binary_per_s']:,}/s)")
    console.print(f"naive:    {out['naive_per_s']:>10,} readings/s (one autocommitted INSERT per reading)")
    console.print(f"ratio to ceiling {out['ratio_to_ceiling']} (to binary COPY {out['ratio_to_binary_ceiling']}), "
                  f"to naive {out['ratio_to_naive']}x")
    console.print(f"latency publish→queryable at {rate:,.0f} readings/s: p50 {out['p50_latency_s']} s, "
                  f"p99 {out['p99_latency_s']} s (live)")
    console.print(f"gateway peak RSS {out['peak_rss_mb']} MB (largest process); lost {lost}, duplicated {duplicated}")
    if json_out:
        print(json.dumps(out))
