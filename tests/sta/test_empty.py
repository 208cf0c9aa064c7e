"""SensorThings over an empty database, and over things the registry job has not numbered yet."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sta.conftest import prepare, serve_sta
from tests.sta.test_conformance import SETS

pytestmark = pytest.mark.db


def test_an_empty_database_answers_empty_sets_and_404s(db: Any, settings: Any) -> None:
    with serve_sta(settings, db) as (base, _), httpx.Client() as client:
        for s in SETS:
            r = client.get(f"{base}/sta/v1.1/{s}", params={"$count": "true"})
            assert r.status_code == 200 and r.json()["value"] == [] and r.json()["@iot.count"] == 0, s
        assert client.get(f"{base}/sta/v1.1/Things(1)").status_code == 404
        assert client.get(f"{base}/sta/v1.1/Observations", params={"$filter": "result gt 1"}).json()["value"] == []


def test_things_appear_once_registered_and_a_withdrawn_consent_hides_them_at_once(db: Any, settings: Any) -> None:
    import sqlalchemy as sa
    from civicair.core import tables

    from tests.city import seed_city

    city = seed_city(db, "empty")
    with serve_sta(settings, db) as (base, served), httpx.Client() as client:
        assert client.get(f"{base}/sta/v1.1/Things").json()["value"] == []  # not numbered yet
        prepare(db, served)
        things = client.get(f"{base}/sta/v1.1/Things").json()["value"]
        pseudonyms = {t["properties"].get("pseudonym"): t["@iot.id"] for t in things}
        f1 = pseudonyms[city.pseudonyms["F1"]]
        assert city.pseudonyms["F6"] not in pseudonyms  # no consent
        assert city.pseudonyms["B1"] not in pseudonyms  # mobile: no per-device series
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.devices).where(tables.devices.c.id == city.fixed["F1"])
                         .values(consent_public=False))
        assert client.get(f"{base}/sta/v1.1/Things({f1})").status_code == 404
        assert client.get(f"{base}/sta/v1.1/Datastreams({f1 * 16 + 2})/Observations").status_code == 404
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.devices).where(tables.devices.c.id == city.fixed["F1"])
                         .values(consent_public=True))
        prepare(db, served)
        assert client.get(f"{base}/sta/v1.1/Things({f1})").json()["@iot.id"] == f1  # the same id again


def test_a_stale_catalogue_serves_no_observation_of_a_device_that_withdrew(db: Any, settings: Any) -> None:
    import sqlalchemy as sa
    from civicair.core import tables

    from tests.city import seed_city

    city = seed_city(db, "stale")
    with serve_sta(settings, db, catalogue_ttl_s=3600) as (base, served), httpx.Client() as client:
        prepare(db, served)
        things = client.get(f"{base}/sta/v1.1/Things").json()["value"]
        f1 = next(t["@iot.id"] for t in things if t["properties"].get("pseudonym") == city.pseudonyms["F1"])
        ds = f1 * 16 + 2
        assert client.get(f"{base}/sta/v1.1/Datastreams({ds})/Observations").json()["value"]
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.devices).where(tables.devices.c.id == city.fixed["F1"])
                         .values(consent_public=False))
        # still listed by the hour-old catalogue, but the read model refuses its series at once
        assert client.get(f"{base}/sta/v1.1/Things({f1})").status_code == 200
        assert client.get(f"{base}/sta/v1.1/Datastreams({ds})/Observations").json()["value"] == []
        everything = client.get(f"{base}/sta/v1.1/Observations", params={"$top": "1000"})
        assert everything.status_code == 200 and everything.json()["value"]
        assert all(o["@iot.id"] >> 24 != ds for o in everything.json()["value"])
        filtered = client.get(f"{base}/sta/v1.1/Observations", params={"$filter": "result gt 0", "$top": "1000"})
        assert filtered.status_code == 200 and all(o["@iot.id"] >> 24 != ds for o in filtered.json()["value"])
