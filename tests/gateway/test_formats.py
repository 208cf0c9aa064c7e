"""Pure format tests: published wire formats → Uplink, and hypothesis fuzz of every parser."""

from __future__ import annotations

import base64
import json
import math

import pytest
from chirpstack_api import integration
from civicair.core.domain import RefScheme, Route
from civicair.core.errors import InvalidPayload
from civicair.gateway.formats.chirpstack import decode_chirpstack_status, decode_chirpstack_uplink
from civicair.gateway.formats.decoded import read_decoded_object
from civicair.gateway.formats.direct import decode_direct_json
from civicair.gateway.formats.sensor_community import decode_sensor_community
from civicair.gateway.formats.tts import decode_tts_uplink
from civicair.gateway.routing import TopicRouter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway import fixtures as fx

EUI = "70b3d57ba0003bb8"


def test_shared_chirpstack_fixture_envelope(shared_data) -> None:
    raw = (shared_data / "chirpstack_v4_up_decentlab_dl-pm.json").read_bytes()
    doc = json.loads(raw)
    # fPort 1 is civicair binary v1 here; a Decentlab frame (version byte 2) is not ours and
    # has no `object`: it is unparseable → dead letter (checked end-to-end in test_pipeline).
    with pytest.raises(InvalidPayload, match="binary v1"):
        decode_chirpstack_uplink(raw)
    # with the network server's decoded object, the same envelope is used as is
    doc["object"] = {"pm1": 3.7, "pm2_5": 3.9, "pm10": 3.9, "air_temperature": 24.357,
                     "air_humidity": 41.63, "barometric_pressure": 96800, "battery_voltage": 3.109}
    up = decode_chirpstack_uplink(json.dumps(doc).encode())
    assert up.device.scheme is RefScheme.DEV_EUI and up.device.value == "70b3d57ba0003bb8"
    assert up.link.f_cnt == 20 and up.link.f_port == 1 and up.link.rssi == -106 and up.link.snr == 3.0
    assert up.link.gateway_count == 1 and up.link.dedup_id == "ede7dfc1-a1f5-418c-b009-dc57ebcf0895"
    assert up.link.ns_time is not None and up.link.ns_time.isoformat() == "2024-11-10T12:51:50+00:00"
    assert up.battery_v == 3.109 and up.raw == base64.b64decode(doc["data"])
    assert {v.name: v.value for v in up.values}["pm2_5"] == 3.9


def test_shared_tts_fixture_envelope(shared_data) -> None:
    raw = (shared_data / "tts_v3_up_decentlab_dl-pm.json").read_bytes()
    with pytest.raises(InvalidPayload, match="binary v1"):
        decode_tts_uplink(raw)
    doc = json.loads(raw)
    doc["uplink_message"]["decoded_payload"] = {"pm2_5": 3.9}
    up = decode_tts_uplink(json.dumps(doc).encode())
    assert up.device.value == "70b3d57ba0000bce" and up.route is Route.TTS
    assert (up.link.f_cnt, up.link.f_port, up.link.rssi, up.link.snr, up.link.gateway_count) == (101, 1, -16, 8.5, 1)
    assert up.link.ns_time is not None and up.link.ns_time.microsecond == 234172
    assert up.link.dedup_id == "as:up:01E0CY8V864TP36Q130RSQQJBY"


def test_chirpstack_binary_best_gateway_and_metadata() -> None:
    up = decode_chirpstack_uplink(fx.chirpstack_up(EUI, fx.BINARY, f_cnt=42))
    assert [(v.name, v.value) for v in up.values] == [
        ("pm1", 4.2), ("pm25", 7.5), ("pm10", 11.0), ("temperature", 18.25), ("humidity", 55.5), ("pressure", 1008.4)]
    assert (up.link.rssi, up.link.snr, up.link.gateway_count, up.link.f_cnt) == (-95, 7.25, 2, 42)
    assert up.battery_v == 3.71 and up.raw == fx.BINARY and up.time is None


