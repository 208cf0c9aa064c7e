"""`civicair up --demo` end to end in a real process: /health is ok, GET /v1/devices lists at
least 20 demo devices with recent readings, the example zones are imported and the Strasbourg
zone publishes k-anonymous hours, the bikes' backfilled history publishes k-anonymous mobile
cells, and the embedded broker stores nothing an anonymous client publishes to a demo sensor
(issue 19 items 7, 16); Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.migrate import head_revision

from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_up_demo_serves_health_and_devices(database_url: str, db, tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    # Our database, an embedded broker (no CIVICAIR_MQTT_URL), a private data dir.
    env.update(CIVICAIR_DATABASE_URL=database_url, CIVICAIR_API_PORT=str(port),
               CIVICAIR_DATA_DIR=str(tmp_path), CIVICAIR_MQTT_CLIENT_ID=f"demo-test-{port}")
    log = (tmp_path / "up.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "up", "--demo"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def devices_with_recent_data() -> list[dict] | None:
            try:
                health = httpx.get(f"{base}/health", timeout=2).json()
                body = httpx.get(f"{base}/v1/devices", params={"limit": 1000}, timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None
            if health.get("status") != "ok":
                return None
            recent = datetime.now(UTC) - timedelta(minutes=5)
            fresh = [d for d in body["results"]
                     if d.get("last_seen") and datetime.fromisoformat(d["last_seen"]) > recent]
            return fresh if len(fresh) >= 20 else None

        fresh = wait_until(devices_with_recent_data, 60, interval=1, message="≥ 20 demo devices with recent data")
        assert len(fresh) >= 20

        def strasbourg_hours() -> list[dict] | None:
            r = httpx.get(f"{base}/v1/zones/67482/series", params={"quantity": "pm25"}, timeout=10)
            return r.json()["results"] or None if r.status_code == 200 else None

        hours = wait_until(strasbourg_hours, 60, interval=1, message="published hours of the Strasbourg zone")
        assert all(h["n_devices"] >= 3 for h in hours)

        def sensorthings_zone() -> list[dict] | None:  # numbered by the readmodel.sta_ids job
            r = httpx.get(f"{base}/sta/v1.1/Things", timeout=10, params={
                "$filter": "properties/zone_id eq '67482'",
                "$expand": "Datastreams($filter=ObservedProperty/name eq 'PM2.5';$expand=Observations($top=3))"})
            things = r.json()["value"] if r.status_code == 200 else []
            return things[0]["Datastreams"][0]["Observations"] or None if things and things[0]["Datastreams"] else None

        observations = wait_until(sensorthings_zone, 90, interval=1, message="SensorThings observations of the zone")
        assert all(o["resultQuality"]["n_devices"] >= 3 for o in observations)
        def bike_cells() -> list[dict] | None:
            r = httpx.get(f"{base}/v1/mobile/cells", timeout=10, params={
                "quantity": "pm25", "datetime_from": (datetime.now(UTC) - timedelta(days=4)).isoformat()})
            return r.json()["results"] or None if r.status_code == 200 else None

        cells = wait_until(bike_cells, 240, interval=2, message="mobile cells from the bikes' backfilled history")
        assert all(c["n_devices"] >= 3 for c in cells)

        # the probe: an anonymous `pm25: 999` to a demo sensor was stored by the embedded broker
        port_text = re.search(r"embedded amqtt at mqtt://127\.0\.0\.1:(\d+)", (tmp_path / "up.log").read_text())
        assert port_text, (tmp_path / "up.log").read_text()
        refused = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.on_connect = lambda _c, _u, _f, reason, _p: refused.append(reason.is_failure)
        client.connect("127.0.0.1", int(port_text.group(1)))
        client.loop_start()
        client.publish("civicair/v1/devices/ca-demo-fixed-11/up", b'{"readings": {"pm25": 999}}', qos=1)
        wait_until(lambda: refused, 5, message="CONNACK")
        client.loop_stop()
        assert refused == [True]
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.readings)
                                .where(tables.readings.c.value == 999)).scalar_one() == 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
        out = (tmp_path / "up.log").read_text()
    assert proc.returncode == 0, out
    assert "database: PostgreSQL" in out and "broker: embedded amqtt" in out
    # a database already at head: one line says so, not alembic's INFO lines
    assert f"database: schema at revision {head_revision()}\n" in out and "Running upgrade" not in out
    assert "stopped" in out and "Traceback" not in out
