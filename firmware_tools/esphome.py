"""The ESPHome configuration of a volunteer's sensor (pure: text in, text out;
docs/onboarding.md#flashing-with-esphome).

An ESP32 reads the particulate sensor (SDS011, PMS5003/7003, SPS30, SEN5x) and the climate sensor
(BME280, BMP280, SHT3x, DHT22) and sends one direct-JSON document (docs/formats.md#direct-mqtt-json)
every `interval_s`: over MQTT to the device's own topic with its own credentials, or over HTTP to
/v1/push with its device token. ESPHome has no LoRaWAN stack: a LoRaWAN device keeps its
network-server codec (the bundle's codec files), so it gets no ESPHome file.

Scalars are written as JSON strings, which YAML reads unchanged (no quoting surprise from a
password with `#` or `: `). The Wi-Fi credentials are `!secret`s of secrets.yaml.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# Wiring: UART2 for the particulate sensor, UART1 for a GPS (mobile devices), I²C on the default pins.
PM_RX, PM_TX = "GPIO16", "GPIO17"
GPS_RX, GPS_TX = "GPIO25", "GPIO26"
SDA, SCL = "GPIO21", "GPIO22"
DHT_PIN = "GPIO4"
PM_SENSORS = ("SDS011", "PMS5003", "PMS7003", "SPS30", "SEN5X")
CLIMATE_SENSORS = ("BME280", "BMP280", "SHT31", "SHT3X", "DHT22")


@dataclass(frozen=True)
class EsphomeInput:
    uid: str
    pseudonym: str
    kind: str  # fixed | mobile
    transport: str  # mqtt | http
    sensors: tuple[str, ...]
    interval_s: int
    mqtt_host: str = ""
    mqtt_port: int = 1883
    mqtt_tls: bool = False
    mqtt_username: str = ""
    mqtt_password: str = ""
    mqtt_topic: str = ""
    push_url: str = ""  # http: the API's /v1/push
    device_token: str = ""


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def node_name(uid: str) -> str:
    """ESPHome's node name: lowercase letters, digits and hyphens, at most 31 characters."""
    return ("civicair-" + re.sub(r"[^a-z0-9-]+", "-", uid.lower()).strip("-"))[:31].rstrip("-")


def _entity(key: str, ident: str, name: str) -> list[str]:
    return [f"    {key}:", f"      id: {ident}", f"      name: {_q(name)}", "      internal: true"]


def _pm(model: str, interval_s: int) -> tuple[list[str], list[str], list[str]]:
    """(uart/i2c needs, sensor lines, quantities) of one particulate sensor."""
    if model == "SDS011":
        minutes = max(1, round(interval_s / 60))  # the SDS011 sleeps between whole-minute readings
        lines = ["  - platform: sds011", "    uart_id: uart_pm", f"    update_interval: {min(minutes, 30)}min",
                 *_entity("pm_2_5", "pm25", "PM2.5"), *_entity("pm_10_0", "pm10", "PM10")]
        return ["uart_pm9600"], lines, ["pm25", "pm10"]
    if model in ("PMS5003", "PMS7003"):
        lines = ["  - platform: pmsx003", "    uart_id: uart_pm", "    type: PMSX003",
                 *_entity("pm_1_0", "pm1", "PM1"), *_entity("pm_2_5", "pm25", "PM2.5"),
                 *_entity("pm_10_0", "pm10", "PM10")]
        return ["uart_pm9600"], lines, ["pm1", "pm25", "pm10"]
    if model == "SPS30":
        lines = ["  - platform: sps30", "    address: 0x69", *_entity("pm_1_0", "pm1", "PM1"),
                 *_entity("pm_2_5", "pm25", "PM2.5"), *_entity("pm_10_0", "pm10", "PM10")]
        return ["i2c"], lines, ["pm1", "pm25", "pm10"]
    lines = ["  - platform: sen5x", "    address: 0x69", *_entity("pm_1_0", "pm1", "PM1"),
             *_entity("pm_2_5", "pm25", "PM2.5"), *_entity("pm_10_0", "pm10", "PM10")]
    return ["i2c"], lines, ["pm1", "pm25", "pm10"]


def _climate(model: str) -> tuple[list[str], list[str], list[str]]:
    t, h, p = (_entity("temperature", "temperature", "Temperature"), _entity("humidity", "humidity", "Humidity"),
               _entity("pressure", "pressure", "Pressure"))
    if model == "BME280":
        return ["i2c"], ["  - platform: bme280_i2c", "    address: 0x76", *t, *h, *p], \
            ["temperature", "humidity", "pressure"]
    if model == "BMP280":
        return ["i2c"], ["  - platform: bmp280_i2c", "    address: 0x76", *t, *p], ["temperature", "pressure"]
    if model in ("SHT31", "SHT3X"):
        return ["i2c"], ["  - platform: sht3xd", "    address: 0x44", *t, *h], ["temperature", "humidity"]
    return [], ["  - platform: dht", f"    pin: {DHT_PIN}", "    model: DHT22", *t, *h], ["temperature", "humidity"]


def _payload(quantities: list[str], mobile: bool, indent: str) -> list[str]:
    """The lambda filling `root` with the direct-JSON document."""
    body = ['auto readings = root["readings"].to<JsonObject>();']
    body += [f'if (!std::isnan(id({q}).state)) readings["{q}"] = id({q}).state;' for q in quantities]
    body += ["auto now = id(sntp_time).now();",
             'if (now.is_valid()) root["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ");']
    if mobile:
        body += ["if (!std::isnan(id(gps_lat).state) && !std::isnan(id(gps_lon).state)) {",
                 '  auto location = root["location"].to<JsonObject>();',
                 '  location["lat"] = id(gps_lat).state;', '  location["lon"] = id(gps_lon).state;', "}"]
    return [indent + line for line in body]


