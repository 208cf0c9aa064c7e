"""The bundle's ESPHome configuration passes ESPHome's own `esphome config` (offline, from
.venv-esphome): for every particulate + climate sensor pair, fixed and bike, MQTT and HTTP, with
the device's real credentials from a registration; and `esphome config` does fail on a broken one,
so the passes mean something. The document the firmware sends is the one the gateway decodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.firmware_tools.bundle import PLACEHOLDER
from civicair.firmware_tools.esphome import EsphomeInput, esphome_yaml, node_name, secrets_yaml
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.firmware_tools.service import bundle_files, device_by_uid, register_device
from civicair.gateway.formats.direct import decode_direct_json

from tests.firmware_tools.esphome_check import esphome_config, load

CASES = [("SDS011", "BME280", "mqtt", "fixed"), ("PMS5003", "SHT3X", "mqtt", "mobile"),
         ("SPS30", "DHT22", "http", "fixed"), ("SEN5X", "BMP280", "http", "mobile"),
         ("PMS7003", "SHT31", "mqtt", "fixed")]


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.db
@pytest.mark.parametrize(("pm", "climate", "transport", "kind"), CASES)
def test_the_bundle_of_a_registered_device_passes_esphome_config(
        settings: Settings, db: Database, tmp_path: Path, pm: str, climate: str, transport: str, kind: str) -> None:
    settings.device_mqtt_url, settings.public_base_url = "mqtts://mqtt.example.org:8883", "https://air.example.org"
    with db.engine.begin() as conn:
        res = register_device(conn, settings, RegistrationRequest(
            name="n", kind=kind, sensors=[pm, climate, "MICS6814"], transport=transport, lat=48.58, lon=7.75,
            email="e@example.org"))
        row = device_by_uid(conn, res.uid)
    folder = write(tmp_path / "bundle", bundle_files(settings, row, res.credentials))
    r = esphome_config(folder)
    assert r.returncode == 0 and "Configuration is valid!" in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    config = load((folder / "esphome.yaml").read_bytes())
    text = (folder / "esphome.yaml").read_text()
    assert "MICS6814" in text.splitlines()[3]  # said, not silently dropped
    assert PLACEHOLDER not in text
    if transport == "mqtt":
        mqtt = config["mqtt"]
        assert (mqtt["broker"], mqtt["port"], mqtt["username"], mqtt["password"]) == (
            "mqtt.example.org", 8883, res.credentials.mqtt_username, res.credentials.mqtt_password)
        action = config["interval"][0]["then"][0]["if"]["then"][0]["mqtt.publish_json"]
        assert action["topic"] == res.credentials.mqtt_topic == f"civicair/v1/devices/{res.uid}/up"
        assert mqtt["discovery"] is False and mqtt["birth_message"] is None  # the ACL allows only that topic
    else:
        action = config["interval"][0]["then"][0]["if"]["then"][0]["http_request.post"]
        assert action["url"] == "https://air.example.org/v1/push"
        assert action["request_headers"]["Authorization"] == f"Bearer {res.credentials.device_token}"
    assert config["interval"][0]["interval"] == f"{settings.device_interval_s}s"
    assert ("gps" in config) == (kind == "mobile")


def test_esphome_config_refuses_a_broken_configuration(tmp_path: Path) -> None:
    b = EsphomeInput(uid="ca-1", pseudonym="p", kind="fixed", transport="mqtt", sensors=("SDS011",), interval_s=150,
                     mqtt_host="h", mqtt_username="ca-1", mqtt_password="pw", mqtt_topic="civicair/v1/devices/ca-1/up")
    folder = write(tmp_path / "no-secrets", {"esphome.yaml": esphome_yaml(b).encode()})
    assert esphome_config(folder).returncode != 0  # the Wi-Fi secrets are missing
    broken = esphome_yaml(b).replace("platform: sds011", "platform: sds0011")
    folder = write(tmp_path / "typo", {"esphome.yaml": broken.encode(), "secrets.yaml": secrets_yaml().encode()})
    r = esphome_config(folder)
    assert r.returncode != 0 and "sds0011" in r.stdout + r.stderr


def test_the_payload_the_firmware_builds_is_a_document_the_gateway_decodes() -> None:
    """The lambda's statements, replayed on known values (a C++ JSON builder's assignments are
    plain key paths), give the direct-JSON document the gateway accepts."""
    b = EsphomeInput(uid="ca-2", pseudonym="p", kind="mobile", transport="mqtt", sensors=("PMS5003", "BME280"),
                     interval_s=150, mqtt_topic="civicair/v1/devices/ca-2/up")
    text = esphome_yaml(b)
    values = {"pm1": 3.5, "pm25": 12.25, "pm10": 20.0, "temperature": 21.5, "humidity": 55.0, "pressure": 1013.2,
              "gps_lat": 48.58, "gps_lon": 7.75}
    doc: dict = {"readings": {}, "location": {}}
    for key, ident in re.findall(r'readings\["(\w+)"\] = id\((\w+)\)\.state', text):
        doc["readings"][key] = values[ident]
    for key, ident in re.findall(r'location\["(\w+)"\] = id\((\w+)\)\.state', text):
        doc["location"][key] = values[ident]
    doc["time"] = "2026-12-01T10:00:00Z"
    assert '.strftime("%Y-%m-%dT%H:%M:%SZ")' in text
    uplink = decode_direct_json("ca-2", json.dumps(doc).encode())
    assert {v.name: v.value for v in uplink.values} == {k: values[k] for k in
                                                        ("pm1", "pm25", "pm10", "temperature", "humidity", "pressure")}
    assert uplink.position is not None and (uplink.position.lat, uplink.position.lon) == (48.58, 7.75)


def test_node_names_follow_esphome_rules() -> None:
    for uid in ("ca-0123456789abcdef0123456789", "CA_weird uid!", "ca-1"):
        name = node_name(uid)
        assert re.fullmatch(r"[a-z0-9-]{1,31}", name) and not name.endswith("-"), name