def test_chirpstack_missing_fcnt_and_null_fields() -> None:
    raw = fx.chirpstack_up(EUI, fx.CAYENNE, f_port=2, drop=("fCnt", "rxInfo", "time", "txInfo"))
    doc = json.loads(raw)
    doc.update({"dr": None, "devAddr": None, "object": None, "deduplicationId": None, "confirmed": None})
    up = decode_chirpstack_uplink(json.dumps(doc).encode())
    assert up.link.f_cnt == 0  # proto3 JSON omits zero: the first uplink
    assert up.link.rssi is None and up.link.gateway_count is None and up.link.dedup_id is None
    assert {v.name for v in up.values} >= {"pm25", "pm10", "temperature", "humidity", "pressure"}
    doc["fCnt"] = None
    assert decode_chirpstack_uplink(json.dumps(doc).encode()).link.f_cnt is None


def test_chirpstack_without_data_is_metadata_only() -> None:
    up = decode_chirpstack_uplink(fx.chirpstack_up(EUI, None, f_port=None))
    assert up.values == () and up.link.f_port is None


def test_chirpstack_protobuf_equals_json() -> None:
    ev = integration.UplinkEvent()
    ev.deduplication_id = "7c1e8f2a-1111-2222-3333-444455556666"
    ev.device_info.dev_eui = EUI.upper()
    ev.f_cnt, ev.f_port, ev.data = 9, 1, fx.BINARY
    ev.time.FromJsonString("2026-01-15T10:00:00Z")
    for rssi, snr, gid in ((-120, -7.0, "aa00000000000001"), (-99, 2.5, "aa00000000000002")):
        rx = ev.rx_info.add()
        rx.rssi, rx.snr, rx.gateway_id = rssi, snr, gid
    up = decode_chirpstack_uplink(ev.SerializeToString(), marshaler="protobuf")
    auto = decode_chirpstack_uplink(ev.SerializeToString())
    assert up == auto
    assert up.device.value == EUI and up.link.f_cnt == 9 and (up.link.rssi, up.link.snr) == (-99, 2.5)
    assert up.link.gateway_count == 2 and up.raw == fx.BINARY and len(up.values) == 6


def test_chirpstack_status_battery_json_and_protobuf() -> None:
    assert decode_chirpstack_status(fx.chirpstack_status(EUI, 87.5)).battery_pct == 87.5
    assert decode_chirpstack_status(fx.chirpstack_status(EUI, None)).battery_pct is None
    ev = integration.StatusEvent()
    ev.device_info.dev_eui = EUI
    ev.battery_level = 42.0
    up = decode_chirpstack_status(ev.SerializeToString())
    assert up.battery_pct == 42.0 and up.values == () and up.link.dedup_id is None


def test_tts_omitted_zero_fields_and_device_id_ref() -> None:
    up = decode_tts_uplink(fx.tts_up("bike-07", fx.MOBILE_BINARY, f_cnt=0))
    assert up.device.scheme is RefScheme.TTS_ID and up.device.value == "bike-07"
    assert up.link.f_cnt == 0 and up.link.rssi == -101 and up.link.snr == 6.5
    assert up.position is not None and (up.position.lat, up.position.lon, up.position.alt) == (52.0907, 5.1214, 12)
    up = decode_tts_uplink(fx.tts_up("x", None, dev_eui=EUI, f_cnt=3,
                                     decoded={"temperature_1": 20.5, "relative_humidity_2": 40,
                                              "gps_3": {"latitude": 1.5, "longitude": 2.5, "altitude": 3}}))
    assert up.device.scheme is RefScheme.DEV_EUI and up.device.value == EUI
    assert [(v.name, v.value) for v in up.values] == [("temperature", 20.5), ("humidity", 40)]
    assert up.position is not None and up.position.lat == 1.5


