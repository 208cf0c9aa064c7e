"""The volunteer pages over real HTTP (a browser's cookies, no JavaScript): without a mail server
the form creates the sensor at once and its credentials are still shown once; the bundle form
fills in only the secrets that match; an unknown token gets no bundle."""

from __future__ import annotations

import io
import re
import zipfile

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.firmware_tools.bundle import PLACEHOLDER

from tests.firmware_tools.esphome_check import load

pytestmark = pytest.mark.db
FORM = {"name": "balcony", "kind": "fixed", "sensors": ["SPS30", "SHT3X"], "transport": "mqtt", "lat": "48.5734",
        "lon": "7.7521", "email": "erin@example.org"}


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def dd(html: str, ident: str) -> str:
    return re.search(rf'<dd id="{ident}">([^<]+)</dd>', html).group(1)  # type: ignore[union-attr]


def devices(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one())


def test_without_a_mail_server_the_form_creates_the_sensor_and_shows_its_credentials_once(
        live_api: str, db: Database) -> None:
    with httpx.Client(base_url=live_api, timeout=10, follow_redirects=True) as client:
        token = csrf(client.get("/volunteer/sign-up").text)
        shown = client.post("/volunteer/sign-up", data={**FORM, "csrf_token": token})
        assert shown.status_code == 200 and str(shown.url).endswith("/volunteer/credentials"), shown.text[:500]
        assert shown.headers["cache-control"] == "no-store"
        device_token, password = dd(shown.text, "device-token"), dd(shown.text, "mqtt-password")
        again = client.get("/volunteer/credentials")  # what a reload asks for
        assert again.status_code == 410 and device_token not in again.text and password not in again.text
        assert devices(db) == 1  # a reload never registers twice

        form_token = csrf(shown.text)
        good = client.post("/volunteer/bundle", data={"csrf_token": form_token, "device_token": device_token,
                                                      "mqtt_password": password})
        wrong = client.post("/volunteer/bundle", data={"csrf_token": form_token, "device_token": device_token,
                                                       "mqtt_password": "guessed"})
        unknown = client.post("/volunteer/bundle", data={"csrf_token": form_token, "device_token": "cat_nope"})
    assert good.headers["content-type"] == "application/zip" and wrong.status_code == 200
    assert unknown.status_code == 401 and "unknown" in unknown.text

    def mqtt_password(r: httpx.Response) -> str:
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            return load(next(zf.read(n) for n in zf.namelist() if n.endswith("esphome.yaml")))["mqtt"]["password"]

    assert mqtt_password(good) == password and mqtt_password(wrong) == PLACEHOLDER


def test_a_stolen_credentials_cookie_shows_nothing_after_the_first_view(live_api: str, db: Database) -> None:
    with httpx.Client(base_url=live_api, timeout=10) as client:
        token = csrf(client.get("/volunteer/sign-up").text)
        redirect = client.post("/volunteer/sign-up", data={**FORM, "csrf_token": token})
        assert redirect.status_code == 303 and redirect.headers["location"] == "/volunteer/credentials"
        cookie = redirect.cookies["civicair_credentials"]
    assert "HttpOnly" in redirect.headers["set-cookie"] and "SameSite=strict" in redirect.headers["set-cookie"]
    first = httpx.get(f"{live_api}/volunteer/credentials", cookies={"civicair_credentials": cookie})
    replay = httpx.get(f"{live_api}/volunteer/credentials", cookies={"civicair_credentials": cookie})
    forged = httpx.get(f"{live_api}/volunteer/credentials", cookies={"civicair_credentials": cookie[:-4] + "AAAA"})
    assert first.status_code == 200 and 'id="device-token"' in first.text
    assert replay.status_code == 410 and forged.status_code == 410 and 'id="device-token"' not in replay.text


def test_a_lorawan_sensor_gets_its_keys_and_the_network_server_codec_not_an_esphome_file(
        live_api: str, db: Database) -> None:
    with httpx.Client(base_url=live_api, timeout=10, follow_redirects=True) as client:
        token = csrf(client.get("/volunteer/sign-up").text)
        shown = client.post("/volunteer/sign-up", data={**FORM, "transport": "lorawan", "dev_eui": "70-B3-D5-7E-D0-00-12-34",
                                                        "csrf_token": token})
        assert shown.status_code == 200, shown.text[:500]
        app_key, dev_eui = dd(shown.text, "app-key"), dd(shown.text, "dev-eui")
        r = client.post("/volunteer/bundle", data={"csrf_token": csrf(shown.text), "app_key": app_key,
                                                   "device_token": dd(shown.text, "device-token")})
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = {n.split("/", 1)[1]: n for n in zf.namelist()}
        keys = dict(line.split(": ", 1) for line in zf.read(names["lorawan.txt"]).decode().splitlines())
    assert "esphome.yaml" not in names and {"civicair_binary_v1.js", "civicair_binary_v1.h", "airrohr.txt"} <= set(names)
    assert (keys["dev_eui"], keys["app_key"]) == (dev_eui, app_key) == ("70b3d57ed0001234", app_key)
