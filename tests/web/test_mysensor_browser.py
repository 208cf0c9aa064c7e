"""A volunteer's "my sensor" in Debian's Chromium (Playwright), the network cut to the test server:
sign in with the device token, see the first reading arrive after the test publishes it over a real
MQTT broker through the running pipeline (listener → batch writer → PostgreSQL), draw a privacy zone
on the map, rotate (the old token is then refused), erase (the device is gone, the session ended).
axe-core on every page; a post without the CSRF token refused; phone-width screenshots in
build/screenshots/ (mysensor-*.png)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import Database, libpq_url
from civicair.core.security import hash_secret
from civicair.core.settings import Settings
from civicair.firmware_tools import service
from civicair.firmware_tools.schemas import RegistrationRequest

from tests.conftest import wait_until
from tests.web.browser import SHOTS, axe_serious, cut_network, serve

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


def publish(mqtt_url: str, topic: str, payload: bytes) -> None:
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def running(settings: Settings, db: Database, mqtt_url: str, unique: str) -> Iterator[tuple[str, Settings]]:
    """The service as `civicair up` wires it: the MQTT pipeline (under a topic prefix of this test)
    and the app on a real uvicorn server."""
    from civicair.runtime import build_app, start_pipeline

    port = free_port()
    s = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}",
                                    "direct_topic_prefix": f"test/{unique}/civicair/v1/devices",
                                    # the broker is shared: hear no other test's uplinks
                                    "chirpstack_topic_prefix": f"test/{unique}/application",
                                    "tts_topic_prefix": f"test/{unique}/v3"})
    pipeline = start_pipeline(s, libpq_url(db.url), mqtt_url, client_id=f"mysensor-{unique}")
    try:
        assert pipeline.listener.connected.wait(10)
        with serve(build_app(s, db), port=port):
            yield f"http://127.0.0.1:{port}", s
    finally:
        pipeline.stop()


def check_axe(page: Any, name: str) -> None:
    found = axe_serious(page)
    assert not found, f"{name}: {found}"


def phone_shot(browser: Any, base: str, cookies: list[dict[str, Any]], path: str, name: str) -> None:
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    cut_network(ctx, base)
    ctx.add_cookies(cookies)
    page = ctx.new_page()
    page.goto(base + path)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(SHOTS / f"mysensor-{name}-phone.png"), full_page=True)
    ctx.close()
    assert width <= PHONE["width"], f"{path} scrolls sideways on a phone ({width} px)"


def test_a_volunteer_signs_in_sees_the_first_reading_sets_a_zone_rotates_and_erases(
        browser: Any, running: tuple[str, Settings], db: Database, mqtt_url: str) -> None:
    base, settings = running
    with db.engine.begin() as conn:
        reg = service.register_device(conn, settings, RegistrationRequest(
            name="my bike", kind="mobile", sensors=["SDS011"], transport="mqtt", lat=48.5734, lon=7.7521,
            email="v@example.org", consent_public=True))
    old_token = reg.credentials.device_token
    ctx = browser.new_context(viewport={"width": 1100, "height": 950})
    cut = cut_network(ctx, base)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # sign in with the device token
    page.goto(base + "/my-sensor")
    assert page.url == base + "/my-sensor/sign-in"
    check_axe(page, "sign-in")
    page.fill("#device_token", old_token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/my-sensor")
    assert page.locator("#no-readings").is_visible()
    assert page.locator("#publication").get_attribute("data-publication") == "pending"
    check_axe(page, "my sensor (no data)")

    # a post without the CSRF token, with the session cookie: refused, nothing rotated
    r = page.request.post(base + "/my-sensor/rotate", form={})
    assert r.status == 403
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)
                            .where(tables.devices.c.token_hash == hash_secret(old_token))).scalar_one() == 1

    # the first reading, over MQTT through the running pipeline, appears on a refresh
    measured = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    publish(mqtt_url, f"{settings.direct_topic_prefix}/{reg.uid}/up", json.dumps({
        "time": measured.isoformat(), "readings": {"pm25": 17.4, "pm10": 23.9},
        "location": {"lat": 48.5801, "lon": 7.7602}}).encode())

    def arrived() -> bool:
        page.reload()
        return page.locator("#readings tr[data-quantity='pm25']").count() == 1

    wait_until(arrived, 20, interval=0.5, message="the first reading on the page")
    row = page.locator("#readings tr[data-quantity='pm25']").inner_text()
    assert "17.4" in row and measured.strftime("%Y-%m-%d %H:%M") in row
    assert "23.9" in page.locator("#readings tr[data-quantity='pm10']").inner_text()
    assert page.locator("#count-24h").inner_text() == "2"
    page.screenshot(path=str(SHOTS / "mysensor-home.png"), full_page=True)
    check_axe(page, "my sensor (first reading)")

    # a privacy zone drawn on the map
    page.click("#zones-link")
    page.wait_for_url(base + "/my-sensor/zones")
    page.locator("#zones-map[data-ready='true']").wait_for(timeout=15000)
    check_axe(page, "privacy zones")
    cfg = json.loads(page.locator("#zones-map").get_attribute("data-config"))
    box = page.locator("#zones-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    lat, lon = float(page.input_value("#new-lat")), float(page.input_value("#new-lon"))
    assert lat == pytest.approx(cfg["center"][0], abs=3e-4) and lon == pytest.approx(cfg["center"][1], abs=3e-4)
    assert page.locator("#zones-map").get_attribute("data-zones") == "1"
    page.locator("#map-note").wait_for()  # no tile server reachable: the page says so, the zones still draw
    page.fill("#new-radius", "400")
    circle = page.locator("#zones-map path.leaflet-interactive")
    assert circle.count() == 1
    page.screenshot(path=str(SHOTS / "mysensor-zones.png"), full_page=True)
    page.click("#zones-save")
    page.locator("#saved").wait_for()
    with db.engine.connect() as conn:
        zones = conn.execute(sa.select(tables.devices.c.privacy_zones)
                             .where(tables.devices.c.uid == reg.uid)).scalar_one()
    assert len(zones) == 1 and zones[0]["radius_m"] == 400
    assert zones[0]["lat"] == pytest.approx(lat, abs=1e-6) and zones[0]["lon"] == pytest.approx(lon, abs=1e-6)
    page.locator("#zones-map[data-ready='true']").wait_for()
    assert page.locator("#zones-map").get_attribute("data-zones") == "1"  # the saved zone, drawn again
    check_axe(page, "privacy zones (saved)")

    # the calibration report of the own device
    page.goto(base + "/my-sensor/report?quantity=pm25")
    assert reg.pseudonym in page.content()
    check_axe(page, "calibration report")

    cookies = ctx.cookies()
    for path, name in (("/my-sensor", "home"), ("/my-sensor/zones", "zones")):
        phone_shot(browser, base, cookies, path, name)

    # new credentials, shown once; the old token is then refused
    page.goto(base + "/my-sensor")
    page.click("#rotate")
    page.locator("#new-token").wait_for()
    new_token = page.inner_text("#new-token")
    assert new_token and new_token != old_token
    check_axe(page, "new credentials")
    other = browser.new_context()
    cut_network(other, base)
    p2 = other.new_page()
    p2.goto(base + "/my-sensor/sign-in")
    p2.fill("#device_token", old_token)
    p2.click("button[type=submit]")
    p2.locator("#error").wait_for()
    assert p2.url == base + "/my-sensor/sign-in"
    check_axe(p2, "sign-in (refused)")
    other.close()
    assert httpx.get(f"{base}/v1/volunteer/me", headers={"Authorization": f"Bearer {old_token}"},
                     timeout=10).status_code == 401
    assert httpx.get(f"{base}/v1/volunteer/me", headers={"Authorization": f"Bearer {new_token}"},
                     timeout=10).status_code == 200

    # erase, with a confirmation step
    page.goto(base + "/my-sensor")
    page.click("#erase")
    page.locator("#erase-confirm").wait_for()
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(tables.devices.c.id).where(tables.devices.c.uid == reg.uid)).first() is not None
    check_axe(page, "erase confirmation")
    page.click("#erase-confirm")
    page.locator("#message").wait_for()
    check_axe(page, "erased")
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(tables.devices.c.id).where(tables.devices.c.uid == reg.uid)).first() is None
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.readings)).scalar_one() == 0
    assert not any(c["name"] == "civicair_session" for c in ctx.cookies())
    page.goto(base + "/my-sensor")
    assert page.url == base + "/my-sensor/sign-in"
    tiles = urlsplit(settings.map_tiles_url.replace("{s}", "a")).netloc
    assert cut.blocked and all(urlsplit(u).netloc == tiles for u in cut.blocked), cut.blocked  # only base-map tiles
    assert not errors, errors
    ctx.close()


def test_sign_out_ends_the_session_in_the_browser(browser: Any, running: tuple[str, Settings], db: Database) -> None:
    base, settings = running
    with db.engine.begin() as conn:
        reg = service.register_device(conn, settings, RegistrationRequest(
            name="balcony", kind="fixed", sensors=["SDS011"], transport="mqtt", lat=48.5734, lon=7.7521,
            email="v@example.org", consent_public=True))
    ctx = browser.new_context(viewport=PHONE, is_mobile=True)
    cut_network(ctx, base)
    page = ctx.new_page()
    page.goto(base + "/my-sensor/sign-in?lang=fr")
    page.fill("#device_token", reg.credentials.device_token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/my-sensor")
    assert "Mon capteur" in page.inner_text("h1")
    assert page.locator("#zones-link").count() == 0  # a fixed sensor has no privacy zones
    page.screenshot(path=str(SHOTS / "mysensor-home-fixed-fr-phone.png"), full_page=True)
    check_axe(page, "my sensor (fixed, fr)")
    page.click("form.signout button")
    page.wait_for_url(base + "/my-sensor/sign-in")
    assert not any(c["name"] == "civicair_session" for c in ctx.cookies())
    page.goto(base + "/my-sensor")
    assert page.url == base + "/my-sensor/sign-in"
    ctx.close()


def test_without_javascript_the_forms_still_sign_in_and_set_a_zone(browser: Any, running: tuple[str, Settings],
                                                                   db: Database) -> None:
    base, settings = running
    with db.engine.begin() as conn:
        reg = service.register_device(conn, settings, RegistrationRequest(
            name="old phone", kind="mobile", sensors=["SDS011"], transport="mqtt", lat=48.5734, lon=7.7521,
            email="v@example.org", consent_public=True))
    ctx = browser.new_context(java_script_enabled=False, viewport=PHONE)
    cut = cut_network(ctx, base)
    page = ctx.new_page()
    page.goto(base + "/my-sensor/sign-in")
    page.fill("#device_token", reg.credentials.device_token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/my-sensor")
    page.click("#zones-link")
    assert page.locator("#map-help").is_hidden()  # the map's help shows only where the map works
    page.fill("#new-lat", "48,5812")  # a French keyboard's decimal comma
    page.fill("#new-lon", "7.7391")
    page.fill("#new-radius", "250")
    page.click("#zones-save")
    page.locator("#saved").wait_for()
    with db.engine.connect() as conn:
        zones = conn.execute(sa.select(tables.devices.c.privacy_zones)
                             .where(tables.devices.c.uid == reg.uid)).scalar_one()
    assert zones == [{"lat": 48.5812, "lon": 7.7391, "radius_m": 250.0}]
    assert not cut.blocked  # no script ran: not even a tile was asked for
    ctx.close()
