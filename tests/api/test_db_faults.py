"""The zone series endpoint queries from the event loop on an async pool without pinging first:
connections broken by a database restart (here: a TCP proxy that drops every connection) are
replaced without a failed request, and a database that stays down gives a clear 503."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from civicair.core.db import open_database
from civicair.readmodel.zone_rollup import refresh
from pydantic import SecretStr

from tests.city import T0, serve_app
from tests.ingest.tcpproxy import TcpProxy

pytestmark = pytest.mark.db

PARAMS = {"datetime_from": T0.isoformat(), "datetime_to": (T0 + timedelta(days=1)).isoformat()}


@pytest.fixture
def proxied(db, settings):  # type: ignore[no-untyped-def]
    parts = urlsplit(db.url.replace("+psycopg", ""))
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    url = db.url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    over_proxy = settings.model_copy(update={"database_url": SecretStr(url), "api_cache_ttl_s": 0.0,
                                             "api_db_timeout_s": 1.0})
    database = open_database(over_proxy, check=False)
    yield proxy, over_proxy, database
    database.close()
    proxy.close()


def test_broken_pooled_connections_are_replaced_without_a_failed_request(city, db, settings, proxied) -> None:
    proxy, over_proxy, database = proxied
    with db.engine.begin() as conn:
        refresh(conn, settings, now=T0 + timedelta(days=3))
    with serve_app(over_proxy, database) as base:
        url = f"{base}/v1/zones/{city.zone_id}/series"
        with httpx.Client(timeout=30) as client:
            first = [client.get(url, params=PARAMS) for _ in range(12)]  # several pooled connections
            assert {r.status_code for r in first} == {200}
            proxy.cut()  # every database connection drops, as in a server restart
            proxy.restore()
            after = [client.get(url, params=PARAMS) for _ in range(12)]
    assert [r.status_code for r in after] == [200] * 12
    assert after[0].json()["results"] == first[0].json()["results"]


def test_database_down_gives_503_problem(city, proxied) -> None:
    proxy, over_proxy, database = proxied
    with serve_app(over_proxy, database) as base:
        proxy.cut()  # and not restored
        r = httpx.get(f"{base}/v1/zones/{city.zone_id}/series", params=PARAMS, timeout=30)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    assert "database is unreachable" in r.json()["detail"]
