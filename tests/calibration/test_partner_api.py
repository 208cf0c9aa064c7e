"""Partner calibration API over real HTTP: accepted key, wrong key, missing key, wrong scope;
device list filters, device history/report (JSON + HTML), station report; pseudonyms only."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.core import tables
from civicair.core.security import hash_secret, new_api_key

from tests.calibration.test_service import END, HOURS, STATION, seed

pytestmark = pytest.mark.db


def make_key(db, scopes: list[str]) -> str:
    key = new_api_key()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.partner_api_keys).values(name="ATMO", key_hash=hash_secret(key), scopes=scopes))
    return key


def test_partner_calibration_api(db, settings, live_api) -> None:
    net, ids = seed(db, faults={1: "stuck"})
    run_calibration(settings, db, since=END - timedelta(hours=HOURS), now=END - timedelta(minutes=30))
    good = make_key(db, ["calibration"])
    other = make_key(db, ["read"])
    with db.engine.connect() as conn:
        devs = {r.id: r for r in conn.execute(sa.select(tables.devices))}
    base = f"{live_api}/v1/partner/calibration"
    with httpx.Client(timeout=30) as client:
        r = client.get(f"{base}/devices")
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert client.get(f"{base}/devices", headers={"X-API-Key": "cak_wrong"}).status_code == 401
        r = client.get(f"{base}/devices", headers={"X-API-Key": other})
        assert r.status_code == 403 and "calibration" in r.json()["detail"]

        h = {"X-API-Key": good}
        r = client.get(f"{base}/devices", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["meta"]["found"] == 4
        listed = {d["device"]: d for d in body["results"]}
        assert set(listed) == {d.pseudonym for d in devs.values()}
        assert all(d["status"] and "uid" not in d for d in body["results"])
        for secret in ("ca-test0", "d0"):
            assert f'"{secret}"' not in r.text
        assert listed[devs[ids[0]].pseudonym]["models"][0]["method"] == "huber"

        r = client.get(f"{base}/devices", headers=h, params={"status": "reliable"})
        assert {d["device"] for d in r.json()["results"]} == {d.pseudonym for d in devs.values() if d.status == "reliable"}
        assert client.get(f"{base}/devices", headers=h, params={"status": "bogus"}).status_code == 422
        r = client.get(f"{base}/devices", headers=h, params={"sensor_type": "PMS5003"})
        assert [d["device"] for d in r.json()["results"]] == [devs[ids[3]].pseudonym]
        r = client.get(f"{base}/devices", headers=h, params={"station": STATION[0]})
        assert {d["device"] for d in r.json()["results"]} == {devs[ids[0]].pseudonym, devs[ids[1]].pseudonym}

        p0 = devs[ids[0]].pseudonym
        r = client.get(f"{base}/devices/{p0}", headers=h)
        assert r.status_code == 200, r.text
        rep = r.json()
        assert rep["model"]["method"] == "huber" and rep["class"] in (1, 2)
        assert rep["metrics_calibrated"]["r2"] > 0.9 and rep["calibrations"][0]["active"]
        assert rep["status_history"][0]["status"] == devs[ids[0]].status
        assert len(rep["series"]["hours"]) == HOURS - 1  # the under-covered hour has no calibrated mean
        r = client.get(f"{base}/devices/{devs[ids[1]].pseudonym}", headers=h)
        assert any(f["flag"] == "stuck" and f["evidence"]["hours"] >= 6 for f in r.json()["flags"])
        r = client.get(f"{base}/devices/{p0}/report.html", headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.text.count("<svg") == 3 and "huber" in r.text and "ca-test0" not in r.text
        assert client.get(f"{base}/devices/{p0}", headers=h, params={"format": "html"}).text.startswith("<!doctype")
        assert client.get(f"{base}/devices/unknown", headers=h).status_code == 404

        r = client.get(f"{base}/stations/{STATION[0]}", headers=h)
        assert r.status_code == 200
        st = r.json()
        assert st["station"]["name"] == "Metz-Centre" and st["window"]["readings"] == HOURS
        assert {d["pseudonym"] for d in st["devices"]} == {devs[ids[0]].pseudonym, devs[ids[1]].pseudonym}
        assert client.get(f"{base}/stations/{STATION[0]}", headers=h, params={"format": "html"}).status_code == 200
        assert client.get(f"{base}/stations/NOPE", headers=h).status_code == 404
        assert client.get(f"{base}/stations/{STATION[0]}", headers={"X-API-Key": other}).status_code == 403
