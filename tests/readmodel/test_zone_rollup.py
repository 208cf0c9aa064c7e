"""Materialised zone series (readmodel/zone_rollup.py): the stored rows give exactly what live
aggregation gives, are used while valid, and stop being used the moment a write, a membership
change or another k makes them stale."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from civicair.readmodel import params, stored, zone_series
from civicair.readmodel.zone_rollup import refresh

from tests.city import T0

pytestmark = pytest.mark.db

NOW = T0 + timedelta(days=3)  # the seeded city lives on T0's day; the watermark is past it
RANGES = [
    {"datetime_from": T0.isoformat(), "datetime_to": (T0 + timedelta(days=1)).isoformat()},
    # not aligned on hours or days: partial first and last periods stay live
    {"datetime_from": (T0 + timedelta(minutes=30)).isoformat(),
     "datetime_to": (T0 + timedelta(hours=4, minutes=10)).isoformat()},
    {"datetime_from": (T0 - timedelta(days=2, hours=5)).isoformat(),
     "datetime_to": (T0 + timedelta(hours=20)).isoformat()},
]


def _requests(city) -> list[tuple[str, dict]]:
    out = []
    for zone in (city.zone_id, city.cell):
        for rng in RANGES:
            for interval in ("hour", "day"):
                out.append((f"/v1/zones/{zone}/series", {**rng, "interval": interval}))
        out.append((f"/v1/zones/{zone}/series", {**RANGES[0], "limit": 2}))
        out.append((f"/v1/zones/{zone}/series", {**RANGES[0], "format": "csv"}))
    return out


def _crawl(base: str, city) -> dict[str, bytes]:
    out = {}
    for path, query in _requests(city):
        r = httpx.get(base + path, params=query)
        assert r.status_code == 200, r.text
        out[str(r.url)] = r.content
        # follow the cursor of the paged request
        if query.get("limit") == 2:
            cursor = r.json()["meta"]["cursor"]
            while cursor:
                r = httpx.get(base + path, params={**query, "cursor": cursor})
                out[str(r.url)] = r.content
                cursor = r.json()["meta"]["cursor"]
    return out


def _refresh(db, settings, **kw):
    with db.engine.begin() as conn:
        return refresh(conn, settings, now=NOW, **kw)


def test_stored_rows_are_byte_identical_to_live_aggregation(city, db, settings, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    live = _crawl(base, city)
    result = _refresh(db, settings)
    assert result.rebuilt == 2 and result.rows > 0  # the admin zone and the H3 cell (3 devices each)
    with db.engine.connect() as conn:
        stored = conn.execute(sa.text("select zone_id, count(*) from zone_series group by zone_id")).all()
        packed, raw = conn.execute(sa.text("select sum(octet_length(docs)), sum(raw_size) from zone_series "
                                           "where n > 0")).one()
    assert {z for z, _ in stored} == {city.zone_id, city.cell}
    assert packed < raw / 2  # stored compressed (LZ4), and the API reads them back
    assert _crawl(base, city) == live


def _first_hour(db, settings, zone_id, **kw) -> dict:
    tr = params.TimeRange(datetime_from=T0, datetime_to=T0 + timedelta(days=1))
    with db.engine.connect() as conn:
        return zone_series.zone_series(conn, settings.model_copy(update=kw), zone_id, "pm25", tr)[0]


def _tamper(db, zone_id: str, old: str, new: str) -> int:  # type: ignore[no-untyped-def]
    """Edit the stored hourly chunk of T0's day of a zone (decompressed, replaced, compressed)."""
    where = "where zone_id = :z and interval = 'hour' and chunk = :t"
    with db.engine.begin() as conn:
        rows = conn.execute(sa.text(f"select docs, raw_size from zone_series {where}"), {"z": zone_id, "t": T0}).all()
        for docs, raw_size in rows:
            text = stored.unpack_docs(docs, raw_size).replace(old.encode(), new.encode())
            packed, size = stored.pack_docs(text)
            conn.execute(sa.text(f"update zone_series set docs = :d, raw_size = :s {where}"),
                         {"d": packed, "s": size, "z": zone_id, "t": T0})
    return len(rows)


