"""Retention, the rollup rebuild command, /metrics over HTTP, and the worker's jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.domain import DeviceRef, LinkMeta, RawValue, RefScheme, Route, Uplink
from civicair.ingest import repository as repo
from civicair.ingest.retention import apply_retention
from civicair.ingest.worker import jobs
from civicair.ingest.writer import store_batch

from tests.conftest import REPO
from tests.ingest.helpers import add_device, direct, fixed, hourly, rows

pytestmark = pytest.mark.db

NOW = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=10, second=0, microsecond=0)


def test_retention_deletes_old_raw_readings_in_batches_and_keeps_rollups(db) -> None:
    dev = add_device(db, "r1", transport="lorawan", dev_eui="00000000000000aa")
    old = NOW - timedelta(days=40)
    with psycopg.connect(libpq_url(db.url)) as conn:
        # old data arrives as late data (clock-flagged) but is stored; then recent data
        store_batch(conn, [direct("r1", old + timedelta(minutes=i), {"pm25": 5.0}) for i in range(25)])
        up = Uplink(Route.CHIRPSTACK, DeviceRef(RefScheme.DEV_EUI, "00000000000000aa"), (RawValue("pm25", 1.0),),
                    time=old, link=LinkMeta(f_cnt=1, dedup_id="x"))
        store_batch(conn, [fixed(up)])
        store_batch(conn, [direct("r1", NOW - timedelta(hours=1), {"pm25": 7.0})])
    hourly_before = hourly(db)
    result = apply_retention(db.engine, 30, batch=10)
    if hypertable(db):  # TimescaleDB drops whole old chunks by its retention policy, later
        assert result.method == "timescaledb" and (result.readings_deleted, result.uplinks_deleted) == (0, 1)
        assert retention_days(db) == 30
        assert apply_retention(db.engine, 45).method == "timescaledb" and retention_days(db) == 45
        return
    assert result.method == "delete"
    assert (result.readings_deleted, result.uplinks_deleted) == (25, 1)
    assert rows(db, tables.readings, "device_id", "value") == [(dev, 7.0)]
    assert hourly(db) == hourly_before  # rollups are kept
    assert apply_retention(db.engine, 30).readings_deleted == 0  # idempotent


def hypertable(db) -> bool:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return repo.timescaledb_installed(conn) and repo.readings_is_hypertable(conn)


def retention_days(db) -> int:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "select extract(day from (config->>'drop_after')::interval) from timescaledb_information.jobs "
            "where proc_name = 'policy_retention' and hypertable_name = 'readings'")).scalar_one())


def test_worker_jobs_run_retention(db, settings) -> None:
    raw, kept = jobs(settings, db)
    assert (raw.name, kept.name) == ("ingest-retention", "ingest-kept-retention")
    assert raw.run().method == ("timescaledb" if hypertable(db) else "delete")
    assert kept.run().dead_letters_deleted == 0


def _cli(settings, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_rollup_rebuild_command(db, settings) -> None:
    dev = add_device(db, "c1")
    with psycopg.connect(libpq_url(db.url)) as conn:
        store_batch(conn, [direct("c1", NOW, {"pm25": 4.0}), direct("c1", NOW + timedelta(minutes=5), {"pm25": 8.0})])
    with db.engine.begin() as conn:
        conn.execute(sa.delete(tables.hourly))
    since = (NOW - timedelta(days=1)).date().isoformat()
    r = _cli(settings, "rollup", "--rebuild", "--since", since)
    assert r.returncode == 0, r.stderr
    assert "1 rows" in r.stdout + r.stderr
    h = hourly(db)[(dev, 2, NOW.replace(minute=0))]
    assert (h["n"], h["mean"]) == (2, 6.0)
    bad = _cli(settings, "rollup", "--rebuild", "--since", "yesterday")
    assert bad.returncode != 0 and "not an ISO-8601" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


def test_metrics_endpoint_reports_ingest_counters(db, live_api) -> None:
    add_device(db, "m1")
    with psycopg.connect(libpq_url(db.url)) as conn:
        store_batch(conn, [direct("m1", NOW, {"pm25": 1.0})])
    r = httpx.get(f"{live_api}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    for name in ("civicair_readings_written_total", "civicair_batch_commit_seconds_bucket",
                 "civicair_ingest_queue_depth", "civicair_spool_batches", "civicair_dead_letters_total",
                 "civicair_quarantined_total", "civicair_last_commit_timestamp_seconds",
                 "civicair_messages_received_total"):
        assert name in r.text, name
