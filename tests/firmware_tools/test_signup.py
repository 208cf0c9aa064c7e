"""Sign-up by e-mail over real HTTP, with the confirmation mail received by a real SMTP server
(aiosmtpd): form-encoded registrations, one link that works once, the same answer to every
sign-up (no enumeration of addresses), the limits per address and per network."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.db import Database
from civicair.core.settings import Settings
from pydantic import SecretStr

from tests.conftest import wait_until
from tests.firmware_tools.smtp import Mailbox, smtp_server

pytestmark = pytest.mark.db
FORM: dict[str, str | list[str]] = {  # what an HTML form sends: sensors repeated, empty optional fields
    "name": "balcony", "kind": "fixed", "sensors": ["SDS011", "BME280"], "transport": "mqtt", "lat": "48.5734",
    "lon": "7.7521", "email": "alice@example.org", "owner_name": "", "chip_id": "", "consent_public": "on"}


@pytest.fixture
def mailbox(settings: Settings) -> Iterator[Mailbox]:
    with smtp_server() as box:
        settings.smtp_url = SecretStr(box.url)
        yield box


def form(**changes: str) -> dict[str, str | list[str]]:
    return {**FORM, **changes}


def count(db: Database, table: sa.Table) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def test_a_form_encoded_sign_up_is_mailed_and_its_link_creates_the_device_once(
        mailbox: Mailbox, live_api: str, db: Database) -> None:
    r = httpx.post(f"{live_api}/v1/volunteer/devices", data=form(), timeout=10)  # what an HTML form sends
    assert r.status_code == 202, r.text
    assert count(db, tables.devices) == 0  # nothing until the address is proven
    (link,) = wait_until(lambda: mailbox.links("alice@example.org"), 10, message="the confirmation mail")
    assert link.startswith(f"{live_api}/volunteer/confirm?token=")
    (mail,) = mailbox.to("alice@example.org")
    assert "balcony" in mail.get_content() and "confirm" in mail["Subject"]
    created = httpx.post(f"{live_api}/v1/volunteer/confirm", json={"token": token_of(link)}, timeout=10)
    assert created.status_code == 201, created.text
    res = created.json()
    assert res["credentials"]["device_token"] and res["credentials"]["mqtt_password"]
    again = httpx.post(f"{live_api}/v1/volunteer/confirm", json={"token": token_of(link)}, timeout=10)
    assert again.status_code == 404 and "already used" in again.json()["detail"]
    with db.engine.connect() as conn:
        device = conn.execute(sa.select(tables.devices)).one()
        pending = conn.execute(sa.select(tables.signups)).one()
    assert (device.uid, device.owner_email, list(device.sensor_models)) == (res["uid"], "alice@example.org",
                                                                             ["SDS011", "BME280"])
    assert device.consent_public is True and device.owner_name is None
    assert pending.request is None and pending.device_uid == res["uid"]  # the e-mail and position left it
    me = httpx.get(f"{live_api}/v1/volunteer/me", headers={"Authorization": f"Bearer {res['credentials']['device_token']}"})
    assert me.status_code == 200


def test_every_sign_up_gets_the_same_answer_and_an_address_at_most_its_limit_of_mails(
        mailbox: Mailbox, settings: Settings, live_api: str, db: Database) -> None:
    settings.signup_email_limit, settings.registration_limit = 2, 50
    answers = [httpx.post(f"{live_api}/v1/volunteer/devices", data=form(email=e), timeout=10)
               for e in ("bob@example.org", "Bob@Example.org", "bob@example.org", "bob@example.org")]
    other = httpx.post(f"{live_api}/v1/volunteer/devices", json={
        "name": "x", "kind": "fixed", "sensors": ["SPS30"], "transport": "http", "lat": 48.6, "lon": 7.7,
        "email": "carol@example.org"}, timeout=10)
    assert {(a.status_code, a.content) for a in answers + [other]} == {(202, other.content)}  # one answer
    wait_until(lambda: len(mailbox.to("bob@example.org")) == 2 and mailbox.to("carol@example.org"), 10,
               message="the mails under the limit")
    assert len(mailbox.to("bob@example.org")) == 2  # the 3rd and 4th were answered alike, and not sent
    assert count(db, tables.signups) == 3 and count(db, tables.devices) == 0
    pages = []  # the web form too: the page after a limited sign-up is the page after a mailed one
    with httpx.Client(base_url=live_api, timeout=10) as client:
        for address in ("bob@example.org", "dave@example.org"):
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/volunteer/sign-up").text)
            r = client.post("/volunteer/sign-up", data={**form(email=address), "csrf_token": token.group(1)})
            pages.append((r.status_code, r.text))
    assert pages[0] == pages[1] and pages[0][0] == 200 and 'id="answer"' in pages[0][1]
    wait_until(lambda: mailbox.to("dave@example.org"), 10, message="dave's mail")
    assert len(mailbox.to("bob@example.org")) == 2


def test_a_network_past_its_limit_is_told_so_and_gets_no_mail(
        mailbox: Mailbox, settings: Settings, live_api: str, db: Database) -> None:
    settings.registration_limit = 2
    codes = [httpx.post(f"{live_api}/v1/volunteer/devices", data=form(email=f"v{i}@example.org"), timeout=10)
             for i in range(3)]
    assert [c.status_code for c in codes] == [202, 202, 429] and int(codes[2].headers["retry-after"]) > 0
    wait_until(lambda: len(mailbox.messages) == 2, 10, message="two mails")
    assert not mailbox.to("v2@example.org") and count(db, tables.signups) == 2


def test_a_bad_form_field_is_named_and_nothing_is_stored_or_mailed(
        mailbox: Mailbox, live_api: str, db: Database) -> None:
    for change, field in (({"lat": "north"}, "lat"), ({"sensors": "FOO9"}, "sensors"), ({"email": "x@"}, "email"),
                          ({"kind": "boat"}, "kind")):
        r = httpx.post(f"{live_api}/v1/volunteer/devices", data=form(**change), timeout=10)
        assert r.status_code == 422, (change, r.text)
        assert field in [e["parameter"] for e in r.json()["errors"]], r.json()
    bad_json = httpx.post(f"{live_api}/v1/volunteer/devices", content=b"{not json",
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert bad_json.status_code == 422 and "not JSON" in bad_json.json()["detail"]
    assert count(db, tables.signups) == 0 and not mailbox.messages


def test_an_expired_or_unknown_link_creates_nothing(mailbox: Mailbox, settings: Settings, live_api: str,
                                                    db: Database) -> None:
    assert httpx.post(f"{live_api}/v1/volunteer/devices", data=form(), timeout=10).status_code == 202
    (link,) = wait_until(lambda: mailbox.links("alice@example.org"), 10)
    with db.engine.begin() as conn:
        conn.execute(sa.update(tables.signups).values(expires_at=sa.func.now() - sa.text("interval '1 second'")))
    for token in (token_of(link), "not-a-token"):
        r = httpx.post(f"{live_api}/v1/volunteer/confirm", json={"token": token}, timeout=10)
        assert r.status_code == 404, r.text
        page = httpx.get(f"{live_api}/volunteer/confirm", params={"token": token}, timeout=10)
        assert page.status_code == 404 and "expired" in page.text
    assert count(db, tables.devices) == 0


def test_a_sign_up_form_posted_without_its_csrf_token_is_refused_and_loses_nothing(
        mailbox: Mailbox, live_api: str, db: Database) -> None:
    with httpx.Client(base_url=live_api, timeout=10) as client:
        shown = client.get("/volunteer/sign-up")
        assert shown.status_code == 200 and 'name="csrf_token"' in shown.text
        r = client.post("/volunteer/sign-up", data=form(name="window box"))  # no csrf_token
        assert r.status_code == 403
        assert 'value="window box"' in r.text and 'value="alice@example.org"' in r.text  # the form comes back filled
        forged = client.post("/volunteer/sign-up", data={**form(), "csrf_token": "forged"})
        assert forged.status_code == 403
    assert count(db, tables.signups) == 0 and count(db, tables.devices) == 0 and not mailbox.messages
    bundle = httpx.post(f"{live_api}/volunteer/bundle", data={"device_token": "x"}, timeout=10)
    confirm = httpx.post(f"{live_api}/volunteer/confirm", data={"token": "x"}, timeout=10)
    assert bundle.status_code == 403 and confirm.status_code == 403