def test_decoded_object_chirpstack_cayenne_shape() -> None:
    d = read_decoded_object({"temperatureSensor": {"3": 27.2}, "humiditySensor": {"5": 55},
                             "gpsLocation": {"1": {"latitude": 48.1, "longitude": 7.2, "altitude": 10}},
                             "name": "x", "flag": True, "nan": math.inf, "voltage": 3.3})
    assert [(v.name, v.value) for v in d.values] == [("temperature", 27.2), ("humidity", 55)]
    assert d.position is not None and d.position.lat == 48.1 and d.battery_v == 3.3


def test_sensor_community_pin_semantics() -> None:
    body = json.dumps({"software_version": "NRZ-2024-135", "sensordatavalues": [
        {"value_type": "P1", "value": "1"}, {"value_type": "temperature", "value": "20"},
        {"value_type": "pressure", "value": "101325"}]}).encode()
    up = decode_sensor_community(body, {"x-sensor": "esp8266-77", "x-pin": "3"})
    assert up.device.value == "esp8266-77"
    assert [(v.name, v.value, v.unit) for v in up.values] == [("temperature", 20.0, "°C"), ("pressure", 1013.25, "hPa")]
    gps = json.dumps({"sensordatavalues": [{"value_type": "lat", "value": "48.5"}, {"value_type": "lon", "value": "7.7"},
                                           {"value_type": "height", "value": "150"}],
                      "timestamp": "2026-01-02T03:04:05Z"}).encode()
    up = decode_sensor_community(gps, {"sensor": "esp32-AB12", "x-pin": "9"})
    assert up.position is not None and up.position.alt == 150 and up.time is not None
    with pytest.raises(InvalidPayload):
        decode_sensor_community(body, {"x-sensor": "esp8266-77", "x-pin": "2"})
    with pytest.raises(InvalidPayload):
        decode_sensor_community(body, {"x-sensor": "raspi-1"})


def test_router_topics_and_from_settings(settings) -> None:
    r = TopicRouter.from_settings(settings)
    assert r.subscriptions("civicair") == [
        "$share/civicair/application/+/device/+/event/up", "$share/civicair/application/+/device/+/event/status",
        "$share/civicair/v3/+/devices/+/up", "$share/civicair/civicair/v1/devices/+/up"]
    assert r.source_for(f"application/abc/device/{EUI}/event/up") == "chirpstack"
    assert r.source_for("v3/app@ttn/devices/dev1/up") == "tts"
    assert r.decode("v3/app@ttn/devices/dev1/up", fx.tts_up("dev1", fx.BINARY)).device.value == "dev1"
    off = TopicRouter.from_settings(settings.model_copy(update={"tts_enabled": False, "chirpstack_enabled": False}))
    assert off.subscriptions() == ["civicair/v1/devices/+/up"]
    for bad in ("v3/app/devices/dev1/down", f"application/a/device/{EUI}/event/join", "other/x/up",
                "civicair/v1/devices//up", "civicair/v1/devices/a/b/up"):
        with pytest.raises(InvalidPayload):
            r.decoder_for(bad)


# --- fuzz: only InvalidPayload may escape a parser ---------------------------------------------
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
                           max_leaves=20)
FIELDS_CS = ["deduplicationId", "time", "deviceInfo", "fCnt", "fPort", "data", "object", "rxInfo"]
FIELDS_TTS = ["end_device_ids", "uplink_message", "received_at", "correlation_ids"]


def _mutations(base: bytes, fields: list[str]):  # type: ignore[no-untyped-def]
    doc = json.loads(base)

    @st.composite
    def mutate(draw):  # type: ignore[no-untyped-def]
        kind = draw(st.sampled_from(["bytes", "truncate", "field", "nested"]))
        if kind == "bytes":
            return draw(st.binary(max_size=300))
        if kind == "truncate":
            return base[: draw(st.integers(0, len(base)))]
        d = json.loads(json.dumps(doc))
        target = d
        if kind == "nested":
            inner = [k for k, v in d.items() if isinstance(v, dict)]
            if inner:
                target = d[draw(st.sampled_from(inner))]
        keys = list(target) or fields
        target[draw(st.sampled_from(keys))] = draw(json_values)
        return json.dumps(d, allow_nan=True).encode()

    return mutate()


