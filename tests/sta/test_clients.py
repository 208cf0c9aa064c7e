"""The real SensorThings clients from PyPI against a running civicair (uvicorn, `build_app`):
frost-sta-client (FROST-Server's own Python client) and istsos4-client list things, follow
datastreams, page through a year of a zone's hourly observations and filter by time and by
location; what they read equals the public API's hourly series value for value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.sta.conftest import YEAR_BOX, YEAR_END, YEAR_START, YEAR_ZONE, StaCity

pytestmark = [pytest.mark.db,
              pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")]

W, S, E, N = YEAR_BOX
BOX = f"POLYGON(({W - 0.01} {S - 0.01}, {E + 0.01} {S - 0.01}, {E + 0.01} {N + 0.01}, {W - 0.01} {N + 0.01}, {W - 0.01} {S - 0.01}))"
DECEMBER = "phenomenonTime ge 2025-12-01T00:00:00Z and phenomenonTime lt 2026-01-01T00:00:00Z"


def public_series(base: str, zone: str, start: datetime = YEAR_START, end: datetime = YEAR_END) -> dict[str, float]:
    """datetime_from → value of the public API's hourly series, every page."""
    out: dict[str, float] = {}
    params = {"quantity": "pm25", "interval": "hour", "datetime_from": start.isoformat(),
              "datetime_to": end.isoformat(), "limit": "1000"}
    with httpx.Client(base_url=base) as client:
        while True:
            body = client.get(f"/v1/zones/{zone}/series", params=params).raise_for_status().json()
            for row in body["results"]:
                out[row["period"]["datetime_from"].replace("+00:00", "Z")] = row["value"]
            if not body["meta"]["cursor"]:
                return out
            params["cursor"] = body["meta"]["cursor"]


def as_series(observations: list[tuple[str, float]]) -> dict[str, float]:
    series = {pt.split("/")[0]: value for pt, value in observations}
    assert len(series) == len(observations), "an hour was served twice"
    return series


def test_frost_sta_client_lists_follows_pages_and_filters(sta_city: StaCity) -> None:
    import frost_sta_client as fsc

    svc = fsc.SensorThingsService(sta_city.sta)
    things = list(svc.things().query().list())
    with httpx.Client() as raw:
        listed = raw.get(f"{sta_city.sta}/Things", params={"$top": "1000"}).json()["value"]
    assert [t.id for t in things] == [t["@iot.id"] for t in listed]
    kinds = {t.properties["kind"] for t in things}
    assert kinds == {"device", "zone", "station"}
    (zone,) = [t for t in things if t.properties.get("zone_id") == YEAR_ZONE]

    datastreams = list(svc.things().find(zone.id).get_datastreams().query().list())
    assert [d.unit_of_measurement.symbol for d in datastreams] == ["ug/m3"]
    (ds,) = datastreams
    assert ds.phenomenon_time.startswith("2025-01-01T")

    observations = list(ds.get_observations().query().top(1000).list())
    expected = public_series(sta_city.base, YEAR_ZONE)
    assert len(expected) > 7800  # a year minus the hours missing or below k
    assert as_series([(o.phenomenon_time, o.result) for o in observations]) == expected
    assert all(o.result_quality["n_devices"] >= 3 for o in observations)

    december = list(ds.get_observations().query().filter(DECEMBER).top(1000).list())
    dec_start = datetime(2025, 12, 1, tzinfo=UTC)
    assert as_series([(o.phenomenon_time, o.result) for o in december]) == public_series(
        sta_city.base, YEAR_ZONE, dec_start)

    located = list(svc.locations().query().filter(f"st_within(location, geography'{BOX}')").list())
    in_box = list(svc.things().query().filter(f"geo.intersects(Locations/location, geography'{BOX}')").list())
    assert zone.id in {t.id for t in in_box} and {loc.id for loc in located} == {t.id for t in in_box}
    devices = [t for t in in_box if t.properties["kind"] == "device"]
    cells = {t.properties["zone_id"] for t in in_box if t.properties.get("zone_kind") == "h3"}
    assert len(devices) == 4  # the zone's four sensors, their H3 cells, the zone; the rest is elsewhere
    assert cells == {d.properties["h3_cell"] for d in devices}
    assert len(in_box) == 1 + len(devices) + len(cells)

    counted = ds.get_observations().query().count().skip(8000).top(10).list()
    assert counted.count == len(expected)
    assert [o.phenomenon_time.split("/")[0] for o in counted.entities] == sorted(expected)[8000:8010]


def test_istsos4_client_lists_follows_pages_and_filters(sta_city: StaCity) -> None:
    from istsos4_client import Client, Datastream, Location, Observation, Thing

    expected = public_series(sta_city.base, YEAR_ZONE)
    with Client(sta_city.sta, max_retries=0) as client:
        things = client.list(Thing)
        (zone,) = [t for t in things if t.properties and t.properties.get("zone_id") == YEAR_ZONE]
        assert client.get(Thing, zone.iot_id).name == "Year test zone"
        (ds,) = client.list(Datastream, filter=f"Thing/@iot.id eq {zone.iot_id}")
        assert ds.phenomenon_time is not None and ds.phenomenon_time.start.year == 2025

        observations = list(client.iter_list(Observation, filter=f"Datastream/@iot.id eq {ds.iot_id}", top=1000))
        got = {o.phenomenon_time.start.isoformat().replace("+00:00", "Z"): o.result for o in observations}
        assert len(got) == len(observations) and got == expected

        december = client.list(Observation, filter=f"Datastream/@iot.id eq {ds.iot_id} and {DECEMBER}",
                               orderby="phenomenonTime asc", top=1000)
        dec = {o.phenomenon_time.start.isoformat().replace("+00:00", "Z"): o.result for o in december}
        assert dec == public_series(sta_city.base, YEAR_ZONE, datetime(2025, 12, 1, tzinfo=UTC))
        assert [o.phenomenon_time.start for o in december] == sorted(o.phenomenon_time.start for o in december)

        located = client.list(Location, filter=f"st_within(location, geography'{BOX}')")
        assert len(located) == 9  # the zone, its four sensors and their four H3 cells
        assert zone.iot_id in {loc.iot_id for loc in located}


def test_descending_pages_as_frost_orders_by_default(sta_city: StaCity) -> None:
    """frost-sta-client's orderby() sends `phenomenonTime DESC`: the same hours, newest first."""
    import frost_sta_client as fsc

    svc = fsc.SensorThingsService(sta_city.sta)
    (zone,) = [t for t in svc.things().query().list() if t.properties.get("zone_id") == YEAR_ZONE]
    (ds,) = list(svc.things().find(zone.id).get_datastreams().query().list())
    newest = list(ds.get_observations().query().orderby("phenomenonTime").top(1000).list())
    expected = public_series(sta_city.base, YEAR_ZONE)
    assert [o.phenomenon_time.split("/")[0] for o in newest] == sorted(expected, reverse=True)
    assert [o.result for o in newest] == [expected[k] for k in sorted(expected, reverse=True)]


def test_the_readme_example_runs(sta_city: StaCity) -> None:
    """The README's frost-sta-client example, against this server."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## SensorThings API 1.1")[1]
    code = section.split("```python\n")[1].split("```")[0].replace("http://127.0.0.1:8000/sta/v1.1", sta_city.sta)
    printed: list[tuple[object, ...]] = []
    exec(compile(code, "README.md", "exec"), {"print": lambda *a: printed.append(a)})  # noqa: S102 - our own README
    assert printed and all(n >= 3 for *_, n in printed)
    assert all(str(p[0]) >= "2025-12-01" for p in printed)
