"""Partner calibration API over real HTTP: keys and scopes, whoami for every scope, the device list,
reports (JSON and HTML) for every state the seeded devices are in, the station report; browser
sign-in with a signed session cookie and CSRF-protected forms."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from civicair.api.sessions import NONCE_COOKIE, SESSION_COOKIE, session_keys
from civicair.calibration.service import run_calibration
from civicair.core import sessions, tables
from civicair.core.security import hash_secret, new_api_key
from civicair.core.settings import Settings

from tests.calibration.test_service import END, START, STATION, seed
from tests.city import serve_app

pytestmark = pytest.mark.db


def make_key(db, scopes: list[str], name: str = "ATMO Grand Est") -> str:
    key = new_api_key()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.partner_api_keys).values(name=name, key_hash=hash_secret(key), scopes=scopes))
    return key


@pytest.fixture
def calibrated(db, settings):
    net, ids = seed(db, faults={1: "stuck"})
    with db.engine.begin() as conn:
        run_calibration(conn, settings, since=START, now=END - timedelta(minutes=30))
    with db.engine.connect() as conn:
        devs = {r.id: r for r in conn.execute(sa.select(tables.devices))}
    return ids, [devs[i].pseudonym for i in ids]


def test_keys_scopes_and_whoami_for_every_scope(db, calibrated, live_api) -> None:
    good, read, export = make_key(db, ["calibration"]), make_key(db, ["read"]), make_key(db, ["export"], "Portal")
    base = f"{live_api}/v1/partner"
    with httpx.Client(timeout=30) as client:
        r = client.get(f"{base}/calibration/devices")
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
        assert client.get(f"{base}/calibration/devices", headers={"X-API-Key": "cak_wrong"}).status_code == 401
        r = client.get(f"{base}/calibration/devices", headers={"X-API-Key": read})
        assert r.status_code == 403 and "calibration" in r.json()["detail"]
        for key, scopes, name in ((good, ["calibration"], "ATMO Grand Est"), (read, ["read"], "ATMO Grand Est"),
                                  (export, ["export"], "Portal")):
            r = client.get(f"{base}/whoami", headers={"X-API-Key": key})
            assert r.status_code == 200 and r.json() == {"name": name, "scopes": scopes, "via": "key"}
        assert client.get(f"{base}/whoami").status_code == 401


def test_device_list_and_reports_for_every_state(db, calibrated, live_api) -> None:
    ids, pseudos = calibrated
    h = {"X-API-Key": make_key(db, ["calibration"])}
    base = f"{live_api}/v1/partner/calibration"
    with httpx.Client(timeout=60) as client:
        r = client.get(f"{base}/devices", headers=h)
        assert r.status_code == 200, r.text
        listed = {d["device"]: d for d in r.json()["results"]}
        assert set(listed) == set(pseudos) and r.json()["meta"]["found"] == 5
        for secret in ("ca-test0", '"d0"'):
            assert secret not in r.text
        m0 = listed[pseudos[0]]["models"]
        assert [m["quantity"] for m in m0] == ["pm25"] and m0[0]["unit"] == "µg/m³" and m0[0]["state"] == "colocated"
        assert [listed[p]["models"][0]["state"] for p in pseudos] == [
            "colocated", "colocated", "network", "epa", "unreliable"]
        assert {d["device"] for d in client.get(f"{base}/devices", headers=h, params={"status": "reliable"}).json()[
            "results"]} == {p for p in pseudos if listed[p]["status"] == "reliable"}
        assert client.get(f"{base}/devices", headers=h, params={"status": "bogus"}).status_code == 422
        r = client.get(f"{base}/devices", headers=h, params={"sensor_type": "PMS5003"})
        assert [d["device"] for d in r.json()["results"]] == [pseudos[3]]
        r = client.get(f"{base}/devices", headers=h, params={"station": STATION[0]})
        assert {d["device"] for d in r.json()["results"]} == {pseudos[0], pseudos[1]}

        states = {}
        for p in pseudos:
            rep = client.get(f"{base}/devices/{p}", headers=h).json()
            states[p] = rep["state"]
            assert rep["quantity"] == "pm25" and rep["unit"] == "µg/m³" and rep["verdict"].startswith(f"Device {p}")
            assert rep["window"]["start"] and rep["completeness_pct"] is not None
            page = client.get(f"{base}/devices/{p}/report.html", headers=h)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "Particulate matter &lt; 2.5 µm" in page.text and "µg/m³" in page.text and " %" in page.text
            assert rep["sensor_model"] in page.text and "ca-test" not in page.text
            assert "{&#34;" not in page.text and '{"' not in page.text.split("<svg")[0]  # no raw JSON evidence
        assert list(states.values()) == ["colocated", "colocated", "network", "epa", "unreliable"]
        rep = client.get(f"{base}/devices/{pseudos[0]}", headers=h).json()
        assert rep["model"]["method"] and rep["class"] in (1, 2) and rep["station"]["code"] == STATION[0]
        assert rep["station"]["name"] == "Metz-Centre" and rep["cv"]["skill"] > 0.9
        assert rep["metrics"]["out_of_fold"]["r2"] > 0.9 and len(rep["series"]["hours"]) > 200
        assert rep["status_history"][0]["status"] == rep["device_status"]
        page = client.get(f"{base}/devices/{pseudos[0]}/report.html", headers=h).text
        assert page.count("<svg") == 3 and STATION[0] in page and "Metz-Centre" in page and "SDS011" in page
        stuck = client.get(f"{base}/devices/{pseudos[1]}", headers=h).json()
        assert any(f["flag"] == "stuck" and f["evidence"]["hours"] >= 6 for f in stuck["flags"])
        assert "<th>hours</th>" in client.get(f"{base}/devices/{pseudos[1]}/report.html", headers=h).text
        epa = client.get(f"{base}/devices/{pseudos[3]}", headers=h).json()
        assert epa["model"]["method"] == "epa" and "US-EPA" in epa["verdict"] and epa["class"] is None
        none = client.get(f"{base}/devices/{pseudos[4]}", headers=h).json()
        assert none["model"] is None and "not calibrated" in " ".join(r["text"] for r in none["reasons"])
        assert none["stars"] is None or none["stars"] <= 2
        no2 = client.get(f"{base}/devices/{pseudos[0]}", headers=h, params={"quantity": "no2"})
        assert no2.status_code == 200 and no2.json()["state"] == "none" and "no2" in no2.json()["reasons"][0]["text"]
        assert client.get(f"{base}/devices/{pseudos[0]}/report.html", headers=h, params={"quantity": "no2"}).status_code == 200
        assert client.get(f"{base}/devices/{pseudos[0]}", headers=h, params={"format": "html"}).text.startswith("<!doctype")
        assert client.get(f"{base}/devices/unknown", headers=h).status_code == 404
        assert client.get(f"{base}/devices/{pseudos[0]}", headers=h, params={"quantity": "co2"}).status_code == 422

        st = client.get(f"{base}/stations/{STATION[0]}", headers=h).json()
        assert st["station"]["name"] == "Metz-Centre" and st["window"]["readings"] == 240
        assert {d["pseudonym"] for d in st["devices"]} == {pseudos[0], pseudos[1]}
        page = client.get(f"{base}/stations/{STATION[0]}", headers=h, params={"format": "html"})
        assert page.status_code == 200 and pseudos[0] in page.text and "report.html" in page.text
        assert client.get(f"{base}/stations/NOPE", headers=h).status_code == 404


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def test_browser_sign_in_with_a_session_cookie_and_csrf_protected_forms(db, settings, calibrated, live_api) -> None:
    """The report link of this API sends a browser to the web's partner area to sign in; the
    session it gets there opens this API too (whoami, report.html) until sign-out or revocation."""
    _, pseudos = calibrated
    key = make_key(db, ["calibration"])
    report = f"/v1/partner/calibration/devices/{pseudos[0]}/report.html"
    area_report = f"/partner/devices/{pseudos[0]}?quantity=pm25"
    with httpx.Client(base_url=live_api, timeout=60) as browser:
        r = browser.get(report)
        assert r.status_code == 303 and r.headers["location"] == (
            f"/partner/sign-in?next=%2Fpartner%2Fdevices%2F{pseudos[0]}%3Fquantity%3Dpm25")
        assert browser.get("/v1/partner/sign-in").headers["location"] == "/partner/sign-in"  # the old URLs
        assert browser.get("/v1/partner/").headers["location"] == "/partner/"
        form = browser.get(r.headers["location"])
        assert form.status_code == 200 and 'type="password"' in form.text
        token = _csrf(form.text)
        # a post without the token, or with another browser's, is refused
        assert browser.post("/partner/sign-in", data={"api_key": key, "next": area_report}).status_code == 403
        assert httpx.post(f"{live_api}/partner/sign-in", data={"api_key": key, "csrf_token": token}).status_code == 403
        bad = browser.post("/partner/sign-in", data={"api_key": "cak_nope", "csrf_token": token, "next": area_report})
        assert bad.status_code == 401 and "Unknown or revoked" in bad.text
        ok = browser.post("/partner/sign-in", data={"api_key": key, "csrf_token": token, "next": area_report})
        assert ok.status_code == 303 and ok.headers["location"] == area_report
        cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
        low = cookie.lower()
        assert "httponly" in low and "samesite=lax" in low and f"max-age={settings.session_ttl_s}" in low
        assert "secure" not in low  # the public URL is http here
        page = browser.get(report)
        assert page.status_code == 200 and pseudos[0] in page.text and "Sign out" in page.text
        assert 'action="/partner/sign-out"' in page.text and 'href="/partner/"' in page.text
        assert browser.get(area_report).status_code == 200
        assert browser.get("/v1/partner/whoami").json()["via"] == "session"
        # sign-out is a form too: without its token it is refused
        assert browser.post("/partner/sign-out", data={}).status_code == 403
        out = browser.post("/partner/sign-out", data={"csrf_token": _csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/partner/sign-in"
        assert browser.get(report).status_code == 303
        # never redirected to another site after signing in
        form = browser.get("/partner/sign-in", params={"next": "https://evil.example/"})
        assert 'value="/partner/"' in form.text
        r = browser.post("/partner/sign-in", data={"api_key": key, "csrf_token": _csrf(form.text),
                                                   "next": "//evil.example/"})
        assert r.headers["location"] == "/partner/"
        assert browser.get(report).status_code == 200
        # revoking the key ends its sessions at once
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.partner_api_keys).values(revoked_at=sa.func.now()))
        assert browser.get(report).status_code == 303
        assert browser.get("/v1/partner/whoami").status_code == 401
        assert browser.get("/partner/").status_code == 303


def test_expired_tampered_and_foreign_cookies_sign_nobody_in(db, settings, calibrated, live_api) -> None:
    _, pseudos = calibrated
    make_key(db, ["calibration"])
    with db.engine.connect() as conn:
        key_id = conn.execute(sa.select(tables.partner_api_keys.c.id)).scalar_one()
    report = f"{live_api}/v1/partner/calibration/devices/{pseudos[0]}/report.html"
    k = session_keys(settings)[0]
    now = time.time()
    valid = sessions.sign(sessions.new_session(str(key_id), "partner", session_id="s", now=now, ttl_s=600), k)
    expired = sessions.sign(sessions.new_session(str(key_id), "partner", session_id="s", now=now - 700, ttl_s=600), k)
    other_kind = sessions.sign(sessions.new_session(str(key_id), "volunteer", session_id="s", now=now, ttl_s=600), k)
    foreign = sessions.sign(sessions.new_session(str(key_id), "partner", session_id="s", now=now, ttl_s=600),
                            sessions.derive_key("another deployment", "session"))
    for token, status in ((valid, 200), (expired, 303), (other_kind, 303), (foreign, 303), (valid[:-2] + "xx", 303),
                          ("garbage", 303)):
        with httpx.Client(cookies={SESSION_COOKIE: token}) as browser:
            assert browser.get(report).status_code == status, token


def test_the_session_cookie_is_secure_behind_an_https_public_url(db, settings, calibrated) -> None:
    key = make_key(db, ["calibration"])
    public = Settings(database_url=db.url, mqtt_url=settings.mqtt_url, pseudonym_secret="test-secret",
                      public_base_url="https://air.example-metropole.fr", _env_file=None)  # type: ignore[call-arg]
    with serve_app(public, db) as base, httpx.Client(base_url=base, timeout=30) as client:  # plain HTTP here: Secure cookies come back by hand
        form = client.get("/partner/sign-in")
        nonce = form.headers["set-cookie"]
        assert "secure" in nonce.lower()
        client.cookies.set(NONCE_COOKIE, nonce.split(";")[0].split("=", 1)[1])
        r = client.post("/partner/sign-in", data={"api_key": key, "csrf_token": _csrf(form.text)})
        assert r.status_code == 303
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
