"""Two `civicair gateway` processes share one subscription ($share/<group>/…): each stores part
of the messages, together every message exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, wait_until
from tests.gateway.support import add_device, publish_all, readings

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow]


def test_two_gateway_processes_split_a_shared_subscription(db, settings, mqtt_url, unique, tmp_path) -> None:
    dev = add_device(db, f"e-{unique}")
    prefix = f"test/{unique}/civicair/v1/devices"
    procs, logs = [], []
    for n in (1, 2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
        env.update(CIVICAIR_DATABASE_URL=db.url, CIVICAIR_MQTT_URL=mqtt_url, CIVICAIR_PSEUDONYM_SECRET="test-secret", CIVICAIR_DATA_DIR=str(tmp_path / str(n)),
                   CIVICAIR_MQTT_CLIENT_ID=f"gw{n}-{unique}", CIVICAIR_MQTT_SHARED_GROUP=f"g-{unique}",
                   CIVICAIR_MQTT_SESSION_EXPIRY_S="5", CIVICAIR_DIRECT_TOPIC_PREFIX=prefix,
                   CIVICAIR_CHIRPSTACK_ENABLED="false", CIVICAIR_TTS_ENABLED="false", CIVICAIR_LOG_LEVEL="debug")
        log = (tmp_path / f"gw{n}.log").open("w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "civicair.cli", "gateway"], cwd=REPO, env=env,
                                      stdout=log, stderr=subprocess.STDOUT))
    texts = lambda: [(tmp_path / f"gw{n}.log").read_text() for n in (1, 2)]  # noqa: E731
    try:
        wait_until(lambda: all("MQTT connected" in t for t in texts()) or any(p.poll() is not None for p in procs),
                   30, message="both gateways connected")
        assert all(p.poll() is None for p in procs), texts()
        n = 80
        publish_all(mqtt_url, [(f"{prefix}/e-{unique}/up", json.dumps(
            {"time": f"2026-01-15T11:{i // 60:02d}:{i % 60:02d}Z", "readings": {"pm25": i}}).encode())
            for i in range(n)])
        wait_until(lambda: len(readings(db, dev)) >= n, 30, message="all stored")
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for log in logs:
            log.close()
    per_process = [sum(int(m) for m in re.findall(r"batch committed messages=(\d+)", t)) for t in texts()]
    assert all(c > 0 for c in per_process), per_process
    assert sum(per_process) == n and len(readings(db, dev)) == n