def test_api_reads_stored_rows_while_valid_and_live_rows_after_a_write(city, db, settings) -> None:
    _refresh(db, settings)
    before = _first_hour(db, settings, city.zone_id)
    # Tamper with the stored row: if the API shows it, the stored path was taken.
    assert _tamper(db, city.zone_id, '"n_devices":4', '"n_devices":40') == 1
    tampered = _first_hour(db, settings, city.zone_id)  # a whole chunk is served as stored
    assert tampered["n_devices"] == 40 and tampered["summary"] == before["summary"]
    _tamper(db, city.cell, '"n_devices":3', '"n_devices":30')  # the same for an H3 zone
    assert _first_hour(db, settings, city.cell)["n_devices"] == 30
    # A late correction of that hour is logged by the trigger: the API aggregates it live at once.
    with db.engine.begin() as conn:
        conn.execute(sa.text("update hourly set max = 999 where device_id = :d and hour = :t"),
                     {"d": city.fixed["F2"], "t": T0})
    now_live = _first_hour(db, settings, city.zone_id)
    assert now_live["n_devices"] == 4 and now_live["summary"]["max"] == 999
    assert now_live["summary"]["min"] == before["summary"]["min"]
    # The refresh consumes the log and rewrites that day only; stored and live agree again.
    result = _refresh(db, settings)
    assert result.invalidations >= 1 and result.rebuilt == 0 and result.updated == 2
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from zone_invalidations")).scalar() == 0
    assert _first_hour(db, settings, city.zone_id) == now_live


def test_membership_and_k_changes_take_effect_before_the_refresh(city, db, settings) -> None:
    _refresh(db, settings)
    assert _first_hour(db, settings, city.zone_id)["n_devices"] == 4
    with db.engine.begin() as conn:  # F4 turns unreliable: out of every aggregate from now on
        conn.execute(sa.text("update devices set status = 'unreliable' where id = :d"), {"d": city.fixed["F4"]})
    assert _first_hour(db, settings, city.zone_id)["n_devices"] == 3
    # another k than the stored rows were built with: live (hour 4 with two devices is published)
    tr = params.TimeRange(datetime_from=T0, datetime_to=T0 + timedelta(days=1))
    with db.engine.connect() as conn:
        k2 = zone_series.zone_series_page(conn, settings.model_copy(update={"k_anonymity": 2}), city.zone_id, "pm25", tr)
    assert [r["n_devices"] for r in k2.results] == [3, 3, 3, 3, 2, 3] and k2.suppressed == 0
    result = _refresh(db, settings)
    assert result.rebuilt == 1  # the admin zone (F4 is not in the H3 cell)
    with db.engine.connect() as conn:
        ids = conn.execute(sa.text("select device_ids from zone_rollup where zone_id = :z"),
                           {"z": city.zone_id}).scalar()
    assert city.fixed["F4"] not in ids
    assert _first_hour(db, settings, city.zone_id)["n_devices"] == 3


def test_zones_below_k_devices_are_not_materialised_and_dropped_when_they_fall_below(city, db, settings) -> None:
    _refresh(db, settings)
    with db.engine.begin() as conn:
        conn.execute(sa.text("update devices set consent_public = false where id = :d"), {"d": city.fixed["F1"]})
    result = _refresh(db, settings)
    assert result.dropped == 1  # the H3 cell now holds two public devices
    with db.engine.connect() as conn:
        zones = set(conn.execute(sa.text("select distinct zone_id from zone_series")).scalars())
    assert zones == {city.zone_id}


def test_refresh_is_incremental_idempotent_and_exclusive(city, db, settings) -> None:
    first = _refresh(db, settings)
    again = _refresh(db, settings)
    assert again.rows == 0 and again.rebuilt == 0 and again.updated == first.rebuilt
    later = _refresh(db, settings.model_copy(update={"zone_rollup_lag_hours": 0}))
    assert later.watermark > first.watermark
    # a rebuild writes the same rows again
    with db.engine.connect() as conn:
        snapshot = conn.execute(sa.text("select * from zone_series order by 1, 2, 3, 4")).all()
    _refresh(db, settings.model_copy(update={"zone_rollup_lag_hours": 0}), rebuild=True)
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select * from zone_series order by 1, 2, 3, 4")).all() == snapshot


