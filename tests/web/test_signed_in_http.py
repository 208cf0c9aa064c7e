"""The partner area and the operator console over real HTTP (a real uvicorn server, the real
database): sign-in and its refusals, the scope each area needs, the device list's filters, every
form refused without its CSRF token with nothing changed, the console's actions and their errors,
French. The browser scenarios are in test_signed_in_browser.py."""

from __future__ import annotations

import re
from contextlib import closing
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.service import run_calibration
from civicair.core import tables
from civicair.core.security import pseudonym
from civicair.gateway import dead_letters

from tests.calibration.test_service import END, START, STATION, seed
from tests.web.console_seed import key_with, publication, readings, register_and_push, seed_console

pytestmark = pytest.mark.db


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def signed_in(base: str, area: str, key: str) -> tuple[httpx.Client, str]:
    """A client signed in to `area`, and the CSRF token of its session's forms."""
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get(f"/{area}/sign-in")
    r = client.post(f"/{area}/sign-in", data={"api_key": key, "csrf_token": csrf(form.text), "next": f"/{area}/"})
    assert r.status_code == 303, r.text
    home = client.get(f"/{area}/")
    assert home.status_code == 200, home.text
    return client, csrf(home.text)


@pytest.fixture
def calibrated(db, settings):  # type: ignore[no-untyped-def]
    """The calibration tests' five devices (co-located ×2, network model, US-EPA, unreliable) and a
    sixth installed beside the station 20 hours before the run (not enough data to judge)."""
    _, ids = seed(db, faults={1: "stuck"})
    with db.engine.begin() as conn:
        new = conn.execute(sa.insert(tables.devices).values(
            uid="ca-test-new", pseudonym=pseudonym("test-secret", "ca-test-new"), name="new", kind="fixed",
            transport="mqtt", sensor_models=["SDS011"], lat=STATION[1] + 0.0001, lon=STATION[2] + 0.0001,
        ).returning(tables.devices.c.id)).scalar_one()
        conn.execute(sa.insert(tables.hourly), [
            {"device_id": new, "quantity": 2, "hour": END - timedelta(hours=20 - j), "n": 4, "sum": 4 * (10.0 + j),
             "sum_sq": 4 * (10.0 + j) ** 2, "min": 10.0 + j, "max": 10.0 + j, "mean": 10.0 + j, "n_flagged": 0,
             "flags_any": 0} for j in range(20)])
        ids.append(new)
        run_calibration(conn, settings, since=START, now=END - timedelta(minutes=30))
        pseudos = {r.id: r.pseudonym for r in conn.execute(sa.select(tables.devices.c.id, tables.devices.c.pseudonym))}
    return [pseudos[i] for i in ids]


