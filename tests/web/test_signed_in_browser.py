"""The partner area and the operator console in Debian's Chromium (Playwright) against a real
uvicorn server and the real database, the network cut to the test server: a partner signs in and
opens the report of a co-located and of a network-calibrated device; an operator replays a dead
letter, attaches a quarantined message and replays it, approves a pending device, whose data then
appear on the public map and API, and not before. axe-core on every page; screenshots (wide and
phone) in build/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.core import tables

from tests.calibration.test_service import END, START, STATION, seed
from tests.web.browser import SHOTS, axe_serious, cut_network
from tests.web.console_seed import (
    key_with,
    map_cells,
    publication,
    readings,
    register_and_push,
    seed_console,
)
from tests.web.test_signed_in_http import csrf

pytestmark = [pytest.mark.db, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


def check(page: Any, name: str, seen: dict[str, list[dict[str, Any]]]) -> None:
    """axe-core's serious/critical violations of this page (collected), and its screenshot."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    seen[name] = axe_serious(page)


def new_page(browser: Any, base: str, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(**{"viewport": {"width": 1100, "height": 900}, **context})
    cut_network(ctx, base)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors


def test_a_partner_signs_in_and_opens_a_colocated_and_a_network_report(browser: Any, db, settings, serve) -> None:
    _, ids = seed(db, faults={1: "stuck"})
    with db.engine.begin() as conn:
        run_calibration(conn, settings, since=START, now=END - timedelta(minutes=30))
        pseudo = {r.id: r.pseudonym for r in conn.execute(sa.select(tables.devices.c.id, tables.devices.c.pseudonym))}
    colocated, network = pseudo[ids[0]], pseudo[ids[2]]
    key = key_with(db, "calibration", name="ATMO Grand Est")
    base = serve()
    SHOTS.mkdir(parents=True, exist_ok=True)
    axe: dict[str, list[dict[str, Any]]] = {}
    ctx, page, errors = new_page(browser, base)
    # a report link sent by e-mail: the browser is sent to the sign-in form first
    link = f"{base}/partner/devices/{colocated}?quantity=pm25"
    page.goto(link)
    assert "/partner/sign-in?next=" in page.url and page.locator("h1").inner_text() == "Partner sign-in"
    check(page, "partner-sign-in", axe)
    page.fill("#api_key", "cak_not-a-key")
    page.click("button[type=submit]")
    assert page.inner_text("#error") == "Unknown or revoked API key."
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(link)
    verdict = page.inner_text("#verdict")
    assert verdict.startswith(f"Device {colocated} (SDS011)") and f"beside station {STATION[0]} Metz-Centre" in verdict
    assert page.locator("svg").count() == 3  # the report's plots
    check(page, "partner-report-colocated", axe)
    session = {c["name"]: c for c in ctx.cookies()}["civicair_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    # the device list, filtered by calibration state with the form, to the network-calibrated device
    page.goto(f"{base}/partner/")
    assert page.locator("#devices tbody tr").count() == 5
    check(page, "partner-devices", axe)
    page.select_option("select[name=state]", "network")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*state=network.*"))
    assert page.locator("#devices tbody tr").count() == 1
    assert page.locator("#devices tbody tr").get_attribute("data-device") == network
    page.click(f'#devices a[href="/partner/devices/{network}?quantity=pm25"]')
    page.wait_for_url(re.compile(rf".*/partner/devices/{network}\?quantity=pm25$"))
    verdict = page.inner_text("#verdict")
    assert verdict.startswith(f"Device {network}") and "network model" in verdict
    check(page, "partner-report-network", axe)

    page.goto(f"{base}/partner/stations/{STATION[0]}")
    assert page.locator("#colocated tbody tr").count() == 2
    check(page, "partner-station", axe)
    page.goto(f"{base}/partner/?lang=fr")
    assert page.locator("h1").inner_text() == "Capteurs et leurs rapports de calibration"
    check(page, "partner-devices-fr", axe)
    phone, ppage, _ = new_page(browser, base, viewport=PHONE)
    phone.add_cookies([session])
    ppage.goto(f"{base}/partner/")
    check(ppage, "partner-devices-phone", axe)
    assert ppage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # no sideways page scroll
    phone.close()

    page.click("#sign-out")
    page.wait_for_url(f"{base}/partner/sign-in")
    page.goto(link)
    assert "/partner/sign-in" in page.url
    assert errors == []
    ctx.close()
    assert {name: v for name, v in axe.items() if v} == {}


def test_an_operator_replays_attaches_and_approves_and_the_device_goes_public_only_then(
        browser: Any, db, settings, serve) -> None:
    base = serve(api_cache_ttl_s=0, k_anonymity=1)  # k = 1: one sensor's cell shows on the map
    c = seed_console(db, settings)
    pending = register_and_push(base, 48.5790, 7.7420, [14.0, 15.0, 16.0, 17.0, 18.0, 19.0])
    other = register_and_push(base, 48.6000, 7.7800, [30.0, 31.0])
    cell = pending["h3_cell"]
    key = key_with(db, "operator", name="Exploitation")
    SHOTS.mkdir(parents=True, exist_ok=True)
    axe: dict[str, list[dict[str, Any]]] = {}

    def api_series(pseudonym: str) -> httpx.Response:
        return httpx.get(f"{base}/v1/devices/{pseudonym}/series", params={"quantity": "pm25"}, timeout=30)

    def public_map_cells(page: Any) -> set[str]:
        page.goto(f"{base}/")
        page.locator("#map[data-ready='true']").wait_for(timeout=20000)
        return {page.locator('path[data-kind="h3"]').nth(i).get_attribute("data-id")
                for i in range(page.locator('path[data-kind="h3"]').count())}

    # before approval: the device is nowhere public
    assert api_series(pending["pseudonym"]).status_code == 404
    assert pending["pseudonym"] not in httpx.get(f"{base}/v1/devices", timeout=30).text
    assert cell not in map_cells(base)
    ctx, page, errors = new_page(browser, base)
    assert cell not in public_map_cells(page)

    page.goto(f"{base}/operator/")
    assert "/operator/sign-in" in page.url
    check(page, "operator-sign-in", axe)
    page.fill("#api_key", key_with(db, "calibration"))  # a partner key without the operator scope
    page.click("button[type=submit]")
    assert page.inner_text("#error") == "This API key does not give access to this area."
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/operator/")
    assert "1 dead letters waiting" in page.inner_text("#summary")
    check(page, "operator-home", axe)

    # a CSRF-less post (a forged form on another site, cookies attached) is refused; nothing changes
    session = {co["name"]: co for co in ctx.cookies()}["civicair_session"]
    with httpx.Client(base_url=base, cookies={"civicair_session": session["value"]}, timeout=30) as forged:
        assert forged.post(f"/operator/devices/{pending['uid']}/approve", data={"note": "forged"}).status_code == 403
        assert forged.post(f"/operator/dead-letters/{c.dead_letter}/replay").status_code == 403
        assert forged.post(f"/operator/quarantine/{c.quarantined}/attach",
                           data={"device_uid": c.late_uid}).status_code == 403
        token = csrf(forged.get("/operator/").text)  # the same session's own token works
        assert forged.post(f"/operator/devices/{other['uid']}/withhold", data={"csrf_token": token}).status_code == 303
    assert publication(db, pending["uid"]) == "pending" and publication(db, other["uid"]) == "withheld"
    assert readings(db, c.airrohr) == [] and readings(db, c.late) == []
    assert api_series(pending["pseudonym"]).status_code == 404

    # dead letters: list → inspect → replay
    page.click("nav a[href='/operator/dead-letters']")
    page.wait_for_url(f"{base}/operator/dead-letters")
    check(page, "operator-dead-letters", axe)
    page.click(f"#dead-letters a[href='/operator/dead-letters/{c.dead_letter}']")
    assert "sensordatavalues" in page.inner_text("#payload") and page.inner_text("#state") == "waiting"
    check(page, "operator-dead-letter", axe)
    page.click("#replay")
    page.wait_for_url(f"{base}/operator/dead-letters/{c.dead_letter}/replay")
    assert page.inner_text("#outcome") == "Replayed: 1 message(s), 2 reading(s) written (stored)."
    assert page.inner_text("#state").startswith("replayed at ") and page.locator("#replay").count() == 0
    assert sorted(readings(db, c.airrohr)) == [(2, 4.5), (3, 8.5)]

    # quarantine: list → inspect → attach (remembering the DevEUI) → replay
    page.click("nav a[href='/operator/quarantine']")
    page.wait_for_url(f"{base}/operator/quarantine")
    assert page.locator("#quarantine tbody tr").count() == 1
    check(page, "operator-quarantine", axe)
    page.click(f"#quarantine a[href='/operator/quarantine/{c.quarantined}']")
    assert "dev_eui=0102030405060708" in page.inner_text("#entry")
    check(page, "operator-quarantine-entry", axe)
    page.fill("#device_uid", "ca-nobody")
    page.click("#attach")
    assert "no device with uid 'ca-nobody'" in page.inner_text("#outcome")
    page.fill("#device_uid", c.late_uid)
    page.click("#attach")
    assert page.inner_text("#outcome").startswith(f"quarantine {c.quarantined} attached to {c.late_uid}")
    assert page.inner_text("#state") == f"attached to {c.late_uid}"
    page.click("#replay-attached")
    assert page.inner_text("#outcome") == "Replayed 1 message(s): 6 reading(s) written, 0 dead letter(s)."
    assert len(readings(db, c.late)) == 6
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(tables.devices.c.dev_eui).where(
            tables.devices.c.uid == c.late_uid)).scalar_one() == "0102030405060708"

    # publication: the pending device → approve
    page.click("nav a[href='/operator/devices']")
    page.wait_for_url(f"{base}/operator/devices")
    row = page.locator(f'#publication tr[data-uid="{pending["uid"]}"]')
    assert row.count() == 1 and page.locator(f'#publication tr[data-uid="{other["uid"]}"]').count() == 0
    check(page, "operator-devices", axe)
    assert api_series(pending["pseudonym"]).status_code == 404  # still not public
    row.locator("form:has(button[data-verb=approve]) input[name=note]").fill("photos of the install checked")
    row.locator("button[data-verb=approve]").click()
    page.wait_for_url(re.compile(r".*/operator/devices\?state=awaiting&changed=.*"))
    assert pending["uid"] in page.inner_text("#outcome")
    assert page.locator(f'#publication tr[data-uid="{pending["uid"]}"]').count() == 0
    assert publication(db, pending["uid"]) == "approved"

    # after approval: its data are on the public API and map (and the withheld one's still not)
    r = api_series(pending["pseudonym"])
    assert r.status_code == 200, r.text
    assert [(x["raw_mean"], x["n_readings"]) for x in r.json()["results"]] == [(16.5, 6)]  # 14…19 pushed
    assert pending["pseudonym"] in httpx.get(f"{base}/v1/devices", timeout=30).text
    assert other["pseudonym"] not in httpx.get(f"{base}/v1/devices", timeout=30).text
    assert cell in map_cells(base) and other["h3_cell"] not in map_cells(base)
    assert cell in public_map_cells(page)
    page.screenshot(path=str(SHOTS / "public-map-after-approval.png"))

    page.goto(f"{base}/operator/health")
    assert "Spool: 0 batch(es) waiting" in page.inner_text("#checks")
    check(page, "operator-health", axe)
    page.goto(f"{base}/operator/devices?state=approved&lang=fr")
    assert page.locator(f'#publication tr[data-uid="{pending["uid"]}"]').count() == 1
    check(page, "operator-devices-fr", axe)
    phone, ppage, _ = new_page(browser, base, viewport=PHONE)
    phone.add_cookies([session])
    for path, name in (("/operator/devices?state=approved", "operator-devices-phone"),
                       (f"/operator/dead-letters/{c.dead_letter}", "operator-dead-letter-phone")):
        ppage.goto(base + path)
        check(ppage, name, axe)
        assert ppage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, name
    phone.close()
    page.click("#sign-out")
    page.wait_for_url(f"{base}/operator/sign-in")
    page.goto(f"{base}/operator/devices")
    assert "/operator/sign-in" in page.url
    assert [e for e in errors if "tile" not in e] == []
    ctx.close()
    assert {name: v for name, v in axe.items() if v} == {}
