"""The flash bundle: written by `civicair device bundle` (real process), checked file by file."""

from __future__ import annotations

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

from tests.firmware_tools.esphome_check import load

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
    config = load((out / "esphome.yaml").read_text())
    assert config["mqtt"]["broker"] == "mq.example.org" and config["mqtt"]["port"] == 8883
    assert (config["mqtt"]["username"], config["mqtt"]["password"]) == (res.uid, PLACEHOLDER)
    assert config["mqtt"]["certificate_authority"] == ("secret", "mqtt_ca_certificate")
    publish = config["interval"][0]["then"][0]["if"]["then"][0]["mqtt.publish_json"]
    assert publish["topic"] == f"civicair/v1/devices/{res.uid}/up"
    assert [s["platform"] for s in config["sensor"]] == ["pmsx003"]
    assert "mqtt_ca_certificate" in load((out / "secrets.yaml").read_text())
    flash = (out / "FLASH.txt").read_text()
    assert "esphome run esphome.yaml" in flash
    assert not (out / "config.json").exists() and not (out / "nvs.csv").exists()
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
    assert "esphome.yaml" not in files  # ESPHome has no LoRaWAN: the network server's codec stays
    keys = dict(line.split(": ", 1) for line in files["lorawan.txt"].decode().splitlines())
    assert (keys["dev_eui"], keys["app_key"]) == ("70b3d57ed0001234", res.credentials.lorawan.app_key)
    assert "function decodeUplink" in files["civicair_binary_v1.js"].decode()
    assert "civicair_encode" in files["civicair_binary_v1.h"].decode()
    # later (secrets no longer known): placeholders, never invented keys
    later = dict(line.split(": ", 1) for line in bundle_files(settings, row)["lorawan.txt"].decode().splitlines())
    assert later["app_key"] == PLACEHOLDER and later["dev_eui"] == "70b3d57ed0001234"
    assert build_bundle  # the pure builder is what the API zips


def test_cli_bundle_unknown_device(db: Database, tmp_path: Path) -> None:
    env = {**os.environ, "CIVICAIR_DATABASE_URL": db.url}
    r = subprocess.run([sys.executable, "-m", "civicair.cli", "device", "bundle", "ca-nope", "--out", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no device with id 'ca-nope'" in r.stderr
