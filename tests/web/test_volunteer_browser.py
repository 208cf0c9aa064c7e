"""A volunteer signs up in Debian's Chromium (Playwright), with the network cut to the test
servers: the form (a mistake comes back with the field named and nothing lost), the mail received
by a real SMTP server (aiosmtpd) started here, the link followed, the credentials shown once (a
reload shows them no more), the bundle downloaded, whose ESPHome file passes `esphome config`,
and the flashing guide; axe-core on every page; French; a phone's width; a post without the
form's CSRF token refused. Screenshots go to build/screenshots/volunteer-*.png."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import Database
from civicair.core.security import hash_secret
from civicair.core.settings import Settings
from civicair.gateway.mosquitto_auth import verify_mosquitto_password
from pydantic import SecretStr

from tests.conftest import wait_until
from tests.firmware_tools.esphome_check import esphome_config, load
from tests.firmware_tools.smtp import Mailbox, smtp_server
from tests.web.browser import SHOTS, axe_serious, cut_network, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[tuple[str, Mailbox]]:
    """The app `civicair api` serves, mailing through a real SMTP server."""
    from civicair.runtime import build_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with smtp_server() as box:
        s = settings.model_copy(update={"public_base_url": base, "smtp_url": SecretStr(box.url),
                                        "device_mqtt_url": "mqtt://127.0.0.1:1883"})
        with serve(build_app(s, db), port=port):
            yield base, box


def no_serious_violation(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"volunteer-{name}.png"), full_page=True)
    found = axe_serious(page)
    assert not found, (name, found)


def test_a_volunteer_signs_up_confirms_by_mail_sees_the_credentials_once_and_flashes(
        browser: Any, site: tuple[str, Mailbox], db: Database, tmp_path: Path) -> None:
    base, mailbox = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True, locale="en-GB")
    cut = cut_network(ctx, base)
    page = ctx.new_page()
    page.goto(f"{base}/volunteer/sign-up")
    assert page.locator("h1").inner_text() == "Register a sensor"
    no_serious_violation(page, "sign-up")

    page.fill("#name", "balcony")
    page.fill("#email", "dana@example.org")
    page.check("#sensor-SDS011")
    page.check("#sensor-BME280")
    page.check("#transport-mqtt")
    page.fill("#lat", "48.5734")  # the longitude is forgotten
    page.check("#consent_public")
    page.click("button[type=submit]")
    assert page.locator("#lon-error").inner_text() == "Required: please fill in this field."
    assert page.input_value("#name") == "balcony" and page.input_value("#email") == "dana@example.org"
    assert page.is_checked("#sensor-SDS011") and page.is_checked("#sensor-BME280") and page.is_checked("#consent_public")
    assert page.get_attribute("#lon", "aria-invalid") == "true"
    no_serious_violation(page, "sign-up-error")
    page.fill("#lon", "7.7521")
    page.click("button[type=submit]")
    page.locator("#answer").wait_for()
    no_serious_violation(page, "check-mail")
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one() == 0

    (link,) = wait_until(lambda: mailbox.links("dana@example.org"), 15, message="the confirmation mail")
    page.goto(link)
    assert "balcony" in page.inner_text("main") and "SDS011, BME280" in page.inner_text("main")
    no_serious_violation(page, "confirm")
    page.click("#confirm")
    page.wait_for_url(f"{base}/volunteer/credentials")
    token, password = page.inner_text("#device-token"), page.inner_text("#mqtt-password")
    uid, topic = page.inner_text("#uid"), page.inner_text("#mqtt-topic")
    assert topic == f"civicair/v1/devices/{uid}/up"
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.devices)).one()
    assert (row.uid, row.token_hash, row.owner_email) == (uid, hash_secret(token), "dana@example.org")
    assert verify_mosquitto_password(password, row.mqtt_password_hash)
    no_serious_violation(page, "credentials")

    with page.expect_download() as download:
        page.click("#download")
    archive = tmp_path / "bundle.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    config = load((folder / "esphome.yaml").read_bytes())
    assert (config["mqtt"]["username"], config["mqtt"]["password"]) == (uid, password)  # filled in, not placeholders
    assert "Authorization" not in (folder / "esphome.yaml").read_text()
    checked = esphome_config(folder)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "Send to own API: on" in (folder / "airrohr.txt").read_text()  # the sensor.community settings stay

    page.reload()  # shown once: the reload shows them no more
    assert page.locator("#credentials").count() == 0
    assert token not in page.content() and password not in page.content()
    assert "already shown" in page.inner_text("h1").lower()
    page.goto(link)  # and the link is spent
    assert page.locator("#confirm").count() == 0 and "already used" in page.inner_text("main")

    page.goto(f"{base}/volunteer/flash")
    assert "esphome run esphome.yaml" in page.inner_text("main")
    no_serious_violation(page, "flash")
    assert not cut.blocked, cut.blocked

    # a post without the form's CSRF token is refused, and creates nothing
    refused = ctx.request.post(f"{base}/volunteer/sign-up", form={
        "name": "forged", "kind": "fixed", "sensors": "SDS011", "transport": "mqtt", "lat": "48.6", "lon": "7.7",
        "email": "eve@example.org"})
    assert refused.status == 403
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.signups)).scalar_one() == 1
    assert not mailbox.to("eve@example.org")
    ctx.close()


def test_the_sign_up_pages_in_french_on_a_phone(browser: Any, site: tuple[str, Mailbox]) -> None:
    base, _ = site
    ctx = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    cut_network(ctx, base)
    page = ctx.new_page()
    page.goto(f"{base}/volunteer/sign-up?lang=fr")
    assert page.locator("h1").inner_text() == "Inscrire un capteur"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    no_serious_violation(page, "sign-up-phone-fr")
    page.goto(f"{base}/volunteer/flash")
    assert page.locator("h1").inner_text() == "Flasher votre capteur avec ESPHome"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    no_serious_violation(page, "flash-phone-fr")
    ctx.close()
