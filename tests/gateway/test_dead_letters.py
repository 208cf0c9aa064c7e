"""Dead letters for operators (issue 19, item 19): `civicair deadletters list|show|replay` and the
service the operator console calls; replay after adding a codec or an alias; retention of dead
letters and quarantine. Before: no command listed or replayed a dead letter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.domain import DeviceRef, RefScheme
from civicair.gateway import dead_letters
from civicair.gateway.codecs import DecodedPayload, decode_port_payload
from civicair.gateway.codecs import cayenne as cayenne_codec
from civicair.gateway.formats import lorawan
from civicair.gateway.formats.push import push_topic
from civicair.gateway.routing import TopicRouter
from civicair.ingest import normalise
from civicair.ingest.retention import apply_kept_retention
from civicair.ingest.store import DecodedMessage, Inbound, store_batch, store_decoded

from tests.gateway import fixtures as fx
from tests.gateway.support import add_device, readings

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[2]
EUI = "a1b2c3d4e5f60042"
ROUTER = TopicRouter(chirpstack_prefix="application", tts_prefix="v3")
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def _mqtt(conn: psycopg.Connection, topic: str, payload: bytes) -> None:
    store_batch(conn, [Inbound("chirpstack", topic, payload, NOW, ROUTER.decoder_for(topic),
                               ref=ROUTER.ref_for(topic))])


def _waiting(db) -> list[dead_letters.DeadLetterSummary]:  # type: ignore[no-untyped-def]
    return dead_letters.list_dead_letters(db)


def test_replay_after_adding_a_codec_stores_the_uplink_once(db, monkeypatch) -> None:
    dev = add_device(db, f"lora-{EUI}", transport="lorawan", dev_eui=EUI)
    topic = f"application/app/device/{EUI}/event/up"
    frame = cayenne_codec.encode_value(2, 2, 17.5)  # on an fPort nobody decodes yet
    with psycopg.connect(libpq_url(db.url)) as conn:
        _mqtt(conn, topic, fx.chirpstack_up(EUI, frame, f_port=9))
    (entry,) = _waiting(db)
    assert "no codec for fPort 9" in entry.error and entry.device == f"dev_eui:{EUI}"
    assert readings(db, dev) == []
    # before the codec exists, a replay fails and keeps the entry, with the reason
    (failed,) = dead_letters.replay_dead_letters(db, ROUTER, [entry.id])
    assert not failed.replayed and "no codec" in (failed.error or "")
    assert [e.id for e in _waiting(db)] == [entry.id] and _waiting(db)[0].replay_error

    def with_port_9(f_port: int | None, data: bytes) -> DecodedPayload:  # the codec "added" by a release
        return decode_port_payload(2 if f_port == 9 else f_port, data)

    monkeypatch.setattr(lorawan, "decode_port_payload", with_port_9)
    (done,) = dead_letters.replay_dead_letters(db, ROUTER, [entry.id])
    assert done.replayed and done.readings_written == 1 and done.outcomes == ("stored",)
    assert readings(db, dev) == [(2, 17.5)]
    assert _waiting(db) == []
    (again,) = dead_letters.replay_dead_letters(db, ROUTER, [entry.id])  # once is enough
    assert not again.replayed and "already replayed" in (again.error or "")
    assert readings(db, dev) == [(2, 17.5)]
    with db.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(tables.dead_letters)).scalar_one() == 1


def test_replay_of_an_http_push_after_adding_an_alias_stores_it_for_the_pushing_device(db, monkeypatch) -> None:
    dev = add_device(db, "pusher", transport="http")
    body = json.dumps([{"readings": {"pm2.5_ugm3": 11.0}}, {"readings": {"pm2.5_ugm3": 12.0}}]).encode()
    from civicair.gateway.formats.push import decode_civicair_push

    ref = DeviceRef(RefScheme.CIVICAIR, "pusher")
    items = [DecodedMessage("http", "/v1/push", body, NOW, u, ref=ref) for u in decode_civicair_push("pusher", body)]
    with psycopg.connect(libpq_url(db.url)) as conn:
        store_decoded(conn, items)
    entries = _waiting(db)
    assert len(entries) == 2 and all("no known quantity" in e.error for e in entries)
    monkeypatch.setitem(normalise.ALIASES, "pm2.5_ugm3", "pm25")
    results = dead_letters.replay_dead_letters(db, ROUTER, sorted(e.id for e in entries))
    # each entry holds the whole body: the first replay stores both items, the second finds duplicates
    assert [r.replayed for r in results] == [True, True]
    assert results[0].readings_written == 2 and results[1].outcomes == ("duplicate", "duplicate")
    assert readings(db, dev) == [(2, 11.0), (2, 12.0)]
    with db.engine.connect() as c:
        times = [r[0] for r in c.execute(sa.select(tables.readings.c.time).order_by(tables.readings.c.time))]
    assert times == [NOW, NOW + timedelta(microseconds=1)]  # the original arrival, in order


def test_a_sensor_community_dead_letter_replays_with_its_headers(db) -> None:
    dev = add_device(db, "airrohr", transport="http", chip_id="esp8266-77")
    body = json.dumps({"sensordatavalues": [{"value_type": "P1", "value": "8.5"}]}).encode()
    topic = push_topic("/v1/push/sensor-community", {"x-pin": "1", "x-sensor": "esp8266-77"})
    with db.engine.begin() as conn:  # kept by an older release that could not read it
        conn.execute(sa.insert(tables.dead_letters).values(
            received_at=NOW, source="sensor_community", topic=topic, payload=body, error="old decoder bug",
            ref_scheme="civicair", ref_value="airrohr"))
    (entry,) = _waiting(db)
    (r,) = dead_letters.replay_dead_letters(db, ROUTER, [entry.id])
    assert r.replayed and readings(db, dev) == [(3, 8.5)]  # pin 1 P1 = pm10


def _cli(settings, *args: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_deadletters_command_lists_shows_and_replays(db, settings) -> None:
    """A dead letter from a release without the CayenneLPP codec, replayed with today's code."""
    dev = add_device(db, "cayenne-dev", transport="lorawan", dev_eui=EUI)
    topic = f"application/app/device/{EUI}/event/up"
    payload = fx.chirpstack_up(EUI, fx.CAYENNE, f_port=2)
    with db.engine.begin() as conn:
        entry_id = conn.execute(sa.insert(tables.dead_letters).values(
            received_at=NOW, source="chirpstack", topic=topic, payload=payload,
            error="no codec for fPort 2", ref_scheme="dev_eui", ref_value=EUI).returning(tables.dead_letters.c.id)
        ).scalar_one()
        conn.execute(sa.insert(tables.dead_letters).values(
            received_at=NOW, source="mqtt", topic="elsewhere/x", payload=b"\x00\x01\xff", error="no format for topic"))
    listed = _cli(settings, "deadletters", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(entry_id) in listed.stdout and f"dev_eui:{EUI}" in listed.stdout and "no codec for fPort 2" in listed.stdout
    shown = _cli(settings, "deadletters", "show", str(entry_id))
    assert shown.returncode == 0 and '"fPort": 2' in shown.stdout and "no codec" in shown.stdout
    binary = _cli(settings, "deadletters", "show", str(entry_id + 1))
    assert "00 01 ff" in binary.stdout
    raw = subprocess.run([sys.executable, "-m", "civicair.cli", "deadletters", "show", "--raw", str(entry_id + 1)],
                         cwd=REPO, env={**{k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")},
                                        "CIVICAIR_DATABASE_URL": settings.database_url.get_secret_value()},
                         capture_output=True, timeout=120)
    assert raw.stdout == b"\x00\x01\xff"
    replay = _cli(settings, "deadletters", "replay", "--all", "--source", "chirpstack")
    assert replay.returncode == 0, replay.stderr
    assert f"{entry_id}\treplayed" in replay.stdout and "replayed 1 of 1" in replay.stdout
    assert len(readings(db, dev)) == 5  # CAYENNE: pm25, pm10, temperature, humidity, pressure
    assert _cli(settings, "deadletters", "replay", str(entry_id + 1)).stdout.count("not replayed") == 1
    missing = _cli(settings, "deadletters", "show", "999999")
    assert missing.returncode == 1 and "no dead letter 999999" in missing.stderr


def test_retention_deletes_old_dead_letters_and_quarantine_only(db) -> None:
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        for days in (40, 20, 1):
            conn.execute(sa.insert(tables.dead_letters).values(
                received_at=now - timedelta(days=days), source="mqtt", topic="t", payload=b"x", error="e"))
            conn.execute(sa.insert(tables.quarantine).values(
                received_at=now - timedelta(days=days), source="mqtt", topic="t", ref_scheme="civicair",
                ref_value="nobody", payload=b"x"))
    r = apply_kept_retention(db.engine, 30, 10, batch=1)
    assert (r.dead_letters_deleted, r.quarantine_deleted) == (1, 2)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.dead_letters)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.quarantine)).scalar_one() == 1
