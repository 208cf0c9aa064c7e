"""HTTP behaviour: ETag + conditional GET, response cache, gzip, CORS, rate limit, Link headers."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.db


def test_etag_and_conditional_get(city, live_api) -> None:
    url = f"{live_api}/v1/zones"
    r = httpx.get(url)
    etag = r.headers["etag"]
    assert etag.startswith('W/"') and "max-age" in r.headers["cache-control"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert httpx.get(url, headers={"If-None-Match": 'W/"other"'}).status_code == 200
    other = httpx.get(url, params={"format": "csv"})
    assert other.headers["etag"] != etag


def test_cached_response_is_served_until_ttl(city, db, serve) -> None:
    import sqlalchemy as sa

    cached = serve(api_cache_ttl_s=3600)
    fresh = serve(api_cache_ttl_s=0)
    before = [httpx.get(f"{base}/v1/stations").json()["results"] for base in (cached, fresh)]
    with db.engine.begin() as conn:
        conn.execute(sa.text("update reference_stations set name = 'Renamed'"))
    assert httpx.get(f"{cached}/v1/stations").json()["results"] == before[0]
    assert httpx.get(f"{fresh}/v1/stations").json()["results"][0]["name"] == "Renamed"
    assert "etag" in httpx.get(f"{fresh}/v1/stations").headers


def test_gzip_and_identity_clients_both_get_correct_bodies(city, live_api) -> None:
    url = f"{live_api}/v1/devices"
    with httpx.Client() as client:
        gz = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert gz.headers["content-encoding"] == "gzip"
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(plain.content)
        assert plain.json() == gz.json()


def test_cors_for_the_portal_origin_only(city, serve) -> None:
    base = serve(cors_origins=["https://portal.example.org"])
    ok = httpx.get(f"{base}/v1/quantities", headers={"Origin": "https://portal.example.org"})
    assert ok.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert "etag" in ok.headers["access-control-expose-headers"].lower()
    # any other page may read the open data (the <civicair-air> widget), never with credentials
    other = httpx.get(f"{base}/v1/quantities", headers={"Origin": "https://commune.example"})
    assert other.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in other.headers
    private = httpx.get(f"{base}/v1/partner/devices", headers={"Origin": "https://commune.example"})
    assert "access-control-allow-origin" not in private.headers
    pre = httpx.options(f"{base}/v1/devices", headers={"Origin": "https://portal.example.org",
                                                      "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 200


def test_rate_limit_answers_429_with_retry_after(city, serve) -> None:
    base = serve(rate_limit_per_minute=5)
    statuses = [httpx.get(f"{base}/v1/quantities").status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    r = httpx.get(f"{base}/v1/quantities")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    assert "rate limit" in r.json()["detail"]
    assert httpx.get(f"{base}/health").status_code != 429


def test_every_response_carries_licence_and_portal_links(city, live_api) -> None:
    for path in ("/v1/devices", "/v1/zones/nope/series", "/v1/quantities?format=csv", "/openapi.json", "/health"):
        r = httpx.get(live_api + path)
        link = r.headers["link"]
        assert 'rel="license"' in link and 'rel="describedby"' in link
        assert r.headers["x-attribution"]


def test_openapi_has_an_example_for_every_public_endpoint(live_api) -> None:
    spec = httpx.get(f"{live_api}/openapi.json").json()
    public = {p: v for p, v in spec["paths"].items() if p.startswith("/v1/") and "partner" not in p
              and "push" not in p
              and "volunteer" not in p and "operator" not in p}
    assert len(public) == 13
    for path, item in public.items():
        if path in ("/v1/map/latest", "/v1/indices"):  # documents of their own, not the envelope
            continue
        example = item["get"]["responses"]["200"]["content"]["application/json"].get("example")
        assert example and "meta" in example and "results" in example, path
    assert httpx.get(f"{live_api}/docs").status_code == 200


async def test_response_cache_holds_at_most_its_byte_budget() -> None:
    from civicair.api.middleware import OpenDataHeaders
    from civicair.core.settings import Settings

    async def big(scope, receive, send) -> None:  # a public endpoint answering 100 KB per URL
        body = scope["query_string"] * (100_000 // max(1, len(scope["query_string"])))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    mw = OpenDataHeaders(big, Settings(), cache_ttl_s=60, cache_bytes=1_000_000)
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    for i in range(40):
        scope = {"type": "http", "method": "GET", "path": "/v1/zones/x/series", "headers": [],
                 "query_string": f"q={i:04d}".encode()}
        await mw(scope, None, send)
        assert mw.cached_bytes == sum(len(e[3]) for e in mw.cache.values()) <= 1_000_000
    assert 5 <= len(mw.cache) <= 10  # the newest URLs, ~100 KB each
    assert ("/v1/zones/x/series", "q=0039", "") in mw.cache and ("/v1/zones/x/series", "q=0000", "") not in mw.cache
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == 40 and bodies[-1].startswith(b"q=0039")


def test_reuse_port_lets_several_api_processes_share_one_port() -> None:
    from civicair.core.broker import free_port

    from civicair.runtime import reuse_port_socket

    port = free_port()
    first, second = reuse_port_socket("127.0.0.1", port), reuse_port_socket("127.0.0.1", port)
    try:
        assert first.getsockname()[1] == second.getsockname()[1] == port
    finally:
        first.close()
        second.close()
