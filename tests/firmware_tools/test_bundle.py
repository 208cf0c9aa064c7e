"""The flash bundle: written by `civicair device bundle` (real process), checked file by file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.firmware_tools.bundle import PLACEHOLDER, build_bundle
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.firmware_tools.service import bundle_files, device_by_uid, register_device
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def make(settings: Settings, db: Database, **changes: object) -> tuple[object, object]:
    form = dict(name="kitchen window", kind="fixed", sensors=["PMS5003"], transport="mqtt", lat=48.8566,
                lon=2.3522, email="carol@example.org", owner_name="Carol Secret")
    form.update(changes)
    with db.engine.begin() as conn:
        res = register_device(conn, settings, RegistrationRequest(**form))
        row = device_by_uid(conn, res.uid)
    return res, row


def decode_qr(png: Path) -> str:
    zxingcpp = pytest.importorskip("zxingcpp")
    with Image.open(png) as img:
        found = zxingcpp.read_barcodes(img)
    assert len(found) == 1
    return str(found[0].text)


def test_cli_bundle_mqtt(settings: Settings, db: Database, tmp_path: Path) -> None:
    res, _ = make(settings, db)
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url, "CIVICAIR_PSEUDONYM_SECRET": "test-secret",
           "CIVICAIR_PUBLIC_BASE_URL": "https://air.example.org", "CIVICAIR_DEVICE_MQTT_URL": "mqtts://mq.example.org:8883"}
    out = tmp_path / "bundle"
    r = subprocess.run([sys.executable, "-m", "civicair.cli", "device", "bundle", res.uid, "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["device"]["uid"] == res.uid and config["transport"] == "mqtt"
    assert config["mqtt"] == {"host": "mq.example.org", "port": 8883, "tls": True, "username": res.uid,
                              "password": PLACEHOLDER, "topic": f"civicair/v1/devices/{res.uid}/up", "qos": 1}
    rows = list(csv.reader((out / "nvs.csv").read_text().splitlines()))
    assert rows[0] == ["key", "type", "encoding", "value"] and rows[1][:2] == ["civicair", "namespace"]
    keys = {row[0]: row for row in rows[2:]}
    assert {"uid", "transport", "interval_s", "wifi_ssid", "wifi_pass", "mqtt_host", "mqtt_port", "mqtt_user",
            "mqtt_pass", "mqtt_topic", "token"} <= set(keys)
    assert all(len(k) <= 15 and row[1] == "data" for k, row in keys.items())
    assert keys["mqtt_port"][2:] == ["u16", "8883"] and keys["uid"][3] == res.uid
    flash = (out / "FLASH.txt").read_text()
    assert "python -m esp_idf_nvs_partition_gen generate nvs.csv nvs.bin 0x6000" in flash
    assert "write_flash 0x9000 nvs.bin" in flash and "esptool.py --chip esp32" in flash
    airrohr = (out / "airrohr.txt").read_text()
    assert "Server: air.example.org" in airrohr and "Path: /v1/push/sensor-community" in airrohr
    assert f"User: {res.uid}" in airrohr and "Port: 443" in airrohr
    expected_url = f"https://air.example.org/sensors/{res.pseudonym}"
    assert decode_qr(out / "label.png") == expected_url
    svg = (out / "label.svg").read_text()
    assert res.pseudonym in svg and svg.startswith("<svg")
    readme = (out / "README.txt").read_text()
    assert "FRANÇAIS" in readme and "ENGLISH" in readme and expected_url in readme
    blob = b"".join(p.read_bytes() for p in out.iterdir())
    for private in (b"carol@example.org", b"Carol Secret", b"kitchen window", b"48.8566", b"2.3522"):
        assert private not in blob


def test_lorawan_bundle_with_fresh_keys(settings: Settings, db: Database) -> None:
    res, row = make(settings, db, transport="lorawan", dev_eui="70B3D57ED0001234")
    files = bundle_files(settings, row, res.credentials)
    config = json.loads(files["config.json"])
    lw = config["lorawan"]
    assert (lw["dev_eui"], lw["app_key"]) == ("70b3d57ed0001234", res.credentials.lorawan.app_key)
    keys = {r[0]: r for r in csv.reader(files["nvs.csv"].decode().splitlines())}
    assert keys["dev_eui"][2:] == ["hex2bin", "70b3d57ed0001234"]
    assert keys["app_key"][2:] == ["hex2bin", res.credentials.lorawan.app_key]
    # later (secrets no longer known): placeholders, never invented keys
    later = json.loads(bundle_files(settings, row)["config.json"])
    assert later["lorawan"]["app_key"] == PLACEHOLDER and later["lorawan"]["dev_eui"] == "70b3d57ed0001234"
    assert build_bundle  # the pure builder is what the API zips


def test_cli_bundle_unknown_device(db: Database, tmp_path: Path) -> None:
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url}
    r = subprocess.run([sys.executable, "-m", "civicair.cli", "device", "bundle", "ca-nope", "--out", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no device with id 'ca-nope'" in r.stderr
