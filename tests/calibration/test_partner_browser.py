"""A real browser (Debian's Chromium driven by Playwright) opens a partner report link: it is sent
to the partner area's sign-in form, signs in with the API key, lands on the report, reloads it on
the session cookie alone, and signs out."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.core import tables

from tests.calibration.test_partner_api import make_key
from tests.calibration.test_service import END, START, STATION, seed

pytestmark = pytest.mark.db
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def chromium():
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=FLAGS)
        yield browser
        browser.close()


def test_a_partner_opens_a_report_link_in_a_browser(db, settings, live_api, chromium, tmp_path: Path) -> None:
    _, ids = seed(db, faults={1: "stuck"})
    with db.engine.begin() as conn:
        run_calibration(conn, settings, since=START, now=END - timedelta(minutes=30))
        pseudo = conn.execute(sa.select(tables.devices.c.pseudonym).where(tables.devices.c.id == ids[0])).scalar_one()
    key = make_key(db, ["calibration"])
    page = chromium.new_page()
    link = f"{live_api}/v1/partner/calibration/devices/{pseudo}/report.html"
    page.goto(link)
    assert "/partner/sign-in?next=" in page.url and page.title() == "Partner sign-in — civicair"
    page.fill("#api_key", "cak_not-a-key")
    page.click("button[type=submit]")
    assert "Unknown or revoked API key" in page.inner_text("#error")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    area_link = f"{live_api}/partner/devices/{pseudo}?quantity=pm25"  # the partner area's page of the report
    page.wait_for_url(area_link)
    verdict = page.inner_text("#verdict")
    assert verdict.startswith(f"Device {pseudo} (SDS011), Particulate matter < 2.5 µm in µg/m³ beside station "
                              f"{STATION[0]} Metz-Centre")
    assert "class" in verdict and page.locator("svg").count() == 3
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["civicair_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["expires"] > 0
    assert page.evaluate("document.cookie").find("civicair_session") < 0  # not readable by scripts
    page.reload()
    assert page.url == area_link and page.inner_text("#verdict") == verdict
    page.goto(link)  # the API's own report page takes the session too
    assert page.url == link and page.inner_text("#verdict") == verdict
    page.click("text=Sign out")
    page.wait_for_url("**/partner/sign-in")
    page.goto(link)
    assert "/partner/sign-in" in page.url