def _only_invalid_payload(fn, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(payload)
    except InvalidPayload:
        pass


FUZZ = settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@FUZZ
@given(_mutations(fx.chirpstack_up(EUI, fx.BINARY), FIELDS_CS))
def test_fuzz_chirpstack(payload: bytes) -> None:
    _only_invalid_payload(lambda p: decode_chirpstack_uplink(p, topic_dev_eui=EUI), payload)
    _only_invalid_payload(lambda p: decode_chirpstack_uplink(p, marshaler="protobuf"), payload)
    _only_invalid_payload(lambda p: decode_chirpstack_status(p, topic_dev_eui=EUI), payload)


@FUZZ
@given(_mutations(fx.tts_up("d1", fx.CAYENNE, f_port=2, f_cnt=5), FIELDS_TTS))
def test_fuzz_tts(payload: bytes) -> None:
    _only_invalid_payload(lambda p: decode_tts_uplink(p, topic_device_id="d1"), payload)


@FUZZ
@given(_mutations(json.dumps({"time": "2026-01-01T00:00:00Z", "readings": {"pm25": 1.5},
                              "location": {"lat": 1, "lon": 2}}).encode(), ["time", "readings", "location"]),
       st.text(max_size=30))
def test_fuzz_direct(payload: bytes, uid: str) -> None:
    _only_invalid_payload(lambda p: decode_direct_json(uid, p), payload)


@FUZZ
@given(_mutations(json.dumps({"esp8266id": "123", "sensordatavalues": [{"value_type": "SDS_P1", "value": "1.5"}],
                              "timestamp": "2026-01-01T00:00:00Z"}).encode(), ["sensordatavalues", "esp8266id"]),
       st.dictionaries(st.sampled_from(["x-sensor", "x-pin", "sensor", "node", "pin"]), st.text(max_size=20)))
def test_fuzz_sensor_community(payload: bytes, headers: dict) -> None:
    _only_invalid_payload(lambda p: decode_sensor_community(p, headers), payload)


@pytest.mark.parametrize("pin", ["²", "١", "7x", ""])
def test_non_ascii_digit_pins_are_invalid_payloads(pin: str) -> None:
    # "²".isdigit() is True but int("²") raises: found by the fuzz test above
    body = json.dumps({"esp8266id": "123", "sensordatavalues": [{"value_type": "SDS_P1", "value": "1.5"}]}).encode()
    with pytest.raises(InvalidPayload, match="X-Pin"):
        decode_sensor_community(body, {"x-pin": pin} if pin else {"x-pin": " "})


@pytest.mark.parametrize("payload", [b"[" * 100_000, b"{" + b" " * 1_000_000 + b"}", b"\xff" * 1_000_000,
                                     json.dumps({"readings": {"pm25": 1e308 * 10}}).encode(),
                                     b'{"readings": {"pm25": NaN}}', b'{"readings": {"pm25": 1' + b"0" * 400 + b"}}"])
def test_pathological_payloads(payload: bytes) -> None:
    r = TopicRouter(chirpstack_prefix="application", tts_prefix="v3")
    for topic in (f"application/a/device/{EUI}/event/up", f"application/a/device/{EUI}/event/status",
                  "v3/a@t/devices/d/up", "civicair/v1/devices/ünïcødé-✓/up"):
        _only_invalid_payload(r.decoder_for(topic), payload)
    _only_invalid_payload(lambda p: decode_sensor_community(p, {"x-pin": "1"}), payload)
