"""The publication workflow's controls (issue 19; the operator console of issue 17 builds on them):
the operator API behind an `operator`-scoped partner key, the `civicair device approve |
withhold | pending` commands, `civicair partner key revoke`, and the registration rate limit."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.repository import create_partner_key
from civicair.core import tables
from civicair.core.security import hash_secret, new_api_key

from tests.conftest import REPO

pytestmark = pytest.mark.db


def cli(settings, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update(CIVICAIR_DATABASE_URL=settings.database_url.get_secret_value(), CIVICAIR_PSEUDONYM_SECRET="test-secret",
               CIVICAIR_DATA_DIR=str(settings.data_dir))
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def key_with(db, *scopes: str) -> str:  # type: ignore[no-untyped-def]
    key = new_api_key()
    with db.engine.begin() as conn:
        create_partner_key(conn, "agency", hash_secret(key), list(scopes))
    return key


def register(base: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/volunteer/devices", timeout=10, json={
        "name": "x", "kind": "fixed", "sensors": ["SDS011"], "transport": "http", "lat": 48.58, "lon": 7.75,
        "email": "someone@example.org", "consent_public": True, **extra})


def test_operator_api_lists_approves_withholds_and_resets(db, serve) -> None:
    base = serve(api_cache_ttl_s=0)
    dev = register(base).json()
    ops = key_with(db, "operator")
    url = f"{base}/v1/operator/devices"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": key_with(db, "calibration")}, timeout=10).status_code == 403
    h = {"X-API-Key": ops}
    awaiting = httpx.get(url, headers=h, timeout=10).json()
    assert [(d["uid"], d["publication"], d["established"], d["first_received_at"]) for d in awaiting] == [
        (dev["uid"], "pending", False, None)]
    r = httpx.post(f"{url}/{dev['uid']}/approve", headers=h, json={"note": "checked the install photos"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["publication"], body["established"], body["public"], body["note"], body["changed_by"]) == (
        "approved", True, True, "checked the install photos", "key:agency")
    assert httpx.get(url, headers=h, timeout=10).json() == []
    assert [d["uid"] for d in httpx.get(url, headers=h, params={"state": "established"}, timeout=10).json()] == [dev["uid"]]
    public = {d["pseudonym"] for d in httpx.get(f"{base}/v1/devices", timeout=10).json()["results"]}
    assert dev["pseudonym"] in public
    r = httpx.post(f"{url}/{dev['uid']}/withhold", headers=h, timeout=10)
    assert r.json()["publication"] == "withheld" and not r.json()["established"]
    assert dev["pseudonym"] not in {d["pseudonym"] for d in httpx.get(f"{base}/v1/devices", timeout=10).json()["results"]}
    r = httpx.post(f"{url}/{dev['uid']}/pending", headers=h, timeout=10)
    assert r.json()["publication"] == "pending"
    assert httpx.get(f"{url}/ca-000000000000", headers=h, timeout=10).status_code == 404
    assert httpx.get(url, headers=h, params={"state": "nope"}, timeout=10).status_code == 422
    assert httpx.post(f"{url}/{dev['uid']}/approve", headers=h, json={"note": "x" * 501}, timeout=10).status_code == 422


def test_publication_commands(db, settings) -> None:
    uid = "ca-aaaaaaaaaaaa"
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.devices).values(uid=uid, pseudonym="p1", name="n", kind="fixed", transport="http",
                                                      consent_public=True))
    listed = cli(settings, "device", "pending")
    assert listed.returncode == 0 and uid in listed.stdout and "no data yet" in listed.stdout, listed.stderr
    done = cli(settings, "device", "approve", uid, "--note", "known volunteer")
    assert done.returncode == 0 and "approved" in done.stdout, done.stderr
    assert uid not in cli(settings, "device", "pending").stdout
    assert uid in cli(settings, "device", "pending", "--state", "approved").stdout
    assert cli(settings, "device", "withhold", uid).returncode == 0
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.devices.c.publication, tables.devices.c.publication_by)).one()
    assert row.publication == "withheld" and row.publication_by.startswith("cli:")
    assert cli(settings, "device", "pending", uid).returncode == 0
    bad = cli(settings, "device", "approve", "ca-000000000000")
    assert bad.returncode == 1 and "no device" in bad.stderr and "Traceback" not in bad.stderr
    assert cli(settings, "device", "pending", "--state", "nope").returncode == 1


def test_partner_key_revoke_takes_effect_at_once(db, settings, live_api) -> None:
    made = cli(settings, "partner", "key", "create", "--name", "atmo", "--scope", "operator")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    h = {"X-API-Key": key}
    assert httpx.get(f"{live_api}/v1/operator/devices", headers=h, timeout=10).status_code == 200
    listed = cli(settings, "partner", "key", "list")
    key_id = listed.stdout.split("\t")[0]
    assert "atmo" in listed.stdout and "active" in listed.stdout and key not in listed.stdout
    revoked = cli(settings, "partner", "key", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(f"{live_api}/v1/operator/devices", headers=h, timeout=10).status_code == 401
    again = cli(settings, "partner", "key", "revoke", key_id)
    assert again.returncode == 1 and "no unrevoked" in again.stderr
    assert "revoked" in cli(settings, "partner", "key", "list").stdout
    assert cli(settings, "partner", "key", "revoke").returncode == 1  # neither an id nor --name


def test_registrations_are_rate_limited_per_client_network(db, settings, serve) -> None:
    base = serve(registration_limit=2, registration_window_s=600)
    assert register(base).status_code == 201
    assert register(base).status_code == 201
    refused = register(base)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 500
    assert "2 registrations per 600 s" in refused.json()["detail"]
    bad = register(base, lat=123)  # a refused registration is not counted, but the limit holds
    assert bad.status_code in (422, 429)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.devices)).scalar_one() == 2
        stored = conn.execute(sa.select(tables.registrations.c.client_key)).scalars().all()
    assert len(stored) == 2 and all("127.0.0.1" not in k for k in stored)  # no address is stored
    # the operator's command is not limited
    reg = cli(settings, "device", "register", "--name", "n", "--kind", "fixed", "--sensor", "SDS011",
              "--transport", "http", "--lat", "48.5", "--lon", "7.7", "--email", "a@example.org")
    assert reg.returncode == 0, reg.stderr


def test_the_rate_limit_counts_an_ipv6_subscriber_prefix_as_one_network() -> None:
    from civicair.firmware_tools.credentials import client_key

    same = {client_key("s", a) for a in ("2001:db8:0:7::1", "2001:db8:0:7:ffff:ffff:ffff:ffff")}
    assert len(same) == 1
    assert client_key("s", "2001:db8:0:8::1") not in same
    assert client_key("s", "192.0.2.1") != client_key("s", "192.0.2.2")
    assert client_key("s", "192.0.2.1") != client_key("other secret", "192.0.2.1")


def test_privacy_zones_command(db, settings) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.devices), [
            {"uid": "ca-bbbbbbbbbbbb", "pseudonym": "p2", "name": "bike", "kind": "mobile", "transport": "mqtt"},
            {"uid": "ca-cccccccccccc", "pseudonym": "p3", "name": "balcony", "kind": "fixed", "transport": "mqtt"}])
    out = cli(settings, "device", "privacy-zones", "ca-bbbbbbbbbbbb", "--add", "48.58,7.75,300", "--add", "48.6,7.7,150")
    assert out.returncode == 0 and "2 privacy zone(s)" in out.stdout, out.stderr
    with db.engine.connect() as conn:
        zones = conn.execute(sa.select(tables.devices.c.privacy_zones).where(tables.devices.c.uid == "ca-bbbbbbbbbbbb")).scalar()
    assert zones == [{"lat": 48.58, "lon": 7.75, "radius_m": 300.0}, {"lat": 48.6, "lon": 7.7, "radius_m": 150.0}]
    assert "1 privacy zone(s)" in cli(settings, "device", "privacy-zones", "ca-bbbbbbbbbbbb", "--clear",
                                      "--add", "48.5,7.6,200").stdout
    bad = cli(settings, "device", "privacy-zones", "ca-bbbbbbbbbbbb", "--add", "48.5,7.6,10")
    assert bad.returncode == 1 and "radius_m" in bad.stderr  # under 50 m
    fixed = cli(settings, "device", "privacy-zones", "ca-cccccccccccc", "--add", "48.5,7.6,200")
    assert fixed.returncode == 1 and "mobile" in fixed.stderr
    listing = cli(settings, "device", "privacy-zones", "ca-bbbbbbbbbbbb")
    assert "48.500000, 7.600000  radius 200 m" in listing.stdout
