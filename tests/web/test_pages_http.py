"""The pages and the map/widget endpoints over HTTP (no browser): what each serves, every state a
visitor can reach (unknown ids, bad choices, mobile sensors, no bundle, no data), the language
switch and its cookie, CORS, and the map's privacy (only what the read model publishes)."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from civicair.core.db import Database
from civicair.core.settings import Settings
from civicair.readmodel import indices
from civicair.readmodel.map import map_values, refresh_snapshots, render

from tests.city import T0, seed_city
from tests.web.browser import serve
from tests.web.conftest import CYCLE, Demo

pytestmark = pytest.mark.db


def test_the_map_endpoint_serves_every_zone_and_cell_with_its_band(demo: Demo, db: Database) -> None:
    r = httpx.get(f"{demo.base}/v1/map/latest", params={"quantity": "pm25"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["content-encoding"] == "gzip"
    doc = r.json()
    assert len(doc["meta"]["hours"]) == 48 and doc["meta"]["scale"] == "eaqi"
    feats = {f["id"]: f["properties"] for f in doc["zones"]["features"]}
    for zone_id, value in demo.zone_values.items():
        assert feats[zone_id]["values"][-1] == pytest.approx(value, abs=0.05), zone_id
        assert feats[zone_id]["bands"][-1] == indices.band(indices.EAQI, "pm25", value)
    for cell, value in demo.cell_values.items():
        assert feats[cell]["values"][-1] == pytest.approx(value, abs=0.05)
    assert {f["properties"]["kind"] for f in doc["stations"]["features"]} == {"station"}
    assert len(doc["stations"]["features"]) == 2
    assert doc["bike"]["features"], "the two bikes' route makes published bike cells (k = 1)"
    # the sensor without consent (500 µg/m³) appears nowhere
    assert all(v != 500.0 for p in feats.values() for v in p["values"])
    assert feats["67482"]["values"][-1] == pytest.approx(demo.zone_values["67482"], abs=0.05)
    # ATMO thresholds: other bands for the same values
    atmo = httpx.get(f"{demo.base}/v1/map/latest", params={"quantity": "pm25", "scale": "atmo"}).json()
    a = {f["id"]: f["properties"] for f in atmo["zones"]["features"]}
    assert all(a[z]["bands"][-1] == indices.band(indices.ATMO, "pm25", v) for z, v in demo.zone_values.items())
    # conditional GET of the stored snapshot, and without gzip
    with db.engine.begin() as conn:
        refresh_snapshots(conn, demo.settings, quantities=["pm25"])
    etag = httpx.get(f"{demo.base}/v1/map/latest").headers["etag"]
    assert httpx.get(f"{demo.base}/v1/map/latest", headers={"If-None-Match": etag}).status_code == 304
    plain = httpx.get(f"{demo.base}/v1/map/latest", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["meta"]["quantity"] == "pm25"
    assert httpx.get(f"{demo.base}/v1/map/latest", params={"quantity": "co2"}).status_code == 422


def test_a_stored_snapshot_is_served_as_the_job_rendered_it(demo: Demo, db: Database) -> None:
    with db.engine.begin() as conn:
        assert refresh_snapshots(conn, demo.settings) == 8  # 4 quantities x 2 scales
    r = httpx.get(f"{demo.base}/v1/map/latest", headers={"Accept-Encoding": "identity"})
    with db.engine.connect() as conn:
        body = conn.exec_driver_sql("select body from map_snapshots where quantity = 2 and scale = 'eaqi'").scalar()
    assert r.content == gzip.decompress(body)


def test_the_map_publishes_only_k_anonymous_cells_and_no_position(settings: Settings, db: Database,
                                                                   unique: str) -> None:
    city = seed_city(db, unique)
    with db.engine.connect() as conn:
        values = map_values(conn, settings, "pm25", now=T0 + timedelta(hours=11))
    body = render(values, "eaqi", settings, datetime.now(UTC)).decode()
    zones = {f["id"]: v for f, v in zip(values.zones.features, values.zones.values, strict=True)}
    start = values.hours[0]
    at = {h: int((T0 + timedelta(hours=h) - start).total_seconds() // 3600) for h in range(6)}
    # zone 67482: F1-F4 at hours 0-3, only F1, F2 at hour 4 (below k = 3: not published)
    assert all(zones["67482"][at[h]] is not None for h in range(4))
    assert zones["67482"][at[4]] is None
    # the cell of F1-F3 is published; F4's cell (one device) has no published hour: not on the map
    assert city.cell in zones and len([z for z in zones if z != "67482"]) == 1
    bikes = values.bike.features
    assert bikes and all(len(f["id"]) == 15 for f in bikes)  # B1-B4 at hour 8; B5 alone is not
    # every shape is an H3 cell's outline or the zone's polygon: no position is on the map
    import h3

    for f in [*values.zones.features, *bikes]:
        if f["id"] != "67482":
            ring = [[round(lon, 6), round(lat, 6)] for lat, lon in h3.cell_to_boundary(f["id"])]
            assert f["geometry"]["coordinates"] == [[*ring, ring[0]]]
    assert values.stations.features[0]["geometry"]["coordinates"] == [6.1816, 49.1196]
    for private in city.private:
        assert private not in body


def test_the_zone_index_gives_the_widget_its_band(demo: Demo) -> None:
    r = httpx.get(f"{demo.base}/v1/zones/67482/index", params={"scale": "atmo"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    doc = r.json()["results"][0]
    expected = indices.band(indices.ATMO, "pm25", demo.zone_values["67482"])
    assert doc["current"]["band"] == expected and len(doc["hours"]) == 24
    assert doc["current"]["colour"] == indices.ATMO.bands[expected - 1].colour
    assert httpx.get(f"{demo.base}/v1/zones/nope/index").status_code == 404
    assert httpx.get(f"{demo.base}/v1/indices").json()["scales"]["eaqi"]["upper"]["pm25"] == [5, 15, 50, 90, 140]


def test_every_page_renders_and_unknown_ids_get_a_404_page(demo: Demo) -> None:
    pseudo = demo.pseudonyms["ca-demo-fixed-03"]
    for path, text in (("/", "Strasbourg"), ("/zones/67482", "Strasbourg"), (f"/sensors/{pseudo}", pseudo),
                       ("/stations/DEMO-STR-CENTRE", "Strasbourg Centre"), ("/datasets", "zone-hourly"),
                       ("/datasets/zone-hourly", "zone-hourly"), ("/embed/zones/67482", "civicair-air"),
                       ("/docs", "swagger-ui"), ("/zones/67482?interval=day&quantity=pm10", "Strasbourg")):
        r = httpx.get(demo.base + path)
        assert r.status_code == 200, path
        assert text in r.text, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "<script>" not in r.text  # no inline script (CSP)
    for path in ("/zones/99999", "/sensors/nobody", "/stations/NOPE", "/datasets/nope", "/embed/zones/99999",
                 "/zones/" + "x" * 80):
        r = httpx.get(demo.base + path)
        assert r.status_code == 404 and "text/html" in r.headers["content-type"], path
    r = httpx.get(demo.base + "/?quantity=co2")
    assert r.status_code == 400 and "co2" in r.text
    assert httpx.head(demo.base + "/zones/67482").status_code == 200


def test_pages_say_what_is_citizen_data_and_how_hours_are_withheld(demo: Demo) -> None:
    html = httpx.get(demo.base + "/zones/67482", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert 'lang="fr"' in html and "non produites par la ville" in html
    assert "k-anonymat" in html and "Licence Ouverte" in html
    en = httpx.get(demo.base + "/zones/67482", headers={"Accept-Language": "en"}).text
    assert "not produced by the city or the air-quality agency" in en
    assert re.search(r"Over these 168 hours, 48 are published\. 0 hours were withheld", en)
    for link in ("format=csv", "/exports/zone-hourly/latest.parquet", "/datasets/zone-hourly", "/catalog.jsonld"):
        assert link in en


def test_the_language_switch_is_kept_in_a_cookie_and_the_embed_sets_none(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base) as client:
        r = client.get("/", params={"lang": "fr"}, headers={"Accept-Language": "en"})
        assert 'lang="fr"' in r.text and "civicair_lang=fr" in r.headers["set-cookie"]
        assert 'lang="fr"' in client.get("/zones/67482", headers={"Accept-Language": "en"}).text
    r = httpx.get(demo.base + "/embed/zones/67482", params={"lang": "fr"})
    assert "set-cookie" not in r.headers and "frame-ancestors *" in r.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in httpx.get(demo.base + "/").headers["content-security-policy"]


def test_a_bike_sensor_page_explains_why_it_has_no_series(demo: Demo, db: Database) -> None:
    with db.engine.connect() as conn:
        pseudo = conn.exec_driver_sql("select pseudonym from devices where uid = 'ca-demo-bike-01'").scalar()
    html = httpx.get(f"{demo.base}/sensors/{pseudo}").text
    assert "no public series of its own" in html and 'id="chart"' not in html


def test_without_the_bundle_the_pages_still_serve_their_data(settings: Settings, db: Database,
                                                               tmp_path: Path) -> None:
    from civicair.api.app import create_app
    from civicair.web.site import install

    seed_demo_settings = settings.model_copy(update={"k_anonymity": 1})
    from tests.web.conftest import seed_demo

    demo = seed_demo(seed_demo_settings, db)
    app = create_app(seed_demo_settings, db)
    install(app, seed_demo_settings, dist=tmp_path / "not-built")
    with serve(app) as port:
        html = httpx.get(f"http://127.0.0.1:{port}/").text
        assert "<script" not in html and "Strasbourg" in html
        value = demo.zone_values["67482"]
        assert f"{value:.1f}" in html  # the table of latest values works without the script
        assert "swagger-ui-bundle.js" in httpx.get(f"http://127.0.0.1:{port}/docs").text


def test_the_cycle_covers_every_eaqi_band() -> None:
    assert sorted({indices.band(indices.EAQI, "pm25", v) for v in CYCLE}) == [1, 2, 3, 4, 5, 6]
