"""Public endpoints over real HTTP against a seeded database (see tests/city.py)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest

from tests.city import T0

pytestmark = pytest.mark.db

RANGE = {"datetime_from": T0.isoformat(), "datetime_to": (T0 + timedelta(days=1)).isoformat()}


def get(base: str, path: str, **params) -> httpx.Response:
    return httpx.get(base + path, params=params)


def test_devices_list_only_consenting_devices_by_pseudonym_and_public_cell(city, live_api) -> None:
    r = get(live_api, "/v1/devices")
    assert r.status_code == 200
    body = r.json()
    meta = body["meta"]
    assert meta["licence"] and meta["attribution"] and meta["portal_url"]
    pseudos = {d["pseudonym"] for d in body["results"]}
    assert city.pseudonyms["F6"] not in pseudos  # no consent
    assert {city.pseudonyms[k] for k in ("F1", "F2", "F3", "F4", "F5", "B1")} <= pseudos
    f1 = next(d for d in body["results"] if d["pseudonym"] == city.pseudonyms["F1"])
    assert f1["h3_cell"] == city.cell  # resolution-12 cell coarsened to the public resolution 9
    assert f1["quantities"] == ["pm25"] and f1["has_series"] is True
    b1 = next(d for d in body["results"] if d["pseudonym"] == city.pseudonyms["B1"])
    assert b1["h3_cell"] is None and b1["coordinates"] is None and b1["has_series"] is False


def test_devices_cursor_paging_visits_each_device_once(city, live_api) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = get(live_api, "/v1/devices", **params).json()
        seen += [d["pseudonym"] for d in body["results"]]
        cursor = body["meta"]["cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 10  # F1-F5 + B1-B5 (F6 has no consent)


def test_device_series_has_raw_and_calibrated_means_coverage_summary_flags(city, live_api, db) -> None:
    import sqlalchemy as sa

    with db.engine.begin() as conn:
        conn.execute(sa.text("update hourly set calibrated_mean = mean * 0.8 where device_id = :d and hour = :h"),
                     {"d": city.fixed["F1"], "h": T0})
    r = get(live_api, f"/v1/devices/{city.pseudonyms['F1']}/series", quantity="pm25", **RANGE)
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert len(rows) == 6
    first = rows[0]
    values = [10.05, 10.25, 10.45]
    assert first["raw_mean"] == pytest.approx(sum(values) / 3)
    assert first["calibrated_mean"] == pytest.approx(0.8 * sum(values) / 3) and first["calibrated"] is True
    assert first["value"] == first["calibrated_mean"]
    assert rows[1]["calibrated_mean"] is None and rows[1]["value"] == rows[1]["raw_mean"]
    assert first["summary"]["min"] == 10.05 and first["summary"]["max"] == 10.45
    assert first["flags"]["flagged_readings"] == 1 and first["flags"]["out_of_range"] == 1
    assert first["n_readings"] == 3
    assert first["period"]["datetime_from"] == T0.isoformat()
    day = get(live_api, f"/v1/devices/{city.pseudonyms['F1']}/series", interval="day", **RANGE).json()["results"]
    assert len(day) == 1
    assert day[0]["coverage"] == {"expected_count": 24, "observed_count": 6, "percent_complete": 25.0}
    assert day[0]["n_readings"] == 18


def test_mobile_and_non_consenting_devices_have_no_series(city, live_api) -> None:
    for label in ("B1", "F6"):
        r = get(live_api, f"/v1/devices/{city.pseudonyms[label]}/series", **RANGE)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")


def test_admin_zone_series_suppresses_zone_hours_below_k_and_excludes_unreliable(city, live_api) -> None:
    r = get(live_api, f"/v1/zones/{city.zone_id}/series", quantity="pm25", **RANGE)
    assert r.status_code == 200, r.text
    body = r.json()
    hours = {row["period"]["datetime_from"]: row for row in body["results"]}
    # hours 0-3: F1-F4; hour 4: only F1, F2 → suppressed; hour 5: F1-F3 (+ F5 unreliable, excluded)
    assert sorted(hours) == [(T0 + timedelta(hours=h)).isoformat() for h in (0, 1, 2, 3, 5)]
    assert [hours[k]["n_devices"] for k in sorted(hours)] == [4, 4, 4, 4, 3]
    assert body["meta"]["suppressed"] == 1 and body["meta"]["k_anonymity"] == 3
    h0 = hours[T0.isoformat()]
    expected = [10.0 + j + m / 100 for j in range(4) for m in (5, 25, 45)]
    assert h0["raw_mean"] == pytest.approx(sum(expected) / len(expected))
    assert h0["n_readings"] == 12
    assert h0["coverage"]["expected_count"] == 4 and h0["coverage"]["observed_count"] == 4
    h5 = hours[(T0 + timedelta(hours=5)).isoformat()]
    assert h5["summary"]["max"] == pytest.approx(10.0 + 5 + 2 + 0.45)  # F3 is j=2; F5 (j=3) excluded


def test_h3_zone_series_and_zone_list(city, live_api) -> None:
    zones = get(live_api, "/v1/zones").json()["results"]
    by_id = {z["id"]: z for z in zones}
    assert by_id[city.zone_id]["kind"] == "admin"
    assert by_id[city.cell] == {"id": city.cell, "name": f"H3 cell {city.cell}", "kind": "h3", "n_devices": 3,
                                "properties": {"resolution": 9}}
    rows = get(live_api, f"/v1/zones/{city.cell}/series", **RANGE).json()
    assert [r["n_devices"] for r in rows["results"]] == [3, 3, 3, 3, 3]
    assert rows["meta"]["suppressed"] == 1
    daily = get(live_api, f"/v1/zones/{city.zone_id}/series", interval="day", **RANGE).json()["results"]
    assert len(daily) == 1 and daily[0]["n_devices"] == 4


def test_zone_series_paging_with_cursor(city, live_api) -> None:
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **RANGE} | ({"cursor": cursor} if cursor else {})
        body = get(live_api, f"/v1/zones/{city.zone_id}/series", **params).json()
        pages.append(body["results"])
        cursor = body["meta"]["cursor"]
        if not cursor:
            break
        assert len(pages) < 20
    # a page spans at most `limit` hours: hour 4 is suppressed, so the third page holds one row
    assert [len(p) for p in pages[:3]] == [2, 2, 1]
    times = [r["period"]["datetime_from"] for p in pages for r in p]
    assert times == [(T0 + timedelta(hours=h)).isoformat() for h in (0, 1, 2, 3, 5)]


def test_mobile_cells_are_privacy_filtered_and_k_anonymous(city, live_api) -> None:
    r = get(live_api, "/v1/mobile/cells", quantity="pm25", **RANGE)
    assert r.status_code == 200, r.text
    cells = r.json()["results"]
    assert cells, "the shared route should publish some cells"
    assert all(c["n_devices"] >= 3 for c in cells)
    assert {c["period"]["datetime_from"] for c in cells} == {(T0 + timedelta(hours=8)).isoformat()}  # B5 alone
    geo = get(live_api, "/v1/mobile/cells", format="geojson", **RANGE)
    assert geo.headers["content-type"].startswith("application/geo+json")
    features = geo.json()["features"]
    assert len(features) == len(cells)
    assert features[0]["geometry"]["type"] == "Polygon"
    assert features[0]["properties"]["n_devices"] >= 3


def test_stations_carry_their_own_licence_and_skip_invalid_hours(city, live_api) -> None:
    st = get(live_api, "/v1/stations").json()["results"]
    assert st[0]["code"] == "FR01011" and st[0]["attribution"] == "ATMO Grand Est / LCSQA"
    r = get(live_api, "/v1/stations/FR01011/series", quantity="pm25", **RANGE)
    body = r.json()
    assert body["meta"]["licence"] == "Licence Ouverte 2.0 (LCSQA)"
    assert r.headers["x-attribution"] == "ATMO Grand Est / LCSQA"
    assert [row["value"] for row in body["results"]] == [8.0, 9.0, 10.0, 12.0, 13.0]
    assert get(live_api, "/v1/stations/NOPE/series").status_code == 404


def test_quantities_licences_and_csv(city, live_api) -> None:
    names = [q["name"] for q in get(live_api, "/v1/quantities").json()["results"]]
    assert names[:3] == ["pm1", "pm25", "pm10"]
    lic = get(live_api, "/v1/licences").json()["results"]
    assert {x["name"] for x in lic} >= {"Licence Ouverte / Open Licence version 2.0", "Licence Ouverte 2.0 (LCSQA)"}
    r = httpx.get(f"{live_api}/v1/zones/{city.zone_id}/series", params=RANGE, headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5 and rows[0]["n_devices"] == "4" and "summary.mean" in rows[0]
    assert "licence" in r.headers["link"]
    r2 = get(live_api, "/v1/devices", format="csv")
    assert r2.text.splitlines()[0].startswith("pseudonym,")


def test_device_series_falls_back_to_readings_not_rolled_up_yet(db, live_api, unique) -> None:
    from tests.seed import add_device, add_readings, reading

    with db.engine.begin() as conn:
        did, pseudo = add_device(conn, f"ca-{unique}", lat=48.58, lon=7.75)
        add_readings(conn, [reading(did, T0 + timedelta(minutes=m), 2, v)
                            for m, v in ((1, 10.0), (2, 14.0), (3, 999.0))])
        add_readings(conn, [reading(did, T0 + timedelta(minutes=4), 2, 5000.0, flags=1)])
    rows = get(live_api, f"/v1/devices/{pseudo}/series", **RANGE).json()["results"]
    assert len(rows) == 1
    assert rows[0]["raw_mean"] == pytest.approx((10 + 14 + 999) / 3)
    assert rows[0]["n_readings"] == 3 and rows[0]["flags"]["flagged_readings"] == 1
    assert rows[0]["calibrated"] is False and rows[0]["calibrated_mean"] is None
