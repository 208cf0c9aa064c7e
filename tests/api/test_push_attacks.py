"""The HTTP push endpoints under attack (issue 19, items 10, 11, 12, 15, 18, 19) over real HTTP:
each test sends what the probe sent and checks that nothing is lost, nothing answers 500, and
the keep-alive connection survives."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.gateway.routing import TopicRouter
from civicair.ingest.store import Inbound, store_batch

from tests.gateway import fixtures as fx
from tests.gateway.support import add_device, count, readings

pytestmark = pytest.mark.db

HUGE = "9" * 5000  # Python refuses int() of more than 4,300 digits: json.loads raised ValueError
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def _conn(base: str) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def _dead_letters(db) -> list:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(tables.dead_letters).order_by(tables.dead_letters.c.id)))


CASES = [
    ("/v1/push", {}, '{"readings": {"pm25": ' + HUGE + "}}"),
    ("/v1/push/sensor-community", {},
     '{"esp8266id": ' + HUGE + ', "sensordatavalues": [{"value_type": "SDS_P1", "value": "1"}]}'),
    ("/v1/push", {}, json.dumps({"time": "0001-01-01T00:00:00+14:00", "readings": {"pm25": 1}})),
    ("/v1/push/sensor-community", {"X-Pin": "1"},
     json.dumps({"timestamp": "0001-01-01T00:00:00+14:00", "sensordatavalues": [{"value_type": "P1", "value": "1"}]})),
]


def test_the_four_bodies_that_gave_500_are_422_kept_and_the_connection_lives(db, live_api, unique) -> None:
    """Before: 500, body lost, and the next request on the keep-alive connection was reset."""
    dev = add_device(db, f"p-{unique}", transport="http", token="tok-huge")
    conn = _conn(live_api)
    auth = {"Authorization": "Bearer tok-huge"}
    try:
        for i, (path, headers, body) in enumerate(CASES):
            status, problem = _post(conn, path, body.encode(), {**auth, **headers})
            assert status == 422, (path, problem)
            assert "kept as a dead letter" in problem["detail"]
            sock = conn.sock
            good = json.dumps({"time": (NOW + timedelta(seconds=i)).isoformat(), "readings": {"pm25": 5.0}})
            status, answer = _post(conn, "/v1/push", good.encode(), auth)
            assert (status, answer["stored"]) == (201, 1)
            assert conn.sock is sock and sock is not None, "the keep-alive connection was closed"
    finally:
        conn.close()
    dead = _dead_letters(db)
    assert [bytes(d.payload).decode() for d in dead] == [body for _, _, body in CASES]
    assert {(d.ref_scheme, d.ref_value) for d in dead} == {("civicair", f"p-{unique}")}
    assert all(d.source in ("http", "sensor_community") for d in dead)
    assert len(readings(db, dev)) == 4


def test_a_list_of_timeless_items_keeps_every_item(db, live_api, unique) -> None:
    """Before: `201 {"stored":1,"messages":3}`."""
    dev = add_device(db, f"l-{unique}", transport="http", token="tok-list")
    r = httpx.post(f"{live_api}/v1/push", headers={"Authorization": "Bearer tok-list"},
                   json=[{"readings": {"pm25": 1}}, {"readings": {"pm25": 2}}, {"readings": {"pm25": 3}}])
    assert r.status_code == 201 and r.json() == {"stored": 3, "messages": 3}
    assert readings(db, dev) == [(2, 1.0), (2, 2.0), (2, 3.0)]


def test_only_unknown_quantity_names_is_422_and_kept(db, live_api, unique) -> None:
    """Before: 201 and stored nowhere."""
    add_device(db, f"u-{unique}", transport="http", token="tok-unk")
    body = {"time": NOW.isoformat(), "readings": {"radon": 42}}
    r = httpx.post(f"{live_api}/v1/push", headers={"Authorization": "Bearer tok-unk"}, json=body)
    assert r.status_code == 422, r.text
    assert "no known quantity" in r.json()["detail"] and "kept as a dead letter" in r.json()["detail"]
    (dead,) = _dead_letters(db)
    assert json.loads(bytes(dead.payload)) == body
    # a list where some items are usable: 201, and the unusable one counted
    r = httpx.post(f"{live_api}/v1/push", headers={"Authorization": "Bearer tok-unk"},
                   json=[body, {"time": NOW.isoformat(), "readings": {"pm25": 3}}])
    assert r.status_code == 201 and r.json() == {"stored": 1, "messages": 2, "dead_letters": 1}


def test_one_body_limit_on_every_body_registration_included(db, live_api, settings) -> None:
    """Before: a 200 MB registration body was parsed (195 MB kept)."""
    limit = settings.http_max_body_bytes
    big = json.dumps({"name": "x" * (limit + 10), "kind": "fixed", "sensors": ["SDS011"], "transport": "http",
                      "lat": 48.5, "lon": 7.7})
    for path in ("/v1/volunteer/devices", "/v1/volunteer/device/rotate", "/v1/push", "/v1/quantities"):
        r = httpx.post(f"{live_api}{path}", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    def chunks():  # no Content-Length: refused while it streams in, not after
        for _ in range(limit // 1000 + 50):
            yield b" " * 1000

    r = httpx.post(f"{live_api}/v1/volunteer/devices", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert count(db, tables.devices) == 0 and count(db, tables.dead_letters) == 0
    # a body within the limit still registers
    ok = httpx.post(f"{live_api}/v1/volunteer/devices", json={"name": "small", "kind": "fixed", "sensors": ["SDS011"],
                                                              "transport": "http", "lat": 48.5, "lon": 7.7,
                                                              "email": "small@example.org"})
    assert ok.status_code == 201, ok.text


def test_dead_letters_of_one_token_stop_at_its_quota(db, serve, unique) -> None:
    """Before: 6 MB of dead letters in 2.3 s from one token, kept without limit."""
    base = serve(dead_letter_quota_rows=5, dead_letter_quota_bytes=1 << 20)
    add_device(db, f"q-{unique}", transport="http", token="tok-q")
    codes, details = [], []
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer tok-q"}) as client:
        for i in range(12):
            r = client.post("/v1/push", content=b'{"readings": {"pm25": "junk-%d"}}' % i)
            codes.append(r.status_code)
            details.append(r.json()["detail"])
    assert codes == [422] * 12  # a clear error every time, never a 500
    assert all("kept as a dead letter" in d for d in details[:5])
    assert all("quota is full" in d for d in details[5:])
    assert count(db, tables.dead_letters) == 5
    with db.engine.connect() as conn:
        over = conn.execute(sa.select(tables.kept_overflow)).one()
    assert (over.kind, over.ref_value, over.refused) == ("dead_letters", f"q-{unique}", 7)


def test_the_battery_level_of_a_status_event_is_visible_to_the_volunteer(db, live_api, unique) -> None:
    eui = "a1b2c3d4e5f6aa01"
    add_device(db, f"b-{unique}", transport="lorawan", dev_eui=eui, token="tok-bat")
    topic = f"application/app/device/{eui}/event/status"
    with __import__("psycopg").connect(libpq_url(db.url)) as pconn:
        store_batch(pconn, [Inbound("chirpstack", topic, fx.chirpstack_status(eui, 64.0), NOW,
                                    TopicRouter(chirpstack_prefix="application").decoder_for(topic))])
    r = httpx.get(f"{live_api}/v1/volunteer/device", headers={"Authorization": "Bearer tok-bat"})
    assert r.status_code == 200, r.text
    battery = r.json()["battery"]
    assert battery["level_pct"] == 64.0 and battery["external_power"] is False and battery["margin_db"] == 9
    assert battery["at"].startswith("2026-01-15T10:00:00")
