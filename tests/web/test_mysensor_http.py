"""The volunteer's "my sensor" pages over HTTP (no browser), on a real uvicorn server: sign-in with
the device token, every form refused without its CSRF token (and nothing changed), the privacy-zone
form without JavaScript (saved, or refused with what was typed shown back and nothing saved), a
rotation ending the other sessions, the two-step erase, the publication state, French."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.broker import free_port
from civicair.core.db import Database
from civicair.core.errors import InvalidInput
from civicair.core.settings import Settings
from civicair.firmware_tools import service
from civicair.firmware_tools.schemas import RegistrationRequest
from civicair.web.mysensor import parse_zones

from tests.web.browser import serve

pytestmark = pytest.mark.db
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    base: str
    settings: Settings
    db: Database
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        c = httpx.Client(base_url=self.base, timeout=10)
        self.clients.append(c)
        return c


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[Site]:
    from civicair.runtime import build_app

    port = free_port()
    s = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    with serve(build_app(s, db), port=port):
        site = Site(f"http://127.0.0.1:{port}", s, db)
        yield site
        for c in site.clients:
            c.close()


def register(site: Site, kind: str = "mobile", name: str = "my bike") -> Any:
    with site.db.engine.begin() as conn:
        return service.register_device(conn, site.settings, RegistrationRequest(
            name=name, kind=kind, sensors=["SDS011"], transport="mqtt", lat=48.5734, lon=7.7521,
            email="v@example.org", consent_public=True))


def csrf(html: str) -> str:
    m = CSRF.search(html)
    assert m, html[:2000]
    return m.group(1)


def signed_in(site: Site, token: str) -> httpx.Client:
    client = site.client()
    form = client.get("/my-sensor/sign-in")
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    r = client.post("/my-sensor/sign-in", data={"device_token": token, "csrf_token": csrf(form.text)})
    assert r.status_code == 303 and r.headers["location"] == "/my-sensor", r.text
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("civicair_session="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Max-Age" in cookie
    return client


def device_row(site: Site, uid: str) -> Any:
    with site.db.engine.connect() as conn:
        return conn.execute(sa.select(tables.devices).where(tables.devices.c.uid == uid)).first()


def test_a_volunteer_signs_in_with_the_device_token_and_sees_the_sensor(site: Site) -> None:
    reg = register(site, kind="fixed", name="balcony")
    anonymous = httpx.get(f"{site.base}/my-sensor", timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/my-sensor/sign-in"
    client = signed_in(site, reg.credentials.device_token)
    home = client.get("/my-sensor")
    assert home.status_code == 200 and home.headers["cache-control"] == "no-store"
    assert "balcony" in home.text and reg.pseudonym in home.text
    assert 'id="no-readings"' in home.text
    assert 'data-publication="pending"' in home.text and 'data-public="no"' in home.text
    assert 'action="/my-sensor/sign-out"' in home.text
    assert "privacy-zones" not in home.text and 'id="zones-link"' not in home.text  # a fixed sensor has none
    fr = client.get("/my-sensor", params={"lang": "fr"})
    assert "Mon capteur « balcony »" in fr.text and "Dernières données" in fr.text
    # sign out: the cookie is cleared and the page asks to sign in again
    out = client.post("/my-sensor/sign-out", data={"csrf_token": csrf(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/my-sensor/sign-in"
    assert client.get("/my-sensor").status_code == 303


def test_an_unknown_token_is_refused_and_no_session_starts(site: Site) -> None:
    register(site)
    client = site.client()
    form = client.get("/my-sensor/sign-in")
    r = client.post("/my-sensor/sign-in", data={"device_token": "not-a-token", "csrf_token": csrf(form.text)})
    assert r.status_code == 401 and 'id="error"' in r.text
    assert not any(c.startswith("civicair_session=") for c in r.headers.get_list("set-cookie"))
    assert client.get("/my-sensor").status_code == 303


def test_every_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    reg = register(site)
    token = reg.credentials.device_token
    # sign-in without the form's token
    bare = httpx.post(f"{site.base}/my-sensor/sign-in", data={"device_token": token}, timeout=10)
    assert bare.status_code == 403 and "civicair_session" not in bare.headers.get("set-cookie", "")
    client = signed_in(site, token)
    before = device_row(site, reg.uid)
    for path, data in (("/my-sensor/rotate", {}), ("/my-sensor/erase", {}),
                       ("/my-sensor/erase/confirm", {"confirm": service.erase_code(site.settings, reg.uid)[0]}),
                       ("/my-sensor/zones", {"lat": "48.57", "lon": "7.75", "radius_m": "300"}),
                       ("/my-sensor/sign-out", {})):
        for token_field in ({}, {"csrf_token": "forged"}):
            r = client.post(path, data={**data, **token_field})
            assert r.status_code == 403, (path, r.status_code, r.text[:300])
            assert "CSRF" in r.text
    after = device_row(site, reg.uid)
    assert after is not None and after.token_hash == before.token_hash and after.privacy_zones == before.privacy_zones
    assert client.get("/my-sensor").status_code == 200  # still signed in: the forged sign-out did nothing


def test_privacy_zones_are_set_with_the_form_alone_and_bad_input_loses_nothing(site: Site) -> None:
    reg = register(site)
    client = signed_in(site, reg.credentials.device_token)
    form = client.get("/my-sensor/zones")
    assert form.status_code == 200 and 'id="new-lat"' in form.text and 'name="radius_m"' in form.text
    token = csrf(form.text)
    saved = client.post("/my-sensor/zones", data={"csrf_token": token, "lat": "48,5801", "lon": "7.7602",
                                                  "radius_m": "350"})
    assert saved.status_code == 200 and 'id="saved"' in saved.text, saved.text[:500]
    assert device_row(site, reg.uid).privacy_zones == [{"lat": 48.5801, "lon": 7.7602, "radius_m": 350.0}]
    assert 'value="48.580100"' in saved.text  # the saved zone is row 1 now, with a new empty row
    # a radius out of range: refused, what was typed comes back, the saved zone stays
    bad = client.post("/my-sensor/zones", data={"csrf_token": token, "lat": ["48.5801", "48.59"],
                                                "lon": ["7.7602", "7.77"], "radius_m": ["350", "20"]})
    assert bad.status_code == 400 and 'id="error"' in bad.text and "zone 2" in bad.text
    assert 'value="48.59"' in bad.text and 'value="20"' in bad.text
    assert device_row(site, reg.uid).privacy_zones == [{"lat": 48.5801, "lon": 7.7602, "radius_m": 350.0}]
    # ticking "remove" deletes the zone
    gone = client.post("/my-sensor/zones", data={"csrf_token": token, "lat": ["48.5801", ""],
                                                 "lon": ["7.7602", ""], "radius_m": ["350", "200"], "remove": "0"})
    assert gone.status_code == 200 and device_row(site, reg.uid).privacy_zones == []
    # a fixed sensor has no privacy zones: the page says so and a post is refused
    fixed = register(site, kind="fixed")
    other = signed_in(site, fixed.credentials.device_token)
    page = other.get("/my-sensor/zones")
    assert page.status_code == 200 and 'id="zones-form"' not in page.text
    r = other.post("/my-sensor/zones", data={"csrf_token": csrf(page.text), "lat": "48.5", "lon": "7.7",
                                             "radius_m": "300"})
    assert r.status_code == 400 and "mobile devices" in r.text


def test_rotation_shows_new_credentials_once_and_ends_the_other_sessions(site: Site) -> None:
    reg = register(site)
    old = reg.credentials.device_token
    here, elsewhere = signed_in(site, old), signed_in(site, old)
    home = here.get("/my-sensor")
    r = here.post("/my-sensor/rotate", data={"csrf_token": csrf(home.text)})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    new = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    password = re.search(r'id="new-mqtt-password">([^<]+)<', r.text).group(1)
    assert new != old and password != reg.credentials.mqtt_password
    assert here.get("/my-sensor").status_code == 200  # this browser got a new session
    assert new not in here.get("/my-sensor").text  # shown once: never again
    assert elsewhere.get("/my-sensor").status_code == 303  # the other one is signed out
    api = httpx.get(f"{site.base}/v1/volunteer/me", headers={"Authorization": f"Bearer {old}"}, timeout=10)
    assert api.status_code == 401
    assert httpx.get(f"{site.base}/v1/volunteer/me", headers={"Authorization": f"Bearer {new}"},
                     timeout=10).status_code == 200
    client = site.client()
    form = client.get("/my-sensor/sign-in")
    assert client.post("/my-sensor/sign-in", data={"device_token": old, "csrf_token": csrf(form.text)}).status_code == 401
    signed_in(site, new)
    # the credentials page's sign-out form belongs to the new session
    assert here.post("/my-sensor/sign-out", data={"csrf_token": csrf(r.text)}).status_code == 303
    assert here.get("/my-sensor").status_code == 303


def test_erase_takes_two_steps_and_ends_the_session(site: Site) -> None:
    reg = register(site)
    client = signed_in(site, reg.credentials.device_token)
    home = client.get("/my-sensor")
    step1 = client.post("/my-sensor/erase", data={"csrf_token": csrf(home.text)})
    assert step1.status_code == 200 and 'id="erase-confirm"' in step1.text
    assert device_row(site, reg.uid) is not None  # nothing erased yet
    wrong = client.post("/my-sensor/erase/confirm", data={"csrf_token": csrf(step1.text), "confirm": "nope"})
    assert wrong.status_code == 400 and device_row(site, reg.uid) is not None
    code = re.search(r'name="confirm" value="([^"]+)"', step1.text).group(1)
    done = client.post("/my-sensor/erase/confirm", data={"csrf_token": csrf(step1.text), "confirm": code})
    assert done.status_code == 200 and 'id="message"' in done.text
    assert device_row(site, reg.uid) is None
    assert client.get("/my-sensor").status_code == 303
    assert httpx.get(f"{site.base}/v1/volunteer/me", timeout=10,
                     headers={"Authorization": f"Bearer {reg.credentials.device_token}"}).status_code == 401


def test_the_calibration_report_of_the_own_device_needs_the_session(site: Site) -> None:
    reg = register(site, kind="fixed")
    assert httpx.get(f"{site.base}/my-sensor/report", timeout=10).status_code == 303
    client = signed_in(site, reg.credentials.device_token)
    r = client.get("/my-sensor/report", params={"quantity": "pm25"})
    assert r.status_code == 200 and reg.pseudonym in r.text and "/my-sensor/sign-out" in r.text
    assert client.get("/my-sensor/report", params={"quantity": "nope"}).status_code == 400


def test_parse_zones_reads_the_rows_of_the_form() -> None:
    zones = parse_zones(["48.5", "", "48.6", "48.7"], ["7.7", "", "7.8", "7.9"], ["100", "200", "", "300"], ["3"])
    assert [(z.lat, z.lon, z.radius_m) for z in zones] == [(48.5, 7.7, 100.0), (48.6, 7.8, 200.0)]
    for lat, lon, radius in (("91", "7", "100"), ("48", "x", "100"), ("48", "7", "10"), ("48", "7", "nan")):
        with pytest.raises(InvalidInput, match="zone 1"):
            parse_zones([lat], [lon], [radius], [])
    with pytest.raises(InvalidInput, match="at most 10"):
        parse_zones(["48.5"] * 11, ["7.7"] * 11, ["100"] * 11, [])


def test_the_publication_state_follows_the_operator_s_decision(site: Site) -> None:
    from civicair.firmware_tools.publication import set_publication

    reg = register(site, kind="fixed")
    client = signed_in(site, reg.credentials.device_token)
    pending = client.get("/my-sensor").text
    assert 'data-public="no"' in pending and f'href="{reg.public_url}"' not in pending
    with site.db.engine.begin() as conn:
        set_publication(conn, site.settings, reg.uid, "approved", by="test")
    public = client.get("/my-sensor").text
    assert 'data-publication="approved"' in public and 'data-public="yes"' in public
    assert f'href="{reg.public_url}"' in public  # the public page exists now
    with site.db.engine.begin() as conn:
        set_publication(conn, site.settings, reg.uid, "withheld", by="test")
    assert 'data-publication="withheld"' in client.get("/my-sensor").text


def test_the_api_s_body_and_rate_limits_hold_on_the_forms(site: Site, settings: Settings, db: Database) -> None:
    reg = register(site)
    client = signed_in(site, reg.credentials.device_token)
    token = csrf(client.get("/my-sensor/zones").text)
    huge = client.post("/my-sensor/zones", data={"csrf_token": token, "lat": ["48.5"] * 20000,
                                                 "lon": ["7.7"] * 20000, "radius_m": ["100"] * 20000})
    assert huge.status_code == 413 and device_row(site, reg.uid).privacy_zones in (None, [])
    from civicair.runtime import build_app

    port = free_port()
    limited = settings.model_copy(update={"rate_limit_per_minute": 3, "public_base_url": f"http://127.0.0.1:{port}"})
    with serve(build_app(limited, db), port=port), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        codes = [c.post("/my-sensor/sign-in", data={"device_token": "guess", "csrf_token": "x"}).status_code
                 for _ in range(5)]
    assert codes[:3] == [403, 403, 403] and codes[3:] == [429, 429]


def test_the_report_page_has_the_pages_security_headers(site: Site) -> None:
    reg = register(site, kind="fixed")
    client = signed_in(site, reg.credentials.device_token)
    r = client.get("/my-sensor/report")
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["cache-control"] == "no-store"
