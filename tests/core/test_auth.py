"""The two auth primitives every later feature uses, over real HTTP: partner API keys
(X-API-Key, hashed, scopes) and device tokens (hashed, Bearer or Basic)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.security import hash_secret, new_api_key, new_device_token, pseudonym

pytestmark = pytest.mark.db


def test_partner_api_key_accepted_wrong_missing_and_scope(db, live_api) -> None:
    good, reader_only, revoked, read = new_api_key(), new_api_key(), new_api_key(), new_api_key()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.partner_api_keys), [
            {"name": "ATMO Grand Est", "key_hash": hash_secret(good), "scopes": ["read", "calibration"]},
            {"name": "other", "key_hash": hash_secret(reader_only), "scopes": ["calibration"]},
            {"name": "reader", "key_hash": hash_secret(read), "scopes": ["read"]},
        ])
        conn.execute(sa.insert(tables.partner_api_keys).values(
            name="old", key_hash=hash_secret(revoked), scopes=["read"], revoked_at=sa.func.now()))
        stored = conn.execute(sa.select(tables.partner_api_keys.c.key_hash)).scalars().all()
    assert good not in stored  # only hashes are stored
    url = f"{live_api}/v1/partner/whoami"
    ok = httpx.get(url, headers={"X-API-Key": good})
    assert ok.status_code == 200 and ok.json()["name"] == "ATMO Grand Est"
    # whoami answers for a key of any scope; a key lacking a scope is refused where the scope is needed
    assert httpx.get(url, headers={"X-API-Key": reader_only}).json() == {"name": "other", "scopes": ["calibration"],
                                                                          "via": "key"}
    calibration = f"{live_api}/v1/partner/calibration/devices"
    assert httpx.get(calibration, headers={"X-API-Key": reader_only}).status_code == 200
    for u, headers, status in [(url, {}, 401), (url, {"X-API-Key": "cak_wrong"}, 401), (url, {"X-API-Key": revoked}, 401),
                               (calibration, {"X-API-Key": read}, 403)]:
        r = httpx.get(u, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == status and r.json()["detail"]


def test_device_token_accepted_wrong_missing(db, live_api) -> None:
    token = new_device_token()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(tables.devices).values(
            uid="ca-auth1", pseudonym=pseudonym("test-secret", "ca-auth1"), name="n", kind="fixed",
            transport="http", token_hash=hash_secret(token)))
    url = f"{live_api}/v1/volunteer/me"
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()["uid"] == "ca-auth1"
    assert httpx.get(url, auth=("ca-auth1", token)).status_code == 200  # Basic, as airrohr sends
    assert httpx.get(url, headers={"Authorization": "Bearer cat_wrong"}).status_code == 401
    assert httpx.get(url, auth=("ca-auth1", "wrong")).status_code == 401
    assert httpx.get(url).status_code == 401


def test_health_reports_database_and_broker(live_api) -> None:
    body = httpx.get(f"{live_api}/health").json()
    assert body["database"]["status"] == "ok"
    assert body["broker"]["status"] == "ok"
    assert body["status"] == "ok"
