"""`civicair device check`: the diagnosis when a message was quarantined under another id, dead-lettered,
or arrived (real process against the test database)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.firmware_tools.service import register_device

ROOT = Path(__file__).resolve().parents[2]


def make(settings: Settings, db: Database, **changes: object) -> str:
    form = dict(name="n", kind="fixed", sensors=["SDS011"], transport="lorawan", lat=45.0, lon=5.0,
                email="e@example.org", dev_eui="70b3d57ed0001234")
    form.update(changes)
    with db.engine.begin() as conn:
        return register_device(conn, settings, RegistrationRequest(**form)).uid


def check(db: Database, uid: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "civicair.cli", "device", "check", uid, "--wait", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_quarantined_under_reversed_dev_eui(settings: Settings, db: Database) -> None:
    uid = make(settings, db)
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.quarantine).values(
            source="chirpstack", topic="application/x/device/341200d07ed5b370/event/up",
            ref_scheme="dev_eui", ref_value="341200d07ed5b370", payload=b"{}"))
    r = check(db, uid)
    assert r.returncode == 1, r.stderr
    assert "verdict: quarantined_other_id" in r.stdout
    assert "bytes reversed" in r.stdout


def test_nothing_then_dead_letter_then_arrived(settings: Settings, db: Database) -> None:
    uid = make(settings, db, transport="mqtt", dev_eui=None)
    r = check(db, uid)
    assert r.returncode == 1 and "verdict: nothing" in r.stdout
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.dead_letters).values(
            source="direct", topic=f"civicair/v1/devices/{uid}/up", error="invalid JSON", payload=b"{oops"))
    r = check(db, uid)
    assert "verdict: dead_lettered" in r.stdout and "invalid JSON" in r.stdout
    with db.engine.begin() as conn:
        dev_id = conn.execute(sa.select(tables.devices.c.id)).scalar_one()
        conn.execute(sa.insert(tables.readings).values(device_id=dev_id, time=datetime.now(UTC), quantity=1,
                                                       value=9.5))
    r = check(db, uid)
    assert r.returncode == 0 and "verdict: arrived" in r.stdout, r.stdout + r.stderr


def test_looks_like_pure() -> None:
    from civicair.firmware_tools.check import DeviceIds, looks_like

    ids = DeviceIds(uid="ca-0123456789ab", transport="lorawan", expected_topic="t", dev_eui="70b3d57ed0001234",
                    chip_id="esp8266-1234567")
    assert "typo" in (looks_like(ids, "70b3d57ed0001243") or "")
    assert "differently" in (looks_like(ids, "70:B3:D5:7E:D0:00:12:34") or "")
    assert "another prefix" in (looks_like(ids, "esp32-1234567") or "")
    assert looks_like(ids, "0004a30b001c0530") is None


def test_waits_for_the_first_uplink(settings: Settings, db: Database) -> None:
    uid = make(settings, db, transport="http", dev_eui=None)
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "device", "check", uid, "--wait", "60"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with db.engine.begin() as conn:
            dev_id = conn.execute(sa.select(tables.devices.c.id)).scalar_one()
            conn.execute(sa.insert(tables.readings).values(device_id=dev_id, time=datetime.now(UTC), quantity=2,
                                                           value=17.0))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "verdict: arrived" in out and "= 17" in out
