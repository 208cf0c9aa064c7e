"""The push group commit over real HTTP: concurrent requests share transactions, each hears the
outcome of its own body only after the commit, a database restart answers 503 (nothing kept,
the client retries) and the next push is stored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from civicair.core.db import open_database
from pydantic import SecretStr

from tests.city import serve_app
from tests.gateway.support import add_device, readings
from tests.ingest.tcpproxy import TcpProxy

pytestmark = pytest.mark.db

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def test_concurrent_pushes_share_commits_and_each_gets_its_own_answer(db, settings, unique) -> None:
    devs = [add_device(db, f"g{i}-{unique}", transport="http", token=f"tok-g{i}") for i in range(8)]
    with serve_app(settings, db) as base:
        async def push(client: httpx.AsyncClient, i: int) -> httpx.Response:
            body = [{"time": (NOW + timedelta(seconds=i * 10 + j)).isoformat(), "readings": {"pm25": float(i)}}
                    for j in range(i % 3 + 1)]
            if i % 5 == 4:  # some bodies are bad: 422 for those, and only those
                body = [{"time": NOW.isoformat(), "readings": {"pm25": "bad"}}]
            return await client.post(f"{base}/v1/push", content=json.dumps(body),
                                     headers={"Authorization": f"Bearer tok-g{i % 8}"})

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as client:
                return await asyncio.gather(*(push(client, i) for i in range(64)))

        answers = asyncio.run(run())
        for i, r in enumerate(answers):
            if i % 5 == 4:
                assert r.status_code == 422 and "kept as a dead letter" in r.json()["detail"], r.text
            else:
                assert r.status_code == 201 and r.json() == {"stored": i % 3 + 1, "messages": i % 3 + 1}, r.text
    assert sum(len(readings(db, d)) for d in devs) == sum(i % 3 + 1 for i in range(64) if i % 5 != 4)


def test_a_database_outage_answers_503_and_keeps_nothing_then_pushes_are_stored(db, settings, unique) -> None:
    dev = add_device(db, f"o-{unique}", transport="http", token="tok-out")
    parts = urlsplit(db.url.replace("+psycopg", ""))
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    url = db.url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    over_proxy = settings.model_copy(update={"database_url": SecretStr(url), "api_db_timeout_s": 2.0})
    database = open_database(over_proxy, check=False)
    headers = {"Authorization": "Bearer tok-out"}
    try:
        with serve_app(over_proxy, database) as base, httpx.Client(timeout=30) as client:
            def push(k: int) -> httpx.Response:
                return client.post(f"{base}/v1/push", headers=headers,
                                   json={"time": (NOW + timedelta(minutes=k)).isoformat(), "readings": {"pm25": k}})

            assert push(0).status_code == 201
            proxy.cut()
            down = push(1)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            proxy.restore()
            assert push(1).status_code == 201  # the client's retry
            assert push(2).status_code == 201
    finally:
        database.close()
        proxy.close()
    assert readings(db, dev) == [(2, 0.0), (2, 1.0), (2, 2.0)]
