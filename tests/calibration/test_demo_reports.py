"""Every demo device's partner report renders: the demo city seeded the way `civicair up --demo`
does (the simulator's sensors, stations and backfill through the real MQTT → ingest path), the
calibration job run, then every device's report requested over real HTTP (JSON and HTML, PM2.5
and PM10). Every state a device can be in occurs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.core import tables
from civicair.core.security import hash_secret, new_api_key

from tests.calibration.demo_city import seed_demo_city
from tests.city import serve_app

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow]


def test_every_demo_device_has_a_report_in_json_and_html(db, settings, mqtt_url, unique) -> None:
    city = seed_demo_city(settings, db, mqtt_url, unique)
    assert city.published > 8000
    with db.engine.begin() as conn:
        summary = run_calibration(conn, settings, now=datetime.now(UTC))
    print(summary.as_dict())
    key = new_api_key()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.partner_api_keys).values(name="ATMO", key_hash=hash_secret(key),
                                                               scopes=["calibration"]))
        devices = conn.execute(sa.select(tables.devices.c.uid, tables.devices.c.pseudonym, tables.devices.c.kind,
                                         tables.devices.c.status, tables.devices.c.stars)
                               .order_by(tables.devices.c.uid)).all()
    assert len(devices) == 28
    by_uid = {d.uid: d for d in devices}
    states: Counter[str] = Counter()
    h = {"X-API-Key": key}
    with serve_app(settings, db) as base, httpx.Client(base_url=f"{base}/v1/partner/calibration", headers=h,
                                                      timeout=60) as client:
        listed = {d["device"]: d for d in client.get("/devices").json()["results"]}
        for d in devices:
            for quantity in ("pm25", "pm10"):
                r = client.get(f"/devices/{d.pseudonym}", params={"quantity": quantity})
                assert r.status_code == 200, (d.uid, quantity, r.text[:500])
                rep = r.json()
                page = client.get(f"/devices/{d.pseudonym}/report.html", params={"quantity": quantity})
                assert page.status_code == 200, (d.uid, quantity, page.text[:500])
                assert rep["quantity_label"].replace("<", "&lt;") in page.text and rep["unit"] in page.text
                assert rep["verdict"] and d.uid not in page.text
                if quantity == "pm25":
                    states[rep["state"]] += 1
                    print(f"{d.uid}: {rep['state']:<17} {rep['status']:<17} stars {rep['stars']} "
                          f"{[r['code'] for r in rep['reasons'] if r['level'] != 'note']}")
                if rep["status"] == "unreliable":
                    assert rep["stars"] is None or rep["stars"] <= 2, (d.uid, rep["stars"])
            if d.kind == "fixed":
                assert all(isinstance(m["quantity"], str) for m in listed[d.pseudonym]["models"])
            if d.status == "unreliable":
                assert d.stars is None or d.stars <= 2, d.uid
    print(states)
    assert {"colocated", "network", "epa", "insufficient_data", "unreliable", "none"} <= set(states)
    assert by_uid["ca-demo-fixed-18"].status == "unreliable"  # stuck
    assert by_uid["ca-demo-fixed-17"].status == "insufficient_data"  # installed 40 h ago
    assert states["none"] >= 6  # the bikes: not calibrated