def test_partner_sign_in_filters_reports_and_sign_out(db, calibrated, serve) -> None:
    base = serve()
    pseudos = calibrated
    cal, ops = key_with(db, "calibration"), key_with(db, "operator")
    with httpx.Client(base_url=base, timeout=60) as anon:
        r = anon.get("/partner/", params={"status": "reliable"})
        assert r.status_code == 303 and r.headers["location"] == "/partner/sign-in?next=%2Fpartner%2F%3Fstatus%3Dreliable"
        form = anon.get(r.headers["location"])
        assert form.status_code == 200 and 'type="password"' in form.text and form.headers["cache-control"] == "no-store"
        token = csrf(form.text)
        assert anon.post("/partner/sign-in", data={"api_key": cal}).status_code == 403  # no CSRF token
        assert "civicair_session" not in anon.cookies
        bad = anon.post("/partner/sign-in", data={"api_key": "cak_nope", "csrf_token": token})
        assert bad.status_code == 401 and "Unknown or revoked API key." in bad.text
        wrong = anon.post("/partner/sign-in", data={"api_key": ops, "csrf_token": token})
        assert wrong.status_code == 403 and "does not give access" in wrong.text  # an operator key is no partner
        evil = anon.post("/partner/sign-in", data={"api_key": cal, "csrf_token": token, "next": "//evil.example/"})
        assert evil.status_code == 303 and evil.headers["location"] == "/partner/"
    client, token = signed_in(base, "partner", cal)
    with closing(client):
        home = client.get("/partner/")
        assert home.headers["cache-control"] == "private, no-store" and "script-src 'self'" in home.headers[
            "content-security-policy"]
        rows = re.findall(r'<tr data-device="([^"]+)"', home.text)
        assert sorted(rows) == sorted(pseudos) and "6 of 6 devices shown" in home.text
        assert "ca-test" not in home.text  # pseudonyms only

        def shown(**params: str) -> list[str]:
            page = client.get("/partner/", params=params)
            assert page.status_code == 200
            return re.findall(r'<tr data-device="([^"]+)"', page.text)

        assert sorted(shown(state="colocated")) == sorted(pseudos[:2])
        assert shown(state="network") == [pseudos[2]] and shown(state="epa") == [pseudos[3]]
        assert shown(state="unreliable") == [pseudos[4]] and shown(state="insufficient_data") == [pseudos[5]]
        assert sorted(shown(station=STATION[0])) == sorted([*pseudos[:2], pseudos[5]])
        assert shown(sensor_type="PMS5003") == [pseudos[3]]
        assert shown(quantity="no2") == []
        assert sorted(shown(quantity="pm25")) == sorted(pseudos)
        reliable = shown(status="reliable")
        assert reliable and set(reliable) < set(pseudos) and pseudos[4] not in reliable
        assert sorted(shown(status="bogus")) == sorted(pseudos)  # an unknown choice is no filter
        # every state's report renders, with the sign-out form and a way back to the list
        states = {"colocated", "network", "epa", "unreliable", "insufficient_data"}
        for p, state in zip(pseudos, ["colocated", "colocated", "network", "epa", "unreliable", "insufficient_data"],
                            strict=True):
            rep = client.get(f"/partner/devices/{p}", params={"quantity": "pm25"})
            assert rep.status_code == 200 and 'id="verdict"' in rep.text and 'action="/partner/sign-out"' in rep.text
            assert f'<td class="state {state}">' in rep.text, state
            assert rep.headers["cache-control"] == "private, no-store" and 'href="/partner/"' in rep.text
            states.discard(state)
        assert states == set()
        none = client.get(f"/partner/devices/{pseudos[0]}", params={"quantity": "no2"})
        assert none.status_code == 200 and "not calibrated" in none.text  # the sixth state, "none"
        assert client.get("/partner/devices/nobody").status_code == 404
        st = client.get(f"/partner/stations/{STATION[0]}")
        assert st.status_code == 200 and "Metz-Centre" in st.text and all(p in st.text for p in [*pseudos[:2], pseudos[5]])
        assert f"/partner/devices/{pseudos[0]}?quantity=pm25" in st.text
        assert client.get("/partner/stations/NOPE").status_code == 404
        fr = client.get("/partner/", params={"lang": "fr"})
        assert "Capteurs et leurs rapports de calibration" in fr.text and fr.headers["content-language"] == "fr"
        # the operator console does not take a partner session
        assert client.get("/operator/").status_code == 303
        assert client.post("/partner/sign-out", data={}).status_code == 403  # no CSRF token: still signed in
        assert client.get("/partner/").status_code == 200
        out = client.post("/partner/sign-out", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/partner/sign-in"
        assert client.get("/partner/").status_code == 303
        assert client.get(f"/partner/devices/{pseudos[0]}").status_code == 303


def test_revoking_the_key_or_its_scope_ends_the_sessions(db, serve) -> None:
    base = serve()
    key = key_with(db, "operator", name="ops-a")
    client, _ = signed_in(base, "operator", key)
    with closing(client):
        assert client.get("/operator/health").status_code == 200
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.partner_api_keys).values(scopes=["calibration"]))
        assert client.get("/operator/health").status_code == 303
        with db.engine.begin() as conn:
            conn.execute(sa.update(tables.partner_api_keys).values(scopes=["operator"], revoked_at=sa.func.now()))
        assert client.get("/operator/health").status_code == 303


