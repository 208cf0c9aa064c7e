"""Privacy crawl: every public endpoint in every format, over real HTTP, must not reveal a
DevEUI, device name, uid, owner name or e-mail, nor an exact coordinate (to 4 decimals), nor
anything of a device that is not public (no consent, or not established: its pseudonym); every
zone-hour and mobile cell-hour served must hold at least k distinct devices. The SensorThings
API (/sta/v1.1) is crawled too: every entity of every set, every navigation link, every
datastream's observations."""

from __future__ import annotations

import re
from datetime import timedelta

import h3
import httpx
import pytest

from tests.city import T0

pytestmark = pytest.mark.db

RANGE = {"datetime_from": T0.isoformat(), "datetime_to": (T0 + timedelta(days=1)).isoformat()}
FORMATS = ({}, {"format": "csv"}, {"format": "geojson"})
CELL_RE = re.compile(r"\b8[0-9a-f]{14}\b")


def crawl(base: str) -> list[tuple[str, httpx.Response]]:
    out: list[tuple[str, httpx.Response]] = []
    with httpx.Client(base_url=base, headers={"Accept-Encoding": "gzip"}) as client:

        def fetch(path: str, **params: str) -> httpx.Response:
            r = client.get(path, params=params)
            out.append((f"{path}?{params}", r))
            assert r.status_code < 500, (path, params, r.text)
            return r

        for path in ("/openapi.json", "/docs", "/v1/quantities", "/v1/licences"):
            fetch(path)
        devices = fetch("/v1/devices", limit="1000").json()["results"]
        for fmt in FORMATS:
            fetch("/v1/devices", **fmt)
            fetch("/v1/zones", **fmt)
            fetch("/v1/stations", **fmt)
            fetch("/v1/mobile/cells", **RANGE, **fmt)
            fetch("/v1/mobile/cells", datetime_from=(T0 + timedelta(hours=8, minutes=3)).isoformat(),
                  datetime_to=(T0 + timedelta(hours=10, minutes=7, seconds=30)).isoformat(), **fmt)
        fetch("/v1/zones", with_geometry="true")
        for d in devices:
            for fmt in FORMATS:
                fetch(f"/v1/devices/{d['pseudonym']}", **fmt)
            for interval in ("hour", "day"):
                for fmt in FORMATS[:2]:
                    fetch(f"/v1/devices/{d['pseudonym']}/series", interval=interval, **RANGE, **fmt)
        for z in fetch("/v1/zones").json()["results"]:
            for interval in ("hour", "day"):
                for fmt in FORMATS[:2]:
                    r = fetch(f"/v1/zones/{z['id']}/series", interval=interval, **RANGE, **fmt)
                    if r.status_code == 200 and not fmt:
                        assert r.json()["meta"]["k_anonymity"] == 3
        for s in fetch("/v1/stations").json()["results"]:
            fetch(f"/v1/stations/{s['code']}/series", **RANGE)
    return out + crawl_sta(base)


def crawl_sta(base: str) -> list[tuple[str, httpx.Response]]:
    """Every SensorThings entity, navigation link and observation page (links are absolute, on
    the public URL, which follows the server's port)."""
    out: list[tuple[str, httpx.Response]] = []
    seen: set[str] = set()
    with httpx.Client(headers={"Accept-Encoding": "gzip"}) as client:

        def fetch(url: str) -> httpx.Response:
            assert url.startswith(base + "/sta/v1.1"), url
            r = client.get(url)
            out.append((url.replace(base, ""), r))
            assert r.status_code == 200, (url, r.text)  # every link the service gives leads somewhere
            return r

        def walk(url: str, depth: int = 0) -> None:
            if url in seen or depth > 3:
                return
            seen.add(url)
            r = fetch(url)
            if r.status_code != 200 or not r.headers["content-type"].startswith("application/json"):
                return
            body = r.json()
            for e in body.get("value", [body]):
                for k, v in e.items():
                    if k.endswith("@iot.navigationLink") and not k.startswith("Observations"):
                        walk(v, depth + 1)
            if "@iot.nextLink" in body:
                walk(body["@iot.nextLink"], depth)

        expand = {"Things": "Locations,HistoricalLocations,Datastreams", "Observations": "FeatureOfInterest,Datastream",
                  "Datastreams": "Thing,Sensor,ObservedProperty", "Locations": "Things"}
        root = fetch(f"{base}/sta/v1.1").json()
        for entity_set in root["value"]:
            options = f"&$expand={expand[entity_set['name']]}" if entity_set["name"] in expand else ""
            walk(f"{entity_set['url']}?$top=1000{options}")
        for ds in fetch(f"{base}/sta/v1.1/Datastreams?$top=1000").json()["value"]:
            walk(ds["Observations@iot.navigationLink"] + "?$top=1000&$expand=FeatureOfInterest,Datastream/Thing")
            fetch(ds["Observations@iot.navigationLink"] + "?$resultFormat=dataArray&$top=1000")
    return out


