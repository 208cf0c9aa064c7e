"""The console's health of gateways, spool and jobs: `operations_health` over the real database, a
real spool directory and a running scheduler; then a real `civicair up` process (the test
database, Mosquitto) whose /operator/health page shows its own gateway lease alive, its jobs'
runs, and a damaged spool file put beside it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.jobs import Job, Scheduler
from civicair.gateway.health import operations_health, spool_directory
from civicair.gateway.lease import TTL_S
from civicair.ingest.spool import Spool

from tests.conftest import REPO, wait_until
from tests.web.console_seed import key_with
from tests.web.test_signed_in_http import csrf

pytestmark = pytest.mark.db


def test_operations_health_reads_leases_spool_kept_messages_and_jobs(db, settings) -> None:
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.gateway_leases), [
            {"client_id": "gw-alive", "holder": "h1", "host": "here", "pid": 11, "started_at": now - timedelta(hours=1),
             "heartbeat_at": now},
            {"client_id": "gw-gone", "holder": "h2", "host": "there", "pid": 12, "started_at": now - timedelta(days=1),
             "heartbeat_at": now - timedelta(seconds=3 * TTL_S)}])
        conn.execute(sa.insert(tables.dead_letters).values(source="mqtt", topic="x", payload=b"\x00", error="e"))
    spool = Spool(spool_directory(settings))
    spool.append([1, 2, 3])
    spool.append([4])
    (spool.dir / "000000000009.corrupt").write_bytes(b"torn")

    def fails() -> None:
        raise RuntimeError("reference server unreachable")

    scheduler = Scheduler([Job("fine", 3600, lambda: None, first_delay_s=0), Job("broken", 3600, fails, first_delay_s=0)])
    scheduler.start()
    try:
        wait_until(lambda: len(scheduler.last_run) == 2, 10, message="both jobs ran")
    finally:
        scheduler.stop()
    h = operations_health(db, settings, broker={"status": "ok"}, scheduler=scheduler)
    assert [(g.client_id, g.alive) for g in h.gateways] == [("gw-alive", True), ("gw-gone", False)]
    assert (h.spool.batches, h.spool.corrupt) == (2, 1) and h.spool.bytes == sum(
        p.stat().st_size for p in spool.pending())
    assert h.dead_letters == 1 and h.quarantine == 0
    assert {j.name: j.last_error for j in h.jobs or ()} == {"fine": None, "broken": "reference server unreachable"}
    assert all(j.last_run and abs((j.last_run - now).total_seconds()) < 60 for j in h.jobs or ())
    assert h.problems == ("spool", "jobs")
    quiet = operations_health(db, settings.model_copy(update={"ingest_spool_dir": settings.data_dir / "none"}),
                              broker={"status": "down"})
    assert quiet.jobs is None and quiet.spool.batches == 0 and quiet.problems == ("broker",)


@pytest.mark.slow
def test_the_health_page_of_a_running_up_shows_its_gateway_jobs_and_spool(database_url, db, mqtt_url, tmp_path) -> None:
    port = free_port()
    client_id = f"console-test-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update(CIVICAIR_DATABASE_URL=database_url, CIVICAIR_MQTT_URL=mqtt_url, CIVICAIR_API_PORT=str(port),
               CIVICAIR_DATA_DIR=str(tmp_path / "data"), CIVICAIR_MQTT_CLIENT_ID=client_id,
               CIVICAIR_PSEUDONYM_SECRET="test-secret")
    key = key_with(db, "operator")
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "up"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=2).json().get("status") == "ok"
            except (httpx.HTTPError, ValueError):
                return proc.poll() is not None
        wait_until(healthy, 90, interval=0.5, message="up serving")
        assert proc.poll() is None, log_path.read_text()
        (Path(tmp_path / "data" / "spool")).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "spool" / "000000000001.corrupt").write_bytes(b"torn")
        with httpx.Client(base_url=base, timeout=30) as client:
            form = client.get("/operator/sign-in")
            r = client.post("/operator/sign-in", data={"api_key": key, "csrf_token": csrf(form.text)})
            assert r.status_code == 303

            def page_with_jobs_run() -> str | None:  # most jobs first run 5 s after the start
                text = client.get("/operator/health").text
                jobs = re.search(r'<table id="jobs">.*?</table>', text, re.S)
                return text if jobs and client_id in text and " UTC</td>" in jobs.group(0) else None
            text = wait_until(page_with_jobs_run, 60, interval=0.5, message="the health page shows a job's last run")
        gateways = re.search(r'<table id="gateways">.*?</table>', text, re.S).group(0)
        assert client_id in gateways and ">alive<" in gateways
        assert "MQTT broker: ok" in text and "Gateways alive: 1 of 1" in text
        assert "Spool: 0 batch(es) waiting (0 B), 1 damaged" in text
        jobs = re.search(r'<table id="jobs">.*?</table>', text, re.S).group(0)
        for name in ("ingest-retention", "ingest-kept-retention"):
            assert f"<td>{name}</td>" in jobs
        assert "The scheduler runs in another process" not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
