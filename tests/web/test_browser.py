"""The public web in Debian's Chromium (Playwright), with the network cut to the test servers:
the map's colours for known values with no tiles reachable, the time slider, a click to the zone
page whose chart has the hours the API serves, a label's QR code opening its sensor page, the
widget on another origin, /docs offline, axe-core, the first load's bytes. Screenshots go to
build/screenshots/."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.firmware_tools.service import bundle_files
from civicair.readmodel import indices
from PIL import Image

from tests.web.browser import SHOTS, axe_serious, cut_network, serve
from tests.web.conftest import SLIDER_HOUR, Demo, commune_site

pytestmark = [pytest.mark.db, pytest.mark.slow]
EAQI = indices.EAQI


def colour(value: float | None) -> str:
    return indices.band_info(EAQI, indices.band(EAQI, "pm25", value)).colour.lower()


def open_map(browser: Any, demo: Demo, path: str = "/", **context: Any) -> tuple[Any, Any, Any]:
    ctx = browser.new_context(**{"viewport": {"width": 1100, "height": 950}, **context})
    ctx.set_default_timeout(60_000)  # a loaded 2-core CI machine, not a limit on the page
    cut = cut_network(ctx, demo.base)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "tile" not in m.text else None)
    page.goto(demo.base + path)
    try:
        page.locator("#map[data-ready='true']").wait_for(timeout=45_000)
    except Exception:
        raise AssertionError(f"the map did not draw: {errors}, data-ready={page.locator('#map').get_attribute('data-ready')}") from None
    return ctx, cut, page


def test_the_map_draws_the_demo_zones_and_cells_in_their_band_colours_offline(browser: Any, demo: Demo) -> None:
    ctx, cut, page = open_map(browser, demo)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "map.png"))
    for zone_id, value in demo.zone_values.items():
        fill = page.locator(f'path[data-id="{zone_id}"]').get_attribute("fill")
        assert fill and fill.lower() == colour(value), zone_id
    assert len(demo.cell_values) >= 10
    for cell, value in demo.cell_values.items():
        assert page.locator(f'path[data-id="{cell}"]').get_attribute("fill").lower() == colour(value), cell
    # the pixels agree: inside a cell, its colour at 0.8 over the zone's shows
    img = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    cell, value = next((c, v) for c, v in demo.cell_values.items() if indices.band(EAQI, "pm25", v) == 6)
    box = page.locator(f'path[data-id="{cell}"]').bounding_box()
    pixel = img.getpixel((int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)))
    want = [int(colour(value)[i:i + 2], 16) for i in (1, 3, 5)]
    assert sum(abs(p - w) for p, w in zip(pixel, want, strict=True)) < 3 * 60, (pixel, want)
    assert page.locator('path[data-kind="bike"]').count() >= 1
    assert page.locator('path[data-kind="station"]').count() == 2
    # only the tiles were tried, and the page says the base map is unavailable
    assert cut.blocked and {u.split("/")[2] for u in cut.blocked} == {"tile.openstreetmap.org"}
    assert page.locator("#map-note").is_visible()
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
    ctx.close()


def test_the_time_slider_recolours_the_map(browser: Any, demo: Demo) -> None:
    ctx, _, page = open_map(browser, demo)
    page.locator("#hour").fill(str(SLIDER_HOUR))
    for zone_id, value in demo.zone_values.items():
        assert page.locator(f'path[data-id="{zone_id}"]').get_attribute("fill").lower() == colour(3 * value)
    assert page.locator("#hour").get_attribute("aria-valuetext")
    ctx.close()


def test_the_atmo_option_and_french(browser: Any, demo: Demo) -> None:
    ctx, _, page = open_map(browser, demo, "/?lang=fr&scale=atmo", viewport={"width": 390, "height": 800},
                            is_mobile=True, has_touch=True)
    assert "D'après les seuils de l'indice ATMO" in page.content()
    for zone_id, value in demo.zone_values.items():
        want = indices.band_info(indices.ATMO, indices.band(indices.ATMO, "pm25", value)).colour.lower()
        assert page.locator(f'path[data-id="{zone_id}"]').get_attribute("fill").lower() == want
    page.screenshot(path=str(SHOTS / "map-phone-fr-atmo.png"), full_page=True)
    ctx.close()


def test_a_click_on_a_zone_opens_its_page_and_the_chart_has_the_hours_the_api_serves(browser: Any,
                                                                                      demo: Demo) -> None:
    ctx, _, page = open_map(browser, demo)
    box = page.locator('path[data-id="67447"]').bounding_box()
    # a point of the zone not covered by a cell
    point = next((x, y) for fx in (0.5, 0.3, 0.7, 0.2, 0.8) for fy in (0.5, 0.3, 0.7, 0.2, 0.8)
                 for x, y in [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)]
                 if page.evaluate(f"document.elementFromPoint({x}, {y})?.dataset?.id") == "67447")
    page.mouse.click(*point)
    page.wait_for_url("**/zones/67447")
    page.locator("#chart[data-ready='true']").wait_for()
    api = page.get_by_role("link", name="API query (JSON)").get_attribute("href")
    served = httpx.get(demo.base + api).json()["results"]
    assert len(served) == 48  # every seeded hour of the zone, published (k = 1)
    assert page.locator("#chart").get_attribute("data-points") == str(len(served))
    assert page.locator("#chart canvas").count() >= 1
    page.screenshot(path=str(SHOTS / "zone.png"), full_page=True)
    ctx.close()


def test_the_qr_code_of_a_demo_sensor_label_opens_its_sensor_page(browser: Any, demo: Demo, db: Database) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.devices).where(tables.devices.c.uid == "ca-demo-fixed-01")).one()
    label = Image.open(io.BytesIO(bundle_files(demo.settings, row)["label.png"]))
    (found,) = zxingcpp.read_barcodes(label)
    assert found.text == f"{demo.base}/sensors/{row.pseudonym}"
    ctx = browser.new_context(viewport={"width": 1000, "height": 900})
    cut = cut_network(ctx, demo.base)
    page = ctx.new_page()
    page.goto(found.text)
    page.locator("#chart[data-ready='true']").wait_for()
    assert row.pseudonym in page.locator("h1").inner_text()
    assert page.locator("#chart").get_attribute("data-points") == "48"
    # sensor 01 sits by the station DEMO-STR-CENTRE, in the same public cell: its reference is charted
    assert "DEMO-STR-CENTRE" in page.content()
    page.screenshot(path=str(SHOTS / "sensor.png"), full_page=True)
    page.goto(demo.base + "/stations/DEMO-STR-CENTRE")
    page.locator("#chart[data-ready='true']").wait_for()
    page.screenshot(path=str(SHOTS / "station.png"), full_page=True)
    page.goto(demo.base + "/datasets/zone-hourly")
    page.screenshot(path=str(SHOTS / "dataset.png"), full_page=True)
    assert cut.blocked == []
    ctx.close()


def test_the_widget_renders_in_an_iframe_and_on_a_page_of_another_origin_without_cookies(
        browser: Any, demo: Demo) -> None:
    with serve(commune_site(demo.base)) as port:
        commune = f"http://localhost:{port}"
        ctx = browser.new_context(viewport={"width": 700, "height": 800})
        cut = cut_network(ctx, demo.base, commune)
        page = ctx.new_page()
        set_cookie: list[str] = []
        sizes: dict[str, int] = {}
        page.on("response", lambda r: set_cookie.append(r.url) if r.header_value("set-cookie") else None)
        ctx.on("requestfinished", lambda r: sizes.__setitem__(r.url, r.sizes()["responseBodySize"]))
        page.goto(commune + "/", wait_until="networkidle")
        framed = page.frame_locator("#frame").locator("civicair-air[data-ready='true']")
        framed.wait_for()
        assert framed.get_attribute("data-band") == str(indices.band(EAQI, "pm25", demo.zone_values["67482"]))
        direct = page.locator("#direct[data-ready='true']")
        direct.wait_for()  # a cross-origin fetch: needs Access-Control-Allow-Origin on /v1
        assert direct.get_attribute("data-band") == str(indices.band(EAQI, "pm25", demo.zone_values["67447"]))
        assert "Données de capteurs citoyens" in page.frame_locator("#frame").locator("civicair-air .card").inner_text()
        page.screenshot(path=str(SHOTS / "widget-on-commune-site.png"))
        assert ctx.cookies() == [] and set_cookie == []
        assert page.frame(url=lambda u: "/embed/zones/" in u).evaluate("document.cookie") == ""
        script = [n for u, n in sizes.items() if u.endswith("/widget.js")]
        assert script and max(script) < 50_000
        assert cut.blocked == []
        ctx.close()


def test_docs_render_with_the_network_cut(browser: Any, demo: Demo) -> None:
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    cut = cut_network(ctx, demo.base)
    page = ctx.new_page()
    page.goto(demo.base + "/docs")
    page.locator(".opblock-summary-path").first.wait_for()
    assert "civicair" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/v1/map/latest").count() == 1
    page.screenshot(path=str(SHOTS / "docs.png"))
    assert cut.blocked == []
    ctx.close()


def test_pages_have_no_serious_accessibility_violation(browser: Any, demo: Demo) -> None:
    pseudo = demo.pseudonyms["ca-demo-fixed-01"]
    found = {}
    for path, ready in (("/", "#map[data-ready='true']"), ("/?lang=fr&scale=atmo", "#map[data-ready='true']"),
                        ("/zones/67482", "#chart[data-ready='true']"), (f"/sensors/{pseudo}", "#chart[data-ready='true']"),
                        ("/stations/DEMO-STR-CENTRE", "#chart[data-ready='true']"), ("/datasets/zone-hourly", "h1"),
                        ("/embed/zones/67482", "civicair-air[data-ready='true']"), ("/docs", ".opblock-summary-path"),
                        ("/zones/99999", "h1")):
        ctx = browser.new_context()
        cut_network(ctx, demo.base)
        page = ctx.new_page()
        page.goto(demo.base + path)
        page.locator(ready).first.wait_for()
        found[path] = axe_serious(page)
        ctx.close()
    assert found == {p: [] for p in found}, json.dumps(found, indent=1)


def test_the_map_first_load_is_under_one_megabyte(browser: Any, demo: Demo) -> None:
    ctx = browser.new_context()  # a first visit: empty cache
    cut_network(ctx, demo.base)
    page = ctx.new_page()
    demo.counter.reset()
    page.goto(demo.base + "/", wait_until="networkidle")
    page.locator("#map[data-ready='true']").wait_for()
    page.wait_for_timeout(300)
    sent = demo.counter.total
    (SHOTS / "first-load.json").write_text(json.dumps({"total": sent, "by_path": demo.counter.by_path}, indent=1))
    assert any(p.startswith("/v1/map/latest") for p in demo.counter.by_path)
    assert any(p.endswith(".js") for p in demo.counter.by_path)
    assert 20_000 < sent <= 1_000_000
    ctx.close()
