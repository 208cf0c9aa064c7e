"""Demo simulator for `civicair up --demo`: fixed and bike-mounted sensors around Strasbourg that
publish real MQTT messages, and two simulated reference stations.

The air is one synthetic "truth" field (diurnal PM2.5/PM10 with a slow synoptic swing, diurnal
temperature and humidity); each sensor reads it through its own gain/offset/humidity response plus
noise. Three sensors are faulty on purpose: one stuck, one drifting, one over-reading in humid
hours; two carry a Plantower PMS5003 instead of an SDS011 (no co-located PMS5003: the US-EPA
correction calibrates them) and one was installed 40 hours before the start (too little data to
judge yet), so the calibration shows every state a device can be in. History is backfilled on
start (idempotent: times lie on a fixed grid), then every sensor publishes live.

Sensors use all four ingest paths, in their real wire formats: most publish direct civicair JSON;
fixed sensors 3–6 are LoRaWAN devices seen through a simulated ChirpStack v4 (`event/up` JSON with
a civicair binary v1 payload on fPort 1), 7–8 through a simulated The Things Stack v3 (binary v1
in `frm_payload`), 9 pushes the sensor.community "custom API" body over HTTP and 10 pushes civicair
JSON to `POST /v1/push` (falling back to direct MQTT while the API is not up yet, so nothing is
lost).

Each demo device gets fresh random credentials at every start (a device token, an MQTT password),
and with the embedded broker (`per_device`) every direct-MQTT sensor logs in with its own, as a
real one must; the simulated network servers use the account the service gives them. The demo
plays the operator too: its devices are approved for publication (docs/privacy.md#publication).

Bikes ride together: 20 minutes at the start of every hour (not at night), one point every
`ride_step_s`, so their trips (10-minute gaps) close and their cell-hours reach k, in the
backfilled history as live.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import h3
import httpx
import paho.mqtt.client as mqtt
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.security import hash_secret, new_device_token, pseudonym
from civicair.core.settings import Settings
from civicair.firmware_tools.credentials import new_mqtt_password
from civicair.gateway.codecs import civicair_binary
from civicair.gateway.mosquitto_auth import hash_mosquitto_password
from sqlalchemy.dialects.postgresql import insert

log = logging.getLogger(__name__)

CENTRE = (48.5839, 7.7455)  # Strasbourg, place Kléber
STATIONS = [  # simulated, not real ATMO stations
    ("DEMO-STR-CENTRE", "Strasbourg Centre (simulated)", 48.5830, 7.7480, "urban background"),
    ("DEMO-STR-EST", "Strasbourg Est (simulated)", 48.5790, 7.7780, "urban traffic"),
]
FAULTS = {"ca-demo-fixed-18": "stuck", "ca-demo-fixed-19": "drift", "ca-demo-fixed-20": "humid"}
SENSOR_MODELS = {"ca-demo-fixed-21": ("PMS5003", "BME280"), "ca-demo-fixed-22": ("PMS5003", "BME280")}
DEFAULT_MODELS = ("SDS011", "BME280")
INSTALLED_HOURS_AGO = {"ca-demo-fixed-17": 40}  # newer than the rest: too little data to judge


@dataclass(frozen=True)
class SimSensor:
    uid: str
    kind: str
    lat: float
    lon: float
    gain: float
    offset: float
    rh_coeff: float
    local: float  # local PM excess (µg/m³)
    fault: str | None = None
    path: str = "mqtt"  # mqtt | chirpstack | tts | sensor_community | http
    models: tuple[str, ...] = DEFAULT_MODELS
    installed_hours_ago: int | None = None  # None: publishing since before the backfill


PATHS = {3: "chirpstack", 4: "chirpstack", 5: "chirpstack", 6: "chirpstack", 7: "tts", 8: "tts",
         9: "sensor_community", 10: "http"}


def dev_eui(uid: str) -> str:
    return "d3e0" + f"{int(uid.rsplit('-', 1)[1]):012x}"


def riding(t: datetime) -> bool:
    """Bikes ride the first 20 minutes of every hour, not between 01:00 and 06:00 UTC."""
    return t.minute < 20 and t.hour not in range(1, 6)


def truth(t: datetime, local: float = 0.0) -> dict[str, float]:
    """The synthetic air at time t (UTC): realistic diurnal cycles for a November city."""
    h = t.hour + t.minute / 60 + 1  # local time ≈ UTC+1
    days = t.timestamp() / 86400
    # rush-hour peaks about 2 h wide: narrower ones (1.2 h) rose faster than the calibration's
    # spike rule allows a clean sensor (robust z > 6 against its 25-h rolling median)
    traffic = math.exp(-((h - 8.5) ** 2) / 8) + 0.8 * math.exp(-((h - 19) ** 2) / 10)
    synoptic = 1 + 0.5 * math.sin(2 * math.pi * days / 5)
    pm25 = max(2.0, (8 + 10 * traffic) * synoptic + local)
    temperature = 6 + 4 * math.sin(2 * math.pi * (h - 9) / 24)
    humidity = min(98.0, max(45.0, 80 - 15 * math.sin(2 * math.pi * (h - 9) / 24) + 8 * math.sin(days)))
    return {"pm25": pm25, "pm10": pm25 * 1.6 + 3, "temperature": temperature, "humidity": humidity,
            "pressure": 1016 + 6 * math.sin(2 * math.pi * days / 7)}


def make_sensors(n_fixed: int = 22, n_mobile: int = 6, seed: int = 42) -> list[SimSensor]:
    rng = random.Random(seed)
    sensors = []
    for i in range(1, n_fixed + 1):
        if i <= 2:  # co-located with the two stations (< 50 m)
            _, _, slat, slon, _ = STATIONS[i - 1]
            lat, lon = slat + 0.0002, slon + 0.0002
        else:
            lat = CENTRE[0] + rng.uniform(-0.035, 0.035)
            lon = CENTRE[1] + rng.uniform(-0.05, 0.05)
        uid = f"ca-demo-fixed-{i:02d}"
        sensors.append(SimSensor(uid, "fixed", lat, lon, gain=rng.uniform(0.9, 1.6),
                                 offset=rng.uniform(-1, 3), rh_coeff=rng.uniform(0.02, 0.12),
                                 local=rng.uniform(0, 6), fault=FAULTS.get(uid), path=PATHS.get(i, "mqtt"),
                                 models=SENSOR_MODELS.get(uid, DEFAULT_MODELS),
                                 installed_hours_ago=INSTALLED_HOURS_AGO.get(uid)))
    for i in range(1, n_mobile + 1):
        sensors.append(SimSensor(f"ca-demo-bike-{i:02d}", "mobile", CENTRE[0], CENTRE[1],
                                 gain=rng.uniform(1.0, 1.4), offset=rng.uniform(0, 2),
                                 rh_coeff=0.05, local=0))
    return sensors


def bike_position(index: int, t: datetime) -> tuple[float, float]:
    """Bikes ride the same loop through the centre (so cells reach k devices), phase-shifted."""
    phase = (t.timestamp() / 1800 + index * 0.02) % 1.0  # one loop per 30 min
    angle = 2 * math.pi * phase
    return CENTRE[0] + 0.012 * math.sin(angle), CENTRE[1] + 0.02 * math.cos(angle)


def sensor_values(s: SimSensor, t: datetime, rng: random.Random, start: datetime) -> dict[str, float]:
    air = truth(t, s.local)
    rh = air["humidity"]
    gain = s.gain
    if s.fault == "drift":
        gain *= 1 + 0.02 * (t - start).total_seconds() / 3600 / 24 * 10  # +20 % per day
    pm25 = s.offset + gain * air["pm25"] + s.rh_coeff * max(0.0, rh - 60) * air["pm25"] / 10
    if s.fault == "humid" and rh > 75:
        pm25 *= 1 + ((rh - 75) / 10) ** 2
    pm25 = max(0.0, pm25 + rng.gauss(0, 1.0))
    values = {
        "pm25": round(pm25, 1),
        "pm10": round(max(pm25, pm25 * 1.5 + rng.gauss(0, 1.5)), 1),
        "temperature": round(air["temperature"] + rng.gauss(0, 0.2), 1),
        "humidity": round(min(100.0, rh + rng.gauss(0, 1.0)), 1),
        "pressure": round(air["pressure"] + rng.gauss(0, 0.3), 1),
    }
    if s.fault == "stuck":
        values.update(pm25=17.3, pm10=25.9)
    return values


class Simulator:
    def __init__(self, settings: Settings, db: Database, mqtt_url: str, *, per_device: bool = False,
                 interval_s: float = 10.0, backfill_hours: int = 96, step_minutes: int = 15,
                 ride_step_s: int = 30) -> None:
        self.settings = settings
        self.db = db
        self.mqtt_url = mqtt_url
        self.per_device = per_device
        self.interval_s = interval_s
        self.backfill_hours = backfill_hours
        self.step = timedelta(minutes=step_minutes)
        self.ride_step = timedelta(seconds=ride_step_s)
        self.tokens: dict[str, str] = {}  # uid → device token (fresh at every start)
        self.passwords: dict[str, str] = {}  # uid → MQTT password
        self._device_clients: dict[str, mqtt.Client] = {}
        self.sensors = make_sensors()
        self.prefix = settings.direct_topic_prefix
        self.rng = random.Random(7)
        self.started = datetime.now(UTC)
        self.start_time = self.started - timedelta(hours=backfill_hours)
        self._stop = threading.Event()
        self.backfilled = threading.Event()  # set once the history has been published
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._http: httpx.Client | None = None
        self.api_url = f"http://{settings.api_host}:{settings.api_port}"
        self.published = 0
        self.f_cnt = 0

    def summary(self) -> str:
        fixed = sum(s.kind == "fixed" for s in self.sensors)
        return (f"{fixed} fixed + {len(self.sensors) - fixed} bike sensors, {len(STATIONS)} reference stations, "
                f"faults: {', '.join(f'{k}={v}' for k, v in FAULTS.items())}")

    # --- set-up --------------------------------------------------------------------------------
    def register(self) -> None:
        secret = self.settings.pseudonym_secret.get_secret_value()
        with self.db.engine.begin() as conn:
            for s in self.sensors:
                cell = h3.latlng_to_cell(s.lat, s.lon, self.settings.h3_resolution) if s.kind == "fixed" else None
                lora = s.path in ("chirpstack", "tts")
                self.tokens[s.uid], self.passwords[s.uid] = new_device_token(), new_mqtt_password()
                secrets = {"token_hash": hash_secret(self.tokens[s.uid]),
                           "mqtt_password_hash": hash_mosquitto_password(self.passwords[s.uid])}
                stmt = insert(tables.devices).values(
                    uid=s.uid, pseudonym=pseudonym(secret, s.uid), name=f"demo {s.uid}", kind=s.kind,
                    sensor_models=list(s.models),
                    transport="lorawan" if lora else ("http" if s.path in ("sensor_community", "http") else "mqtt"),
                    lat=s.lat if s.kind == "fixed" else None,
                    lon=s.lon if s.kind == "fixed" else None, h3_cell=cell, consent_public=True,
                    owner_email=f"{s.uid}@demo.invalid", mqtt_username=s.uid,
                    dev_eui=dev_eui(s.uid) if s.path == "chirpstack" else None,
                    tts_device_id=s.uid if s.path == "tts" else None,
                    chip_id=f"esp8266-{int(s.uid.rsplit('-', 1)[1]) + 7000000}" if s.path == "sensor_community" else None,
                    publication="approved", publication_by="demo", **secrets)
                conn.execute(stmt.on_conflict_do_update(index_elements=[tables.devices.c.uid], set_={
                    **secrets, "publication": "approved"}))
            for code, name, lat, lon, kind in STATIONS:
                conn.execute(insert(tables.reference_stations).values(
                    code=code, name=name, network="civicair demo", lat=lat, lon=lon, station_type=kind,
                    pollutants=["PM2.5", "PM10"], licence=self.settings.reference_licence_name,
                    attribution="civicair demo (simulated stations)",
                ).on_conflict_do_nothing())

    def write_reference(self, since: datetime, until: datetime) -> None:
        hour = since.replace(minute=0, second=0, microsecond=0)
        rows = []
        while hour < until:
            for code, *_ in STATIONS:
                mean = truth(hour + timedelta(minutes=30), 0.5 if code.endswith("EST") else 0.0)
                rows.append({"station_code": code, "quantity": 2, "time": hour, "value": round(mean["pm25"], 1),
                             "validity": 1, "source": "demo"})
                rows.append({"station_code": code, "quantity": 3, "time": hour, "value": round(mean["pm10"], 1),
                             "validity": 1, "source": "demo"})
            hour += timedelta(hours=1)
        if rows:
            with self.db.engine.begin() as conn:
                conn.execute(insert(tables.reference_readings).on_conflict_do_nothing(), rows)

    # --- publishing ----------------------------------------------------------------------------
    def _connect(self) -> mqtt.Client:
        parts = urlsplit(self.mqtt_url)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"civicair-demo-{self.rng.randrange(10**6)}",
                             protocol=mqtt.MQTTv311)
        if parts.username:
            client.username_pw_set(parts.username, parts.password)
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(0)
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        return client

    def _client_for(self, s: SimSensor) -> mqtt.Client:
        """The sensor's own logged-in client (direct MQTT with `per_device`), else the shared one."""
        assert self._client is not None
        if not self.per_device or s.path in ("chirpstack", "tts"):
            return self._client
        client = self._device_clients.get(s.uid)
        if client is None:
            parts = urlsplit(self.mqtt_url)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{s.uid}-{self.rng.randrange(10**6)}",
                                 protocol=mqtt.MQTTv311)
            client.username_pw_set(s.uid, self.passwords[s.uid])
            client.max_inflight_messages_set(200)
            client.max_queued_messages_set(0)
            client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
            client.loop_start()
            self._device_clients[s.uid] = client
        return client

    def message(self, s: SimSensor, index: int, t: datetime) -> tuple[str, bytes]:
        doc: dict[str, Any] = {"time": t.isoformat().replace("+00:00", "Z"),
                               "readings": sensor_values(s, t, self.rng, self.start_time)}
        if s.kind == "mobile":
            lat, lon = bike_position(index, t)
            doc["location"] = {"lat": round(lat, 6), "lon": round(lon, 6)}
        return f"{self.prefix}/{s.uid}/up", json.dumps(doc).encode()

    def lorawan_message(self, s: SimSensor, t: datetime) -> tuple[str, bytes]:
        """The same reading as a ChirpStack v4 or TTS v3 uplink carrying civicair binary v1."""
        v = sensor_values(s, t, self.rng, self.start_time)
        data = civicair_binary.encode(pm25=v["pm25"], pm10=v["pm10"], temperature=v["temperature"],
                                      humidity=v["humidity"], pressure=v["pressure"],
                                      battery_v=round(3.6 + 0.4 * self.rng.random(), 2))
        self.f_cnt += 1
        stamp = t.isoformat().replace("+00:00", "Z")
        b64 = base64.b64encode(data).decode()
        rssi, snr = -70 - 50 * self.rng.random(), round(-5 + 15 * self.rng.random(), 1)
        if s.path == "chirpstack":
            eui = dev_eui(s.uid)
            doc: dict[str, Any] = {
                "deduplicationId": f"{eui}-{int(t.timestamp())}", "time": stamp,
                "deviceInfo": {"applicationName": "civicair-demo", "deviceName": s.uid, "devEui": eui},
                "fCnt": self.f_cnt, "fPort": civicair_binary.VERSION, "data": b64,
                "rxInfo": [{"gatewayId": "d3e0fffe00000001", "rssi": round(rssi), "snr": snr, "nsTime": stamp}],
            }
            return f"{self.settings.chirpstack_topic_prefix}/demo/device/{eui}/event/up", json.dumps(doc).encode()
        doc = {"end_device_ids": {"device_id": s.uid, "application_ids": {"application_id": "civicair-demo"}},
               "received_at": stamp,
               "uplink_message": {"f_port": 1, "f_cnt": self.f_cnt, "frm_payload": b64, "received_at": stamp,
                                  "rx_metadata": [{"gateway_ids": {"gateway_id": "demo-gw"},
                                                   "rssi": round(rssi), "snr": snr}]}}
        return f"{self.settings.tts_topic_prefix}/civicair-demo@civicair/devices/{s.uid}/up", json.dumps(doc).encode()

    def push(self, s: SimSensor, t: datetime) -> bool:
        """HTTP push through the running API; False when it is not reachable (caller falls back)."""
        if self._http is None:
            return False
        v = sensor_values(s, t, self.rng, self.start_time)
        stamp = t.isoformat().replace("+00:00", "Z")
        headers = {"Authorization": f"Bearer {self.tokens[s.uid]}"}
        body: dict[str, Any]
        if s.path == "sensor_community":
            chip = int(s.uid.rsplit("-", 1)[1]) + 7000000
            body = {"esp8266id": str(chip), "software_version": "NRZ-2024-135", "timestamp": stamp,
                    "sensordatavalues": [
                        {"value_type": "SDS_P1", "value": f"{v['pm10']:.2f}"},
                        {"value_type": "SDS_P2", "value": f"{v['pm25']:.2f}"},
                        {"value_type": "BME280_temperature", "value": f"{v['temperature']:.2f}"},
                        {"value_type": "BME280_pressure", "value": f"{v['pressure'] * 100:.2f}"},
                        {"value_type": "BME280_humidity", "value": f"{v['humidity']:.2f}"},
                        {"value_type": "signal", "value": "-63"}]}
            url = f"{self.api_url}/v1/push/sensor-community"
        else:
            body, url = {"time": stamp, "readings": v}, f"{self.api_url}/v1/push"
        try:
            return self._http.post(url, json=body, headers=headers).status_code == 201
        except httpx.HTTPError:
            return False

    def publish_at(self, t: datetime, *, fixed: bool = True) -> None:
        """One message of every fixed sensor (unless `fixed` is false) and of every riding bike."""
        assert self._client is not None
        for i, s in enumerate(self.sensors):
            if (s.kind == "mobile" and not riding(t)) or (s.kind == "fixed" and not fixed):
                continue
            if s.installed_hours_ago is not None and t < self.started - timedelta(hours=s.installed_hours_ago):
                continue  # not installed yet
            if s.path in ("sensor_community", "http") and self.push(s, t):
                self.published += 1
                continue
            if (s.path == "chirpstack" and self.settings.chirpstack_enabled) or (
                    s.path == "tts" and self.settings.tts_enabled):
                topic, payload = self.lorawan_message(s, t)
            else:
                topic, payload = self.message(s, i, t)
            self._client_for(s).publish(topic, payload, qos=1)
            self.published += 1

    def backfill(self) -> None:
        """The history: fixed sensors every `step`, bikes every `ride_step` while they ride (a
        15-minute step would cut every ride into one-point trips, which publish nothing)."""
        now = datetime.now(UTC)
        t = self.start_time.replace(minute=0, second=0, microsecond=0)
        self.write_reference(t, now)
        start = t
        while t < now and not self._stop.is_set():
            self.publish_at(t, fixed=(t - start) % self.step == timedelta(0))
            t += self.ride_step if riding(t) or riding(t + self.ride_step) else self.step - (t - start) % self.step

    def start(self) -> None:
        self.register()
        self._client = self._connect()
        self._http = httpx.Client(timeout=5)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per push is noise
        self.publish_at(datetime.now(UTC).replace(microsecond=0))  # data visible at once
        self._thread = threading.Thread(target=self._run, name="demo-simulator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.backfill()
            self.backfilled.set()
            last_ref = datetime.now(UTC)
            while not self._stop.wait(self.interval_s):
                now = datetime.now(UTC).replace(microsecond=0)
                self.publish_at(now)
                if now.hour != last_ref.hour:
                    self.write_reference(last_ref, now)
                    last_ref = now
        except Exception:  # noqa: BLE001 - the demo must not take the service down
            log.exception("demo simulator stopped")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for client in [self._client, *self._device_clients.values()]:
            if client is not None:
                client.disconnect()
                client.loop_stop()
        if self._http is not None:
            self._http.close()