def _any_value(quantities: list[str]) -> str:
    return " || ".join(f"!std::isnan(id({q}).state)" for q in quantities) or "false"


def esphome_yaml(b: EsphomeInput) -> str:
    if b.transport not in ("mqtt", "http"):
        raise ValueError(f"ESPHome sends over MQTT or HTTP, not {b.transport!r}")
    needs: list[str] = []
    sensor_lines: list[str] = []
    quantities: list[str] = []
    pm = next((s for s in b.sensors if s in PM_SENSORS), None)
    climate = next((s for s in b.sensors if s in CLIMATE_SENSORS), None)
    for model, part in ((pm, _pm(pm, b.interval_s) if pm else None), (climate, _climate(climate) if climate else None)):
        if model and part:
            needs += part[0]
            sensor_lines += part[1]
            quantities += [q for q in part[2] if q not in quantities]
    skipped = [s for s in b.sensors if s not in (pm, climate)]
    mobile = b.kind == "mobile"

    out = [f"# civicair — {b.pseudonym} ({b.uid}): ESPHome configuration, written by civicair.",
           "# Flash it with `esphome run esphome.yaml` (see FLASH.txt); Wi-Fi goes into secrets.yaml.",
           "# Keep this file private: it holds the sensor's password."]
    if skipped:
        out.append(f"# Not configured here (no ESPHome component for civicair to set up): {', '.join(skipped)}")
    out += ["esphome:", f"  name: {_q(node_name(b.uid))}", f"  friendly_name: {_q('civicair ' + b.pseudonym)}",
            "esp32:", "  board: esp32dev", "  framework:", "    type: esp-idf",
            "logger:", "wifi:", "  ssid: !secret wifi_ssid", "  password: !secret wifi_password",
            "time:", "  - platform: sntp", "    id: sntp_time"]
    uarts = []
    if "uart_pm9600" in needs:
        uarts += ["  - id: uart_pm", f"    rx_pin: {PM_RX}", f"    tx_pin: {PM_TX}", "    baud_rate: 9600"]
    if mobile:
        uarts += ["  - id: uart_gps", f"    rx_pin: {GPS_RX}", f"    tx_pin: {GPS_TX}", "    baud_rate: 9600"]
    if uarts:
        out += ["uart:", *uarts]
    if "i2c" in needs:
        out += ["i2c:", f"  sda: {SDA}", f"  scl: {SCL}"]
    if mobile:
        out += ["gps:", "  uart_id: uart_gps",
                "  latitude:", "    id: gps_lat", '    name: "Latitude"', "    internal: true",
                "  longitude:", "    id: gps_lon", '    name: "Longitude"', "    internal: true"]
    if sensor_lines:
        out += ["sensor:", *sensor_lines]
    when = f"lambda: return {_any_value(quantities)};"
    if b.transport == "mqtt":
        out += ["mqtt:", f"  broker: {_q(b.mqtt_host)}", f"  port: {b.mqtt_port}",
                f"  username: {_q(b.mqtt_username)}", f"  password: {_q(b.mqtt_password)}",
                f"  client_id: {_q(b.mqtt_username)}",
                # the broker lets a device write only its own topic: no discovery, status or log topics
                "  discovery: false", f"  topic_prefix: {_q(b.mqtt_topic.rsplit('/', 1)[0])}",
                "  birth_message:", "  will_message:", "  shutdown_message:", "  log_topic:"]
        if b.mqtt_tls:  # TLS on ESP-IDF needs the broker's CA certificate (PEM), pasted into secrets.yaml
            out += ["  certificate_authority: !secret mqtt_ca_certificate"]
        action = ["            - mqtt.publish_json:", f"                topic: {_q(b.mqtt_topic)}", "                qos: 1",
                  "                payload: |-", *_payload(quantities, mobile, " " * 18)]
        condition = ["          condition:", "            and:", "              - mqtt.connected:",
                     f"              - {when}"]
    else:
        out += ["http_request:", "  timeout: 10s"]
        action = ["            - http_request.post:", f"                url: {_q(b.push_url)}",
                  "                request_headers:", f"                  Authorization: {_q('Bearer ' + b.device_token)}",
                  '                  Content-Type: "application/json"',
                  "                json: |-", *_payload(quantities, mobile, " " * 18)]
        condition = ["          condition:", "            and:", "              - wifi.connected:",
                     f"              - {when}"]
    out += ["interval:", f"  - interval: {b.interval_s}s", "    then:", "      - if:", *condition, "          then:",
            *action]
    return "\n".join(out) + "\n"


def secrets_yaml(mqtt_tls: bool = False) -> str:
    text = ("# Your Wi-Fi network: replace both values before flashing (the password has 8 characters or more).\n"
            'wifi_ssid: "YOUR-WIFI-NAME"\n'
            'wifi_password: "YOUR-WIFI-PASSWORD"\n')
    if mqtt_tls:
        text += ("# The certificate (PEM) of the authority that signed the broker's certificate, from the operator.\n"
                 "mqtt_ca_certificate: |\n  -----BEGIN CERTIFICATE-----\n  PASTE-IT-HERE\n"
                 "  -----END CERTIFICATE-----\n")
    return text