def test_triggers_log_every_write_to_hourly(db, settings, unique) -> None:
    from tests.seed import add_device

    with db.engine.begin() as conn:
        did, _ = add_device(conn, f"ca-{unique}-t", lat=48.58, lon=7.75)
        row = {"d": did, "q": 2, "h": T0, "n": 1, "s": 1.0}
        conn.execute(sa.text("insert into hourly (device_id, quantity, hour, n, sum, sum_sq) values (:d, :q, :h, :n, :s, :s),"
                             " (:d, 3, :h + interval '1 hour', :n, :s, :s)"), row)
        conn.execute(sa.text("update hourly set calibrated_mean = 1 where device_id = :d and quantity = 2"), row)
        conn.execute(sa.text("delete from hourly where device_id = :d and quantity = 3"), row)
        logged = conn.execute(sa.text("select quantity, hour from zone_invalidations order by 1, 2")).all()
    assert sorted(set(logged)) == [(2, T0), (3, T0 + timedelta(hours=1))]
    assert len(logged) == 4  # insert: 2 pairs, update: 1, delete: 1


def test_random_spans_pages_and_intervals_read_the_same_stored_or_live(db, settings, unique, monkeypatch) -> None:
    """Ten days of hourly rows with random gaps (zone-hours above and below k) for five devices
    of one zone; 60 random requests (unaligned bounds, both intervals, small pages) give the same
    bytes before and after materialisation, including the slicing of partial chunks."""
    import random

    from civicair.readmodel.zones import parse_zones, refresh_device_zones, upsert_zones

    from tests.city import ZONE
    from tests.seed import add_device

    rng = random.Random(20261123)
    start = T0 - timedelta(days=9, hours=7)
    with db.engine.begin() as conn:
        ids = [add_device(conn, f"ca-{unique}-r{i}", lat=48.57 + 0.001 * i, lon=7.75)[0] for i in range(5)]
        rows = []
        for h in range(10 * 24):
            for d in ids:
                if rng.random() < 0.7:
                    v = rng.uniform(2, 40)
                    rows.append({"d": d, "h": start + timedelta(hours=h), "n": rng.randint(1, 60), "v": v,
                                 "c": v * 0.9 if rng.random() < 0.5 else None, "f": rng.choice([0, 0, 0, 1, 4])})
        conn.execute(sa.text(
            "insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean, calibrated_mean, "
            "flags_any) values (:d, 2, :h, :n, :n * :v, :n * :v * :v + :n, :v - 1, :v + 1, :v, :c, :f)"), rows)
        upsert_zones(conn, parse_zones(ZONE))
        refresh_device_zones(conn)
    requests = []
    for _ in range(60):
        a = start + timedelta(minutes=rng.randint(-600, 14000))
        b = a + timedelta(minutes=rng.randint(30, 9000))
        interval = rng.choice(["hour", "day"])
        limit = rng.choice([None, 1, 5, 30, 1000])
        requests.append((params.TimeRange(datetime_from=a, datetime_to=b), interval, limit))

    def read_all() -> list[tuple]:
        out = []
        with db.engine.connect() as conn:
            for tr, interval, limit in requests:
                page = zone_series.zone_series_json(conn, settings, "67482", "pm25", tr, interval, None, limit)
                out.append((b",".join(page.docs), page.count, page.suppressed, page.next_after))
        return out

    live = read_all()
    assert sum(count for _, count, _, _ in live) > 500 and sum(s for _, _, s, _ in live) > 0
    result = _refresh(db, settings)
    assert result.rebuilt >= 1  # the admin zone (and H3 cells holding three of the devices)
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from zone_series where zone_id = '67482'")).scalar() >= 10
    stored = read_all()
    assert stored == live
    # Late writes all over the range (updates, new device-hours, deletions), then an
    # incremental refresh: the stored rows equal a purely live read again.
    with db.engine.begin() as conn:
        for _ in range(25):
            h = start + timedelta(hours=rng.randrange(10 * 24))
            d = rng.choice(ids)
            op = rng.choice(["update", "insert", "delete"])
            if op == "update":
                conn.execute(sa.text("update hourly set max = max + 5, calibrated_mean = 1.5 "
                                     "where device_id = :d and hour = :h"), {"d": d, "h": h})
            elif op == "delete":
                conn.execute(sa.text("delete from hourly where device_id = :d and hour = :h"), {"d": d, "h": h})
            else:
                conn.execute(sa.text("insert into hourly (device_id, quantity, hour, n, sum, sum_sq, min, max, mean) "
                                     "values (:d, 2, :h, 3, 30, 310, 9, 11, 10) on conflict do nothing"),
                             {"d": d, "h": h})
    again = _refresh(db, settings)
    assert again.rebuilt == 0 and again.invalidations > 0
    stored_after = read_all()
    monkeypatch.setattr(zone_series, "RENDER_VERSION", -1)  # no stored row is valid: all live
    assert stored_after == read_all()
    assert stored_after != stored
