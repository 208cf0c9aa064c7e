"""Batch writer on the real database: idempotency, rollups under late and duplicate data,
LoRaWAN duplicates, uplink metadata, dead letters and quarantine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.domain import DeviceRef, Flag, LinkMeta, RawValue, RefScheme, Route, Uplink
from civicair.ingest.writer import store_batch

from tests.ingest.helpers import add_device, direct, fixed, hourly, rows

pytestmark = pytest.mark.db

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=2)
HOUR = NOW.replace(minute=0)


@pytest.fixture
def conn(db):  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(db.url)) as c:
        yield c


def test_redelivered_messages_are_stored_and_counted_once(db, conn) -> None:
    dev = add_device(db, "d1")
    batch = [direct("d1", NOW, {"pm25": 10.0, "pm10": 20.0}),
             direct("d1", NOW + timedelta(minutes=1), {"pm25": 14.0})]
    first = store_batch(conn, batch)
    again = store_batch(conn, batch + batch)  # re-delivery, and duplicates inside one batch
    assert (first.readings_written, first.readings_duplicate) == (3, 0)
    assert (again.readings_written, again.readings_duplicate) == (0, 6)
    assert rows(db, tables.readings, "device_id", "quantity", "value") == [(dev, 2, 10.0), (dev, 2, 14.0), (dev, 3, 20.0)]
    h = hourly(db)[(dev, 2, HOUR)]
    assert (h["n"], h["sum"], h["min"], h["max"], h["mean"]) == (2, 24.0, 10.0, 14.0, 12.0)
    assert h["sum_sq"] == pytest.approx(100 + 196)


def test_a_redelivered_message_without_time_is_stored_once(db, conn) -> None:
    """Without a time of its own a reading takes its arrival time, so only the broker's DUP flag
    and the stored payload tell a re-delivery from a new reading with the same values."""
    dev = add_device(db, "t1")
    t0 = NOW - timedelta(minutes=20)
    first = direct("t1", None, {"pm25": 10.0}, received_at=t0)
    again = replace(direct("t1", None, {"pm25": 10.0}, received_at=t0 + timedelta(seconds=40)), redelivered=True)
    same_values = direct("t1", None, {"pm25": 10.0}, received_at=t0 + timedelta(minutes=2))  # a new reading
    orphan = replace(direct("t1", None, {"pm25": 11.0}, received_at=t0 + timedelta(minutes=3)), redelivered=True)
    late = replace(direct("t1", None, {"pm25": 10.0}, received_at=t0 + timedelta(minutes=15)), redelivered=True)
    assert store_batch(conn, [first]).readings_written == 1
    r = store_batch(conn, [again], redelivery_window_s=600)
    assert (r.readings_written, r.uplinks_duplicate) == (0, 1)
    assert store_batch(conn, [same_values], redelivery_window_s=600).readings_written == 1
    assert store_batch(conn, [orphan], redelivery_window_s=600).readings_written == 1  # first copy never stored
    # the same payload last stored 13 min before, beyond the window: not taken for its first copy
    assert store_batch(conn, [late], redelivery_window_s=600).readings_written == 1
    assert sorted(v for (v,) in rows(db, tables.readings, "value")) == [10.0, 10.0, 10.0, 11.0]
    assert sum(h["n"] for k, h in hourly(db).items() if k[0] == dev) == 4
    # each timeless message keeps an uplinks row (its payload), which is what the test compares
    assert len(rows(db, tables.uplinks, "device_id")) == 4


def test_late_data_and_flagged_values_in_rollups(db, conn) -> None:
    dev = add_device(db, "d2")
    store_batch(conn, [direct("d2", NOW, {"pm25": 10.0})])
    store_batch(conn, [direct("d2", NOW + timedelta(hours=1), {"pm25": 50.0})])
    # late data for the first hour arrives after the next hour started, plus a flagged value
    store_batch(conn, [direct("d2", NOW - timedelta(minutes=20), {"pm25": 30.0}),
                       direct("d2", NOW - timedelta(minutes=10), {"pm25": 5000.0})])
    h = hourly(db)
    first, second = h[(dev, 2, HOUR)], h[(dev, 2, HOUR + timedelta(hours=1))]
    assert (first["n"], first["mean"], first["min"], first["max"]) == (2, 20.0, 10.0, 30.0)
    assert (first["n_flagged"], first["flags_any"]) == (1, int(Flag.OUT_OF_RANGE))
    assert (second["n"], second["mean"]) == (1, 50.0)
    flags = dict(((t, v), f) for t, v, f in rows(db, tables.readings, "time", "value", "flags"))
    assert flags[(NOW - timedelta(minutes=10), 5000.0)] == Flag.OUT_OF_RANGE  # stored, not dropped


def test_rebuild_matches_incremental_rollup(db, conn) -> None:
    from civicair.ingest.rollup import rebuild_hourly

    dev = add_device(db, "d3")
    for i in range(5):
        store_batch(conn, [direct("d3", NOW - timedelta(minutes=25 * i), {"pm25": 3.0 * i, "temperature": 100.0})])
    before = hourly(db)
    with db.engine.begin() as c:
        c.execute(tables.hourly.update().values(n=0, sum=0, mean=None, calibrated_mean=7.5))
    assert rebuild_hourly(db.engine, NOW - timedelta(days=1)) == len(before)
    after = hourly(db)
    for key, row in before.items():
        for col in ("n", "sum", "sum_sq", "min", "max", "mean", "n_flagged", "flags_any"):
            assert after[key][col] == pytest.approx(row[col]), (key, col)
        assert after[key]["calibrated_mean"] == 7.5  # calibration's column survives
    assert before[(dev, 6, HOUR)]["n_flagged"] >= 1


def test_unknown_device_and_bad_payload_are_kept(db, conn) -> None:
    add_device(db, "d4")
    r = store_batch(conn, [direct("nobody", NOW, {"pm25": 1.0}), direct("d4", NOW, {"pm25": 2.0})]
                    + [direct("d4", NOW, {"pm25": "x"})])
    assert (r.readings_written, r.quarantined, r.dead_letters) == (1, 1, 1)
    assert rows(db, tables.quarantine, "ref_scheme", "ref_value") == [("civicair", "nobody")]
    (err,) = rows(db, tables.dead_letters, "error")
    assert "must be a number" in err[0]


def test_unconvertible_unit_goes_to_dead_letters(db, conn) -> None:
    add_device(db, "d5")
    up = Uplink(Route.DIRECT_MQTT, DeviceRef(RefScheme.CIVICAIR, "d5"), (RawValue("pm25", 1.0, "ppb"),), time=NOW)
    r = store_batch(conn, [fixed(up, b"original bytes")])
    assert (r.readings_written, r.dead_letters) == (0, 1)
    assert rows(db, tables.dead_letters, "payload") == [(b"original bytes",)]


def _lora(fcnt: int, dedup: str | None, t: datetime, rssi: float = -90.0) -> Uplink:
    return Uplink(Route.CHIRPSTACK, DeviceRef(RefScheme.DEV_EUI, "0011223344556677"),
                  (RawValue("pm25", 8.0), RawValue("temperature", 21.0)), time=t,
                  link=LinkMeta(f_cnt=fcnt, f_port=1, rssi=rssi, snr=7.5, gateway_count=2, ns_time=t,
                                dedup_id=dedup), battery_v=3.6)


def test_lorawan_duplicates_are_stored_once(db, conn) -> None:
    dev = add_device(db, "lora", transport="lorawan", dev_eui="0011223344556677")
    t = NOW
    r1 = store_batch(conn, [fixed(_lora(41, "aaa", t), b"\x01\x02")])
    # same deduplicationId again; same fCnt via another network server (other id, other time)
    r2 = store_batch(conn, [fixed(_lora(41, "aaa", t)), fixed(_lora(41, "bbb", t + timedelta(seconds=2)))])
    # in-batch duplicates, then a genuinely new uplink
    r3 = store_batch(conn, [fixed(_lora(42, "ccc", t + timedelta(minutes=5))),
                            fixed(_lora(42, "ddd", t + timedelta(minutes=5, seconds=1)))])
    assert (r1.readings_written, r1.uplinks_duplicate) == (2, 0)
    assert (r2.readings_written, r2.uplinks_duplicate) == (0, 2)
    assert (r3.readings_written, r3.uplinks_duplicate) == (2, 1)
    ups = rows(db, tables.uplinks, "device_id", "f_cnt", "rssi", "snr", "gateway_count", "dedup_id", "battery_v")
    assert ups == [(dev, 41, -90.0, 7.5, 2, "aaa", 3.6), (dev, 42, -90.0, 7.5, 2, "ccc", 3.6)]
    assert rows(db, tables.uplinks, "payload")[0] == (b"\x01\x02",)
    assert hourly(db)[(dev, 2, HOUR)]["n"] == 2


def test_same_fcnt_after_ten_minutes_is_a_new_uplink(db, conn) -> None:
    add_device(db, "lora2", transport="lorawan", dev_eui="0011223344556677")
    t = NOW
    store_batch(conn, [fixed(_lora(7, None, t), received_at=t)])
    r = store_batch(conn, [fixed(_lora(7, None, t + timedelta(minutes=11)), received_at=t + timedelta(minutes=11))])
    assert (r.readings_written, r.uplinks_duplicate) == (2, 0)


def test_first_seen_is_the_minimum_and_last_seen_the_maximum_over_batches(db, conn) -> None:
    # issue 19 item 4: `coalesce(first_seen, t)` took the newest time of the first batch
    add_device(db, "d6")
    store_batch(conn, [direct("d6", NOW, {"pm25": 1.0}), direct("d6", NOW - timedelta(hours=1), {"pm25": 1.0})])
    assert rows(db, tables.devices, "first_seen", "last_seen") == [(NOW - timedelta(hours=1), NOW)]
    store_batch(conn, [direct("d6", NOW - timedelta(hours=3), {"pm25": 1.0})])  # a late backlog
    store_batch(conn, [direct("d6", NOW - timedelta(minutes=30), {"pm25": 1.0})])
    assert rows(db, tables.devices, "first_seen", "last_seen") == [(NOW - timedelta(hours=3), NOW)]


def test_first_received_at_is_the_arrival_of_the_first_stored_batch(db, conn) -> None:
    add_device(db, "d7")
    arrived = NOW - timedelta(minutes=5)
    store_batch(conn, [direct("d7", NOW - timedelta(days=30), {"pm25": 1.0}, received_at=arrived)])
    store_batch(conn, [direct("d7", NOW, {"pm25": 1.0}, received_at=NOW)])
    # the QA window starts at the arrival, whatever time the device claims its readings have
    assert rows(db, tables.devices, "first_received_at") == [(arrived,)]


def test_writer_thread_keeps_a_batch_the_database_rejects_message_by_message(db, tmp_path) -> None:
    import queue

    from civicair.ingest.writer import BatchWriter

    from tests.conftest import wait_until

    add_device(db, "lora3", transport="lorawan", dev_eui="0011223344556677")
    add_device(db, "d7")
    inbox: queue.Queue = queue.Queue()
    acked: list[int] = []
    bad = _lora(2**70, "huge", NOW)  # an fCnt no bigint holds: the database rejects the batch
    for i, msg in enumerate([fixed(bad, b"bad bytes"), direct("d7", NOW, {"pm25": 3.0})]):
        inbox.put(type(msg)(msg.source, msg.topic, msg.payload, msg.received_at, msg.decode,
                            lambda i=i: acked.append(i)))
    writer = BatchWriter(libpq_url(db.url), inbox, batch_max_age_ms=20, spool_dir=tmp_path / "spool")
    writer.start()
    try:
        wait_until(lambda: sorted(acked) == [0, 1], 10, message="both acked")
    finally:
        writer.stop()
    assert rows(db, tables.readings, "value") == [(3.0,)]
    (dead,) = rows(db, tables.dead_letters, "payload", "error")
    assert dead[0] == b"bad bytes" and "database rejected" in dead[1]
    assert writer.spooled == 0


def test_uplink_duplicate_checks_probe_per_row_never_join_the_whole_table(db, conn) -> None:
    """The duplicate tests of a batch must stay index probes per staged row: as anti-joins
    PostgreSQL hashed all of `uplinks` on every batch (641 ms per batch at 3M uplinks)."""
    from civicair.ingest import repository as repo

    with conn.transaction():
        repo.ensure_staging(conn)
        conn.execute("insert into uplinks_stage (device_id, time, route, received_at, f_cnt, dedup_id, payload, "
                     "recheck) select 1, now() - g * interval '1 s', 'chirpstack', now(), g, 'd' || g, "
                     "'\\x01'::bytea, g % 2 = 0 from generate_series(1, 500) g")
        conn.execute("analyze uplinks_stage")
        plan = "\n".join(r[0] for r in conn.execute("explain " + repo._INSERT_UPLINKS,
                                                    {"window": timedelta(hours=1)}).fetchall())
        jit = conn.execute("show jit").fetchone()[0]
    assert "Anti Join" not in plan and plan.count("SubPlan") >= 3, plan
    assert jit == "off"
