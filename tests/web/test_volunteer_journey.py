"""The volunteer's whole journey in one browser session, as issue 17 asks, with every counterpart
real: the sign-up form; the mail through a real SMTP server (aiosmtpd) and its link; the
credentials shown once; the bundle, whose ESPHome file names the broker the service really runs and
passes `esphome config`; "my sensor" signed in with the token the credentials page showed; then the
device publishes with the MQTT user and password of that page, to the topic of that page, through
the embedded broker that authenticates devices (amqtt, as `civicair up` starts it) and the running
pipeline, and its first reading appears on the page. The other steps (zone, rotation, erasure) are
walked in tests/web/test_mysensor_browser.py."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from civicair.core.broker import free_port
from civicair.core.db import Database, libpq_url
from civicair.core.settings import Settings
from pydantic import SecretStr

from tests.conftest import wait_until
from tests.firmware_tools.esphome_check import esphome_config, load
from tests.firmware_tools.smtp import Mailbox, smtp_server
from tests.gateway.support import DeviceClient
from tests.web.browser import SHOTS, axe_serious, cut_network, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
def service(settings: Settings, db: Database, unique: str) -> Iterator[tuple[str, Mailbox, int]]:
    """What `civicair up` runs (embedded authenticating broker, pipeline, app), mailing through a
    real SMTP server."""
    from civicair.runtime import build_app, start_embedded_broker, start_pipeline

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with smtp_server() as box:
        s, broker = start_embedded_broker(settings.model_copy(update={"embedded_broker_port": 0}), db, demo=False)
        broker_port = broker.broker.port
        s = s.model_copy(update={"public_base_url": base, "smtp_url": SecretStr(box.url),
                                 "device_mqtt_url": f"mqtt://127.0.0.1:{broker_port}"})
        pipeline = start_pipeline(s, libpq_url(db.url), broker.gateway_url, client_id=f"journey-{unique}",
                                  mqtt_v311=True)
        try:
            assert pipeline.listener.connected.wait(10)
            with serve(build_app(s, db), port=port):
                yield base, box, broker_port
        finally:
            pipeline.stop()
            broker.broker.stop()


def _axe(page: Any, name: str) -> None:
    found = axe_serious(page)
    assert not found, (name, found)


def _publish_as_the_device(port: int, user: str, password: str, topic: str, doc: dict[str, Any]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"device-{user}", protocol=mqtt.MQTTv311)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(topic, json.dumps(doc).encode(), qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_sign_up_by_mail_then_the_shown_credentials_sign_in_and_carry_the_first_reading(
        browser: Any, service: tuple[str, Mailbox, int], tmp_path: Path) -> None:
    base, mailbox, broker_port = service
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True, locale="fr-FR")
    ctx.set_default_timeout(60_000)
    cut = cut_network(ctx, base)
    page = ctx.new_page()

    page.goto(f"{base}/volunteer/sign-up")  # French, from the browser's language
    assert page.locator("h1").inner_text() == "Inscrire un capteur"
    page.fill("#name", "fenêtre")
    page.fill("#email", "camille@example.org")
    page.check("#sensor-PMS5003")
    page.check("#sensor-SHT3X")
    page.check("#transport-mqtt")
    page.fill("#lat", "48.5801")
    page.fill("#lon", "7.7405")
    page.check("#consent_public")
    page.click("button[type=submit]")
    page.locator("#answer").wait_for()

    (link,) = wait_until(lambda: mailbox.links("camille@example.org"), 15, message="the confirmation mail")
    assert link.startswith(base + "/volunteer/confirm?token=")
    page.goto(link)
    page.click("#confirm")
    page.wait_for_url(f"{base}/volunteer/credentials")
    token, password = page.inner_text("#device-token"), page.inner_text("#mqtt-password")
    user, topic = page.inner_text("#mqtt-username"), page.inner_text("#mqtt-topic")
    _axe(page, "credentials (fr)")

    with page.expect_download() as download:
        page.click("#download")
    archive = tmp_path / "bundle.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "bundle")
    folder = next(p for p in (tmp_path / "bundle").iterdir() if p.is_dir())
    config = load((folder / "esphome.yaml").read_bytes())
    assert (config["mqtt"]["broker"], int(config["mqtt"]["port"])) == ("127.0.0.1", broker_port)  # the running broker
    assert config["mqtt"]["username"] == user and config["mqtt"]["password"] == password
    checked = esphome_config(folder)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]

    # "my sensor", signed in with the token the credentials page showed
    page.goto(f"{base}/my-sensor")
    page.fill("#device_token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/my-sensor")
    assert page.locator("#no-readings").is_visible()
    assert "fenêtre" in page.locator("h1").inner_text()

    # the device publishes with those credentials through the authenticating broker
    measured = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    _publish_as_the_device(broker_port, user, password, topic,
                           {"time": measured.isoformat(), "readings": {"pm25": 12.6, "temperature": 7.5}})

    def arrived() -> bool:
        page.reload()
        return page.locator("#readings tr[data-quantity='pm25']").count() == 1

    wait_until(arrived, 30, interval=0.5, message="the first reading on my sensor")
    row = page.locator("#readings tr[data-quantity='pm25']").inner_text()
    assert "12.6" in row and "PM2,5" in row  # the quantity named as a French reader writes it
    assert "Température" in page.locator("#readings tr[data-quantity='temperature']").inner_text()
    _axe(page, "my sensor (fr, first reading)")
    page.screenshot(path=str(SHOTS / "volunteer-journey-first-reading.png"), full_page=True)

    # a wrong password is refused by the broker
    bad = DeviceClient(broker_port, user, password + "x")
    bad.close()
    assert bad.refused is True
    assert not cut.blocked or all("tile" in u or "openstreetmap" in u for u in cut.blocked), cut.blocked
    ctx.close()