def public_numbers(text: str) -> set[str]:
    """Coordinate strings legitimately derived from the published H3 cells."""
    nums: set[str] = set()
    for cell in set(CELL_RE.findall(text)):
        if not h3.is_valid_cell(cell):
            continue
        points = [h3.cell_to_latlng(cell), *h3.cell_to_boundary(cell)]
        for lat, lon in points:
            nums |= {repr(round(lat, 6)), repr(round(lon, 6))}
    return nums


def register(db) -> None:
    """The SensorThings ids, as the readmodel.sta_ids job assigns them."""
    from civicair.core.settings import Settings
    from civicair.readmodel.things import sync_registry

    with db.engine.begin() as conn:
        sync_registry(conn, Settings(database_url=db.url, pseudonym_secret="test-secret", _env_file=None))


def test_no_private_value_or_exact_coordinate_leaves_the_public_api(city, db, live_api) -> None:
    register(db)
    responses = crawl(live_api)
    assert sum(1 for label, _ in responses if label.startswith("/sta/")) > 100
    assert len(responses) > 60
    for label, r in responses:
        text = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for secret in city.private:
            assert secret.lower() not in text.lower(), f"{secret!r} leaked in {label}"
        scrubbed = text
        for num in sorted(public_numbers(text), key=len, reverse=True):
            scrubbed = scrubbed.replace(num, "")
        for lat, lon in city.coordinates:
            for value in (f"{lat:.4f}", f"{lon:.4f}"):
                assert value not in scrubbed, f"exact coordinate {value} leaked in {label}"


def test_every_served_zone_hour_and_mobile_cell_hour_has_k_devices(city, db, live_api) -> None:
    register(db)
    served_zone_rows = served_cells = served_zone_observations = 0
    zone_datastreams = {ds["@iot.id"] for ds in httpx.get(
        f"{live_api}/sta/v1.1/Datastreams", params={"$filter": "Thing/properties/kind eq 'zone'"}).json()["value"]}
    assert zone_datastreams
    for label, r in crawl(live_api):
        if label.startswith("/sta/") and r.status_code == 200 and "/Observations" in label and "dataArray" not in label:
            body = r.json()
            for o in body.get("value", [body]):
                if "result" not in o:
                    continue
                if int(o["@iot.id"]) >> 24 in zone_datastreams:  # an observation id holds its datastream
                    assert o["resultQuality"]["n_devices"] >= 3, label
                    served_zone_observations += 1
                else:
                    assert "n_devices" not in o["resultQuality"], label
            continue
        if r.status_code != 200 or not r.headers["content-type"].startswith("application/json"):
            continue
        if "/series" in label and "/zones/" in label:
            for row in r.json()["results"]:
                assert row["n_devices"] >= 3, label
                served_zone_rows += 1
        if label.startswith("/v1/mobile/cells"):
            for row in r.json()["results"]:
                assert row["n_devices"] >= 3, label
                served_cells += 1
    assert served_zone_rows > 0 and served_cells > 0 and served_zone_observations > 0