def test_console_forms_without_a_csrf_token_are_refused_and_change_nothing(db, settings, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    c = seed_console(db, settings)
    device = register_and_push(base, 48.5800, 7.7400, [10.0, 11.0, 12.0])
    client, token = signed_in(base, "operator", key_with(db, "operator"))
    with closing(client):
        foreign = httpx.Client(base_url=base, timeout=30)  # another browser's token is no good either
        other, other_token = signed_in(base, "operator", key_with(db, "operator", name="other"))
        other.close()
        posts = [(f"/operator/dead-letters/{c.dead_letter}/replay", {}),
                 (f"/operator/quarantine/{c.quarantined}/attach", {"device_uid": c.late_uid, "remember": "1"}),
                 ("/operator/quarantine/replay", {}),
                 (f"/operator/devices/{device['uid']}/approve", {"note": "x"}),
                 (f"/operator/devices/{device['uid']}/withhold", {}),
                 ("/operator/sign-out", {})]
        for path, data in posts:
            assert client.post(path, data=data).status_code == 403, path
            assert client.post(path, data={**data, "csrf_token": other_token}).status_code == 403, path
            assert foreign.post(path, data={**data, "csrf_token": token}).status_code in (303, 403), path
        foreign.close()
        assert dead_letters.list_dead_letters(db)[0].id == c.dead_letter and readings(db, c.airrohr) == []
        with db.engine.connect() as conn:
            q = conn.execute(sa.select(tables.quarantine)).one()
        assert q.device_id is None and q.replayed_at is None and readings(db, c.late) == []
        assert publication(db, device["uid"]) == "pending"
        assert client.get("/operator/").status_code == 200  # still signed in
        r = httpx.get(f"{base}/v1/devices/{device['pseudonym']}/series", params={"quantity": "pm25"}, timeout=10)
        assert r.status_code == 404


def test_console_actions_and_their_errors(db, settings, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    c = seed_console(db, settings)
    device = register_and_push(base, 48.5800, 7.7400, [10.0, 11.0, 12.0])
    client, token = signed_in(base, "operator", key_with(db, "operator"))
    with closing(client):
        home = client.get("/operator/")
        assert "1 dead letters waiting" in home.text and "3 devices awaiting publication" in home.text  # with the two test devices added by hand
        lst = client.get("/operator/dead-letters", params={"source": "sensor_community"})
        assert f'data-id="{c.dead_letter}"' in lst.text and "old decoder bug" in lst.text
        assert f'data-id="{c.dead_letter}"' not in client.get("/operator/dead-letters", params={"source": "tts"}).text
        assert f'data-id="{c.dead_letter}"' in client.get("/operator/dead-letters", params={"device": "ca-airrohr"}).text
        one = client.get(f"/operator/dead-letters/{c.dead_letter}")
        assert "sensordatavalues" in one.text and "waiting" in one.text
        done = client.post(f"/operator/dead-letters/{c.dead_letter}/replay", data={"csrf_token": token})
        assert done.status_code == 200 and "Replayed: 1 message(s), 2 reading(s) written" in done.text
        assert sorted(readings(db, c.airrohr)) == [(2, 4.5), (3, 8.5)]
        again = client.post(f"/operator/dead-letters/{c.dead_letter}/replay", data={"csrf_token": token})
        assert again.status_code == 409 and "already replayed" in again.text and len(readings(db, c.airrohr)) == 2
        assert client.get("/operator/dead-letters/999999").status_code == 404
        assert client.get("/operator/dead-letters/abc").status_code == 422

        q = client.get(f"/operator/quarantine/{c.quarantined}")
        assert "dev_eui=0102030405060708" in q.text and 'id="payload"' in q.text
        bad = client.post(f"/operator/quarantine/{c.quarantined}/attach", data={"device_uid": "ca-nobody",
                                                                                 "csrf_token": token})
        assert bad.status_code == 404 and "no device with uid" in bad.text
        junk = client.post(f"/operator/quarantine/{c.quarantined}/attach", data={"device_uid": "a b<c",
                                                                                  "csrf_token": token})
        assert junk.status_code == 422 and "a b&lt;c" in junk.text
        ok = client.post(f"/operator/quarantine/{c.quarantined}/attach", data={
            "device_uid": c.late_uid, "remember": "1", "csrf_token": token})
        assert ok.status_code == 200 and f"attached to {c.late_uid}" in ok.text and "dev_eui set to" in ok.text
        rep = client.post("/operator/quarantine/replay", data={"csrf_token": token})
        assert "Replayed 1 message(s): 6 reading(s) written" in rep.text and len(readings(db, c.late)) == 6
        again = client.post("/operator/quarantine/replay", data={"csrf_token": token})
        assert "Replayed 0 message(s)" in again.text and len(readings(db, c.late)) == 6

        pending = client.get("/operator/devices")
        assert f'data-uid="{device["uid"]}"' in pending.text
        assert client.post("/operator/devices/ca-nobody/approve", data={"csrf_token": token}).status_code == 404
        assert client.post(f"/operator/devices/{device['uid']}/publish", data={"csrf_token": token}).status_code == 404
        assert publication(db, device["uid"]) == "pending"
        w = client.post(f"/operator/devices/{device['uid']}/withhold", data={"csrf_token": token, "note": "odd site"})
        assert w.status_code == 303 and w.headers["location"] == f"/operator/devices?state=awaiting&changed={device['uid']}"
        assert publication(db, device["uid"]) == "withheld"
        held = client.get("/operator/devices", params={"state": "withheld"})
        assert f'data-uid="{device["uid"]}"' in held.text and "odd site" in held.text
        assert f'data-uid="{device["uid"]}"' not in client.get("/operator/devices").text
        with db.engine.connect() as conn:
            by = conn.execute(sa.select(tables.devices.c.publication_by).where(
                tables.devices.c.uid == device["uid"])).scalar_one()
        assert by == "console:Régie air"

        health = client.get("/operator/health")
        assert health.status_code == 200 and "MQTT broker: ok" in health.text
        assert "No gateway holds a lease" in health.text and "Spool: 0 batch(es) waiting" in health.text
        assert "The scheduler runs in another process" in health.text
        fr = client.get("/operator/health", params={"lang": "fr"})
        assert "État de santé" in fr.text and "Broker MQTT : ok" in fr.text


def test_the_areas_have_the_apis_body_limit_and_rate_limit(db, serve) -> None:
    base = serve(rate_limit_per_minute=8, http_max_body_bytes=4096)
    key = key_with(db, "operator")
    with httpx.Client(base_url=base, timeout=30) as client:
        form = client.get("/operator/sign-in")
        big = client.post("/operator/sign-in", data={"api_key": "x" * 8000, "csrf_token": csrf(form.text)})
        assert big.status_code == 413 and "civicair_session" not in client.cookies
        statuses = [client.post("/partner/sign-in", data={"api_key": key, "csrf_token": csrf(form.text)}).status_code
                    for _ in range(10)]
        assert 429 in statuses and statuses[0] == 403  # an operator key opens no partner area; then the limit
        assert client.get("/operator/sign-in").status_code == 429
