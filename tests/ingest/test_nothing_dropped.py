"""Nothing dropped (issue 19, items 10-14) on the real database: every message ends stored,
duplicate, quarantined, dead-lettered or refused by a quota — never acknowledged into nowhere."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.domain import DeviceRef, RawValue, RefScheme, Route, Uplink
from civicair.gateway.formats.chirpstack import decode_chirpstack_status
from civicair.gateway.formats.push import decode_civicair_push
from civicair.gateway.formats.sensor_community import decode_sensor_community
from civicair.gateway.routing import TopicRouter
from civicair.ingest.store import (
    DecodedMessage,
    Inbound,
    Outcome,
    Quota,
    store_batch,
    store_decoded,
)

from tests.gateway import fixtures as fx
from tests.ingest.helpers import add_device, direct, rows

pytestmark = pytest.mark.db

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def conn(db):  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(db.url)) as c:
        yield c


def _push(uid: str, body: bytes, at: datetime) -> list[DecodedMessage]:
    ref = DeviceRef(RefScheme.CIVICAIR, uid)
    return [DecodedMessage("http", "/v1/push", body, at, u, ref=ref) for u in decode_civicair_push(uid, body)]


def test_a_pushed_list_of_timeless_items_keeps_every_item_in_order(db, conn) -> None:
    """Before: every item took the request's arrival time, so all but the first were taken for
    duplicates of it (`201 {"stored":1,"messages":3}`)."""
    dev = add_device(db, "list1", transport="http")
    body = json.dumps([{"readings": {"pm25": 1.0}}, {"readings": {"pm25": 2.0}},
                       {"readings": {"pm25": 3.0, "pm10": 4.0}}]).encode()
    r = store_decoded(conn, _push("list1", body, NOW))
    assert r.readings_written == 4 and r.outcomes == [Outcome.STORED] * 3
    assert r.item_readings == [1, 1, 2]
    stored = rows(db, tables.readings, "time", "quantity", "value")
    assert [(t - NOW, v) for t, q, v in stored if q == 2] == [
        (timedelta(0), 1.0), (timedelta(microseconds=1), 2.0), (timedelta(microseconds=2), 3.0)]
    # two requests of one instant committed together (the push group commit) are kept too
    one, two = (json.dumps({"readings": {"pm25": v}}).encode() for v in (5.0, 6.0))
    at = NOW + timedelta(minutes=1)
    again = store_decoded(conn, _push("list1", one, at) + _push("list1", two, at))
    assert again.readings_written == 2
    assert len(rows(db, tables.uplinks, "time")) == 5 and dev


def test_timeless_messages_of_one_instant_over_mqtt_are_all_kept(db, conn) -> None:
    add_device(db, "same-instant")
    batch = [direct("same-instant", None, {"pm25": float(v)}, received_at=NOW) for v in range(5)]
    assert store_batch(conn, batch).readings_written == 5


def test_a_message_with_only_unknown_quantity_names_becomes_a_dead_letter(db, conn) -> None:
    """Before: acknowledged, 0 readings, no uplink row, no dead letter — stored nowhere."""
    add_device(db, "unk", transport="http")
    timed = direct("unk", NOW, {"radon": 12.0, "co2_ppm": 400.0})
    timeless = direct("unk", None, {"radon": 13.0})
    mixed = direct("unk", NOW + timedelta(minutes=1), {"radon": 1.0, "pm25": 2.0})
    r = store_batch(conn, [timed, timeless, mixed])
    assert r.outcomes == [Outcome.DEAD_LETTER, Outcome.DEAD_LETTER, Outcome.STORED]
    assert r.readings_written == 1  # the known name of the mixed message
    dead = rows(db, tables.dead_letters, "payload", "error", "ref_scheme", "ref_value")
    assert {d[0] for d in dead} == {timed.payload, timeless.payload}
    assert all("'radon'" in d[1] and "no known quantity" in d[1] for d in dead)
    assert {(d[2], d[3]) for d in dead} == {("civicair", "unk")}
    # a sensor.community body with nothing usable, and a network-server object of unknown names
    sc = decode_sensor_community(json.dumps({"timestamp": NOW.isoformat(), "sensordatavalues": [
        {"value_type": "noise_LAeq", "value": "51.2"}]}).encode(), {}, fallback=DeviceRef(RefScheme.CIVICAIR, "unk"))
    lora = Uplink(Route.CHIRPSTACK, DeviceRef(RefScheme.CIVICAIR, "unk"), (RawValue("analogInput", 3.0),),
                  time=NOW + timedelta(minutes=2))
    r = store_decoded(conn, [DecodedMessage("sensor_community", "/v1/push/sensor-community", b"sc", NOW, sc),
                             DecodedMessage("chirpstack", "t", b"lora", NOW, lora)])
    assert r.outcomes == [Outcome.DEAD_LETTER, Outcome.DEAD_LETTER]
    assert "no reading" in r.errors[0] and "'analogInput'" in r.errors[1]


def test_chirpstack_status_battery_levels_are_written(db, conn) -> None:
    """Before: decoded, then thrown away (only last_seen moved)."""
    dev = add_device(db, "bat", transport="lorawan", dev_eui="a1b2c3d4e5f60001")
    topic = "application/app/device/a1b2c3d4e5f60001/event/status"
    router = TopicRouter(chirpstack_prefix="application")
    msgs = [Inbound("chirpstack", topic, fx.chirpstack_status("a1b2c3d4e5f60001", 87.5), NOW, router.decoder_for(topic))]
    external = json.dumps({"time": "2026-01-16T10:00:00Z", "deviceInfo": {"devEui": "a1b2c3d4e5f60001"},
                           "externalPowerSource": True, "margin": 3}).encode()
    msgs.append(Inbound("chirpstack", topic, external, NOW, router.decoder_for(topic)))
    r = store_batch(conn, msgs + msgs)  # and a broker re-delivery of both
    assert r.battery_reports == 2 and r.outcomes[:2] == [Outcome.STORED, Outcome.STORED]
    got = rows(db, tables.battery_reports, "device_id", "time", "level_pct", "external_power", "margin_db")
    assert got == [(dev, datetime(2026, 1, 15, 10, tzinfo=UTC), 87.5, False, 9),
                   (dev, datetime(2026, 1, 16, 10, tzinfo=UTC), None, True, 3)]
    assert rows(db, tables.uplinks, "device_id") == []  # no uplink row, no dead letter
    assert rows(db, tables.dead_letters, "id") == []
    assert decode_chirpstack_status(external).status.external_power is True  # type: ignore[union-attr]


def test_a_retained_message_is_not_stored_again_at_every_reconnect(db, conn) -> None:
    """A retained message comes again with every subscription (an MQTT 3.1.1 broker, or any
    broker for a new session): its first copy is stored, the later ones are duplicates."""
    dev = add_device(db, "ret")
    first = replace(direct("ret", None, {"pm25": 7.0}, received_at=NOW - timedelta(days=3)), retained=True)
    assert store_batch(conn, [first]).readings_written == 1
    for days in (2, 1, 0):  # three reconnects, days apart (beyond any re-delivery window)
        again = replace(first, received_at=NOW - timedelta(days=days))
        r = store_batch(conn, [again])
        assert r.outcomes == [Outcome.DUPLICATE] and r.readings_written == 0
    # the same payload published live (not from the retained store) is a new reading
    assert store_batch(conn, [replace(first, retained=False, received_at=NOW)]).readings_written == 1
    assert len(rows(db, tables.readings, "time")) == 2 and dev
    # with its own time a retained copy repeats its readings' keys: stored once as well
    timed = replace(direct("ret", NOW, {"pm10": 3.0}), retained=True)
    assert store_batch(conn, [timed]).readings_written == 1
    assert store_batch(conn, [replace(timed, received_at=NOW + timedelta(hours=5))]).readings_written == 0


def test_dead_letters_and_quarantine_stop_at_the_device_quota_and_count_the_rest(db, conn) -> None:
    add_device(db, "noisy", transport="http")
    quota = Quota(dead_letter_rows=3, dead_letter_bytes=10_000, quarantine_rows=2, quarantine_bytes=10_000)
    bad = [direct("noisy", NOW, {"pm25": "x"}) for _ in range(5)]
    big = [replace(direct("noisy", NOW, {"pm25": "y"}), payload=b"z" * 6000)]
    strangers = [direct("stranger", NOW + timedelta(seconds=i), {"pm25": 1.0}) for i in range(4)]
    r = store_batch(conn, bad + big + strangers, quota=quota)
    assert r.outcomes == ([Outcome.DEAD_LETTER] * 3 + [Outcome.REFUSED] * 3
                          + [Outcome.QUARANTINED] * 2 + [Outcome.REFUSED] * 2)
    assert (r.dead_letters, r.quarantined, r.refused) == (3, 2, 5)
    r = store_batch(conn, bad[:1], quota=quota)  # full: still refused in a later batch
    assert r.outcomes == [Outcome.REFUSED]
    over = {(k, s, v): n for k, s, v, n in rows(db, tables.kept_overflow, "kind", "ref_scheme", "ref_value", "refused")}
    assert over == {("dead_letters", "civicair", "noisy"): 4, ("quarantine", "civicair", "stranger"): 2}
    # another device still has its own room; a message naming no registered device goes to the shared bucket
    add_device(db, "quiet")
    nobody = Inbound("mqtt", "junk/topic", b"junk", NOW, lambda _p: (_ for _ in ()).throw(ValueError("x")))
    r = store_batch(conn, [direct("quiet", NOW, {"pm25": "x"}), nobody], quota=quota)
    assert r.outcomes == [Outcome.DEAD_LETTER, Outcome.DEAD_LETTER]
    assert ("", None, None) not in rows(db, tables.dead_letters, "topic", "ref_scheme", "ref_value")
    assert ("junk/topic", None, None) in rows(db, tables.dead_letters, "topic", "ref_scheme", "ref_value")
