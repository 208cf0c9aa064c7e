"""HTTP push over real HTTP (uvicorn): both sensor.community forms, civicair JSON, 401/403/413/422."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.support import add_device, count, readings

pytestmark = [pytest.mark.db]

PIN_PM = {"software_version": "NRZ-2024-135",
          "sensordatavalues": [{"value_type": "P1", "value": "12.34"}, {"value_type": "P2", "value": "5.10"}]}
PIN_BME = {"software_version": "NRZ-2024-135",
           "sensordatavalues": [{"value_type": "temperature", "value": "21.30"},
                                {"value_type": "pressure", "value": "96800.00"},
                                {"value_type": "humidity", "value": "41.60"}]}
CUSTOM = {"esp8266id": "13463475", "software_version": "NRZ-2020-129",
          "sensordatavalues": [{"value_type": "SDS_P1", "value": "27.62"},
                               {"value_type": "SDS_P2", "value": "10.32"},
                               {"value_type": "BME280_temperature", "value": "5.70"},
                               {"value_type": "BME280_pressure", "value": "99216.06"},
                               {"value_type": "BME280_humidity", "value": "88.20"},
                               {"value_type": "samples", "value": "881335"},
                               {"value_type": "min_micro", "value": "28"},
                               {"value_type": "max_micro", "value": "20086"},
                               {"value_type": "interval", "value": "145000"},
                               {"value_type": "signal", "value": "-63"}]}


def test_sensor_community_pin_form(db, live_api, unique) -> None:
    dev = add_device(db, f"sc-{unique}", transport="http", chip_id="esp8266-1234567", token="tok-a")
    auth = {"Authorization": "Bearer tok-a", "X-Sensor": "esp8266-1234567"}
    r1 = httpx.post(f"{live_api}/v1/push/sensor-community", json=PIN_PM, headers={**auth, "X-Pin": "1"})
    r2 = httpx.post(f"{live_api}/v1/push/sensor-community", json=PIN_BME, headers={**auth, "X-Pin": "11"})
    assert (r1.status_code, r2.status_code) == (201, 201), (r1.text, r2.text)
    # pm25 5.1, pm10 12.34, temperature 21.3, humidity 41.6, pressure 968 hPa (sent as Pa)
    assert readings(db, dev) == [(2, 5.1), (3, 12.34), (6, 21.3), (7, 41.6), (8, 968.0)]


def test_sensor_community_custom_api_form_with_basic_auth(db, live_api, unique) -> None:
    dev = add_device(db, f"sc-{unique}", transport="http", chip_id="esp8266-13463475", token="tok-b")
    r = httpx.post(f"{live_api}/v1/push/sensor-community", json=CUSTOM, auth=("esp8266-13463475", "tok-b"))
    assert r.status_code == 201, r.text
    assert readings(db, dev) == [(2, 10.32), (3, 27.62), (6, 5.7), (7, 88.2), (8, 992.1606)]


def test_token_cannot_push_for_another_device(db, live_api, unique) -> None:
    add_device(db, f"a-{unique}", transport="http", chip_id="esp8266-1", token="tok-a")
    add_device(db, f"b-{unique}", transport="http", chip_id="esp8266-2", token="tok-b")
    r = httpx.post(f"{live_api}/v1/push/sensor-community", json=PIN_PM,
                   headers={"Authorization": "Bearer tok-a", "X-Sensor": "esp8266-2", "X-Pin": "1"})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = httpx.post(f"{live_api}/v1/push", json={"device": f"b-{unique}", "readings": {"pm25": 3}},
                   headers={"Authorization": "Bearer tok-a"})
    assert r.status_code == 403, r.text
    assert readings(db) == []


def test_missing_or_unknown_token_is_401(db, live_api) -> None:
    assert httpx.post(f"{live_api}/v1/push", json={"readings": {"pm25": 1}}).status_code == 401
    r = httpx.post(f"{live_api}/v1/push", json={"readings": {"pm25": 1}}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401


def test_oversized_body_is_413_and_nothing_stored(db, live_api, settings, unique) -> None:
    add_device(db, f"a-{unique}", transport="http", token="tok-a")
    big = json.dumps({"readings": {"pm25": 1}, "pad": "x" * (settings.http_max_body_bytes + 10)})
    r = httpx.post(f"{live_api}/v1/push", content=big, headers={"Authorization": "Bearer tok-a"})
    assert r.status_code == 413, r.text

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(settings.http_max_body_bytes // 1000 + 2):
            yield b" " * 1000

    r = httpx.post(f"{live_api}/v1/push", content=chunks(), headers={"Authorization": "Bearer tok-a"})
    assert r.status_code == 413, r.text
    assert readings(db) == [] and count(db, tables.dead_letters) == 0


def test_civicair_json_push_single_and_list(db, live_api, unique) -> None:
    dev = add_device(db, f"ca-{unique}", transport="http", token="tok-c")
    h = {"Authorization": "Bearer tok-c"}
    r = httpx.post(f"{live_api}/v1/push", json={"time": "2026-01-01T10:00:00Z", "readings": {"pm25": 7.5}}, headers=h)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{live_api}/v1/push", headers=h, json=[
        {"time": "2026-01-01T10:01:00Z", "readings": {"pm25": 8.5}, "device": f"ca-{unique}"},
        {"time": "2026-01-01T10:02:00Z", "readings": {"pm10": 9.5}},
    ])
    assert r.status_code == 201 and r.json()["messages"] == 2
    assert readings(db, dev) == [(2, 7.5), (2, 8.5), (3, 9.5)]


def test_bad_body_is_422_and_kept_as_dead_letter(db, live_api, unique) -> None:
    add_device(db, f"ca-{unique}", transport="http", token="tok-d")
    r = httpx.post(f"{live_api}/v1/push/sensor-community", content=b'{"sensordatavalues": [{"value_type": "P1", "value": "abc"}]}',
                   headers={"Authorization": "Bearer tok-d", "X-Pin": "1"})
    assert r.status_code == 422, r.text
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.dead_letters)).one()
    assert b'"abc"' in bytes(row.payload) and row.source == "sensor_community"
    assert "x-pin=1" in row.topic and "not a number" in row.error


_bodies = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=15), c, max_size=4),
                 max_leaves=12).map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.builds(lambda vt, v: json.dumps({"sensordatavalues": [{"value_type": vt, "value": v}]}).encode(),
              st.sampled_from(["P1", "SDS_P2", "BME280_pressure", "lat", "samples", "x"]),
              st.text(max_size=12) | st.floats().map(str)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, pin=st.none() | st.text(max_size=4), path=st.sampled_from(["/v1/push", "/v1/push/sensor-community"]))
def test_fuzz_push_bodies_never_500(db, live_api, unique, body, pin, path) -> None:
    with db.engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one()
    if not have:
        add_device(db, f"fz-{unique}", transport="http", token="tok-fz")
    headers = {"Authorization": "Bearer tok-fz"}
    if pin is not None and pin.isprintable() and pin.isascii():
        headers["X-Pin"] = pin
    before = count(db, tables.dead_letters)
    r = httpx.post(f"{live_api}{path}", content=body, headers=headers)
    assert r.status_code in (201, 422), r.text
    if r.status_code == 422:  # refused bodies are kept
        assert count(db, tables.dead_letters) == before + 1
