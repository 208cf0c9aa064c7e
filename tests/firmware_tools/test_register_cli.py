"""`civicair device register` as a volunteer runs it: a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h3
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.security import hash_secret, pseudonym
from civicair.gateway.mosquitto_auth import verify_mosquitto_password

ROOT = Path(__file__).resolve().parents[2]


def run_cli(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url, "CIVICAIR_PSEUDONYM_SECRET": "test-secret"}
    return subprocess.run([sys.executable, "-m", "civicair.cli", "device", "register", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


BASE = ["--name", "balcony", "--kind", "fixed", "--sensor", "SDS011", "--sensor", "bme280",
        "--lat", "45.76", "--lon", "4.84", "--email", "alice@example.org"]


def test_register_mqtt_stores_hashes_only(db: Database) -> None:
    r = run_cli(db, *BASE, "--transport", "mqtt", "--chip-id", "esp8266-1234567", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    creds = res["credentials"]
    assert res["pseudonym"] == pseudonym("test-secret", res["uid"])
    assert res["h3_cell"] == h3.latlng_to_cell(45.76, 4.84, 9)
    assert creds["mqtt_username"] == res["uid"]
    assert creds["mqtt_topic"] == f"civicair/v1/devices/{res['uid']}/up"
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.devices).where(tables.devices.c.uid == res["uid"])).one()
    assert row.token_hash == hash_secret(creds["device_token"])
    assert verify_mosquitto_password(creds["mqtt_password"], row.mqtt_password_hash)
    assert not verify_mosquitto_password(creds["mqtt_password"] + "x", row.mqtt_password_hash)
    assert row.mqtt_password_hash.startswith("$7$101$")
    assert creds["mqtt_password"] not in str(row._mapping)
    assert row.sensor_models == ["SDS011", "BME280"] and row.chip_id == "esp8266-1234567"
    assert row.owner_email == "alice@example.org" and row.lat == 45.76


def test_register_lorawan_normalises_and_rejects_duplicate(db: Database) -> None:
    r = run_cli(db, *BASE, "--transport", "lorawan", "--dev-eui", "70-B3-D5-7E-D0-00-12-34", "--json")
    assert r.returncode == 0, r.stderr
    keys = json.loads(r.stdout)["credentials"]["lorawan"]
    assert keys["dev_eui"] == "70b3d57ed0001234"
    assert len(keys["app_key"]) == 32 and int(keys["app_key"], 16) >= 0
    again = run_cli(db, *BASE, "--transport", "lorawan", "--dev-eui", "70b3d57ed0001234")
    assert again.returncode == 1
    assert "70b3d57ed0001234 is already registered" in again.stderr
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one() == 1


def test_register_generates_dev_eui_and_human_output(db: Database) -> None:
    r = run_cli(db, *BASE, "--transport", "lorawan")
    assert r.returncode == 0, r.stderr
    assert "AppKey:" in r.stdout and "shown only once" in r.stdout
    with db.engine.connect() as conn:
        eui = conn.execute(sa.select(tables.devices.c.dev_eui)).scalar_one()
    assert len(eui) == 16 and int(eui[:2], 16) & 0x02


def test_bad_input_is_one_clear_line(db: Database) -> None:
    cases = [
        (["--lat", "91"], "lat"),
        (["--email", "not-an-email"], "email"),
        (["--dev-eui", "12345"], "16 hexadecimal"),
        (["--sensor", "XYZ123"], "unknown sensor model"),
        (["--kind", "flying"], "kind"),
    ]
    for override, needle in cases:
        args = list(BASE) + ["--transport", "lorawan"]
        for i in range(0, len(override), 2):
            if override[i] in args and override[i] != "--sensor":
                args[args.index(override[i]) + 1] = override[i + 1]
            else:
                args += override[i:i + 2]
        r = run_cli(db, *args)
        assert r.returncode == 1, (override, r.stdout)
        assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one() == 0
