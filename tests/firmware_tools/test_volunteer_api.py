"""The volunteer API over real HTTP: registration, status, rotation, bundle, two-step erase."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.security import hash_secret
from civicair.gateway.mosquitto_auth import verify_mosquitto_password

from tests.firmware_tools.esphome_check import load

FORM: dict[str, Any] = {"name": "garden", "kind": "fixed", "sensors": ["SDS011", "BME280"], "transport": "mqtt",
                        "lat": 45.75, "lon": 4.85, "email": "bob@example.org", "chip_id": "esp32-a1b2c3"}


def register(base: str, **changes: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/volunteer/devices", json={**FORM, **changes}, timeout=10)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db: Database, table: sa.Table) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_register_then_status_and_rotate(live_api: str, db: Database) -> None:
    r = register(live_api)
    assert r.status_code == 201, r.text
    res = r.json()
    token = res["credentials"]["device_token"]
    me = httpx.get(f"{live_api}/v1/volunteer/me", headers=auth(token), timeout=10)
    assert me.json() == {"uid": res["uid"], "pseudonym": res["pseudonym"]}

    with db.engine.begin() as conn:
        dev_id = conn.execute(sa.select(tables.devices.c.id)).scalar_one()
        conn.execute(sa.update(tables.devices).values(stars=3, status="reliable", last_seen=datetime.now(UTC)))
        now = datetime.now(UTC)
        conn.execute(sa.insert(tables.device_flags).values(device_id=dev_id, flag="stuck", quantity=1,
                                                           period_start=now - timedelta(hours=2), period_end=now))
    st = httpx.get(f"{live_api}/v1/volunteer/device", headers=auth(token), timeout=10)
    assert st.status_code == 200, st.text
    body = st.json()
    assert body["stars"] == 3 and body["status"] == "reliable" and body["last_seen"]
    assert [f["flag"] for f in body["flags"]] == ["stuck"]
    assert body["calibration"] == [] and body["sensors"] == ["SDS011", "BME280"]

    rot = httpx.post(f"{live_api}/v1/volunteer/device/rotate", headers=auth(token), timeout=10)
    assert rot.status_code == 200, rot.text
    new = rot.json()
    assert new["device_token"] != token and new["mqtt_password"] != res["credentials"]["mqtt_password"]
    assert httpx.get(f"{live_api}/v1/volunteer/me", headers=auth(token), timeout=10).status_code == 401
    assert httpx.get(f"{live_api}/v1/volunteer/me", headers=auth(new["device_token"]), timeout=10).status_code == 200
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.devices)).one()
    assert row.token_hash == hash_secret(new["device_token"])
    assert verify_mosquitto_password(new["mqtt_password"], row.mqtt_password_hash)
    assert not verify_mosquitto_password(res["credentials"]["mqtt_password"], row.mqtt_password_hash)


def test_bad_input_names_the_field(live_api: str, db: Database) -> None:
    cases = [({"lat": 123}, "lat"), ({"lon": -181}, "lon"), ({"email": "bob-at-example"}, "email"),
             ({"transport": "lorawan", "dev_eui": "xyz"}, "dev_eui"), ({"kind": "boat"}, "kind"),
             ({"transport": "pigeon"}, "transport"), ({"sensors": ["FOO9"]}, "sensors"),
             ({"dev_eui": "70b3d57ed0001234"}, "dev_eui"), ({"lat": 0, "lon": 0}, "lon"),
             ({"chip_id": "raspberry"}, "chip_id"), ({"name": ""}, "name"), ({"colour": "red"}, "colour")]
    for change, field in cases:
        r = register(live_api, **change)
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["parameter"].split(".")[0] for e in r.json()["errors"]], r.json()
    assert count(db, tables.devices) == 0


def test_duplicates_are_409(live_api: str, db: Database) -> None:
    assert register(live_api).status_code == 201
    dup = register(live_api)
    assert dup.status_code == 409 and "esp32-a1b2c3" in dup.json()["detail"]
    lw = {"transport": "lorawan", "chip_id": None, "dev_eui": "0004A30B001C0530"}
    first = register(live_api, **lw)
    assert first.status_code == 201 and first.json()["credentials"]["lorawan"]["dev_eui"] == "0004a30b001c0530"
    again = register(live_api, **{**lw, "dev_eui": "00:04:a3:0b:00:1c:05:30"})
    assert again.status_code == 409 and again.json()["title"] == "DevEUI already registered"
    assert count(db, tables.devices) == 2


def test_bundle_zip_has_no_private_data(live_api: str, db: Database) -> None:
    res = register(live_api).json()
    r = httpx.get(f"{live_api}/v1/volunteer/device/bundle.zip", headers=auth(res["credentials"]["device_token"]),
                  timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        assert {"esphome.yaml", "secrets.yaml", "README.txt", "label.svg", "airrohr.txt"} <= names
        blob = b"".join(zf.read(n) for n in zf.namelist())
        config = load(next(zf.read(n) for n in zf.namelist() if n.endswith("esphome.yaml")))
    assert config["mqtt"]["username"] == res["uid"]
    assert f"civicair/v1/devices/{res['uid']}/up".encode() in blob
    for private in (b"bob@example.org", b"45.75", b"4.85", res["credentials"]["device_token"].encode()):
        assert private not in blob


def test_erase_needs_confirmation_and_leaves_nothing(live_api: str, db: Database) -> None:
    res = register(live_api).json()
    token = res["credentials"]["device_token"]
    other = register(live_api, chip_id="esp32-ffff01").json()
    now = datetime.now(UTC).replace(microsecond=0)
    with db.engine.begin() as conn:
        ids = dict(conn.execute(sa.select(tables.devices.c.uid, tables.devices.c.id)).all())
        for uid in (res["uid"], other["uid"]):
            conn.execute(sa.insert(tables.readings).values(device_id=ids[uid], time=now, quantity=1, value=12.0))
            conn.execute(sa.insert(tables.uplinks).values(device_id=ids[uid], time=now, route="direct",
                                                          received_at=now))
            conn.execute(sa.insert(tables.hourly).values(device_id=ids[uid], quantity=1, hour=now, n=1, sum=12.0,
                                                         sum_sq=144.0))
        conn.execute(sa.insert(tables.quarantine).values(source="direct", topic=f"x/{res['uid']}/up",
                                                         ref_scheme="uid", ref_value=res["uid"], payload=b"{}"))
    url = f"{live_api}/v1/volunteer/device"
    first = httpx.delete(url, headers=auth(token), timeout=10)
    assert first.status_code == 202 and first.json()["confirm"]
    assert count(db, tables.readings) == 2  # nothing erased yet
    bad = httpx.delete(url, params={"confirm": first.json()["confirm"] + "0"}, headers=auth(token), timeout=10)
    assert bad.status_code == 422 and bad.json()["parameter"] == "confirm"
    done = httpx.delete(url, params={"confirm": first.json()["confirm"]}, headers=auth(token), timeout=10)
    assert done.status_code == 200, done.text
    with db.engine.connect() as conn:
        for table in (tables.readings, tables.uplinks, tables.hourly):
            left = conn.execute(sa.select(table.c.device_id)).scalars().all()
            assert left == [ids[other["uid"]]], table.name
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.quarantine)).scalar_one() == 0
        rows = conn.execute(sa.select(tables.devices)).all()
    assert [r.uid for r in rows] == [other["uid"]]
    everything = json.dumps([dict(r._mapping) for r in rows], default=str)
    assert res["uid"] not in everything and res["pseudonym"] not in everything
    assert httpx.get(f"{live_api}/v1/volunteer/me", headers=auth(token), timeout=10).status_code == 401
