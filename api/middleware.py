"""HTTP behaviour of the open-data API, as pure ASGI middleware (no per-request threads):

- `OpenDataHeaders`: licence / attribution / portal `Link` headers on every response; for
  anonymous GETs of the public paths a weak `ETag`, `Cache-Control: public, max-age=N`,
  conditional GET (`If-None-Match` → 304) and a small in-process response cache (TTL, at most
  `api_cache_mb` of bodies, LRU).
- `RateLimit`: a token bucket per client address (`rate_limit_per_minute`, burst of the same
  size); over the limit → 429 problem+json with `Retry-After`. The bucket lives in this
  process: behind several API processes, rate-limit at the reverse proxy instead.

`install(app, settings)` adds them (and CORS for `settings.cors_origins`). Public GETs (`OPEN_PREFIXES`) also
send `Access-Control-Allow-Origin: *`, without credentials, so any page may read the open data.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import xxhash
from civicair.api.problems import PROBLEM
from civicair.core.settings import Settings
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PREFIXES = ("/v1/devices", "/v1/zones", "/v1/mobile", "/v1/stations", "/v1/quantities",
                   "/v1/licences")
PRIVATE_HEADERS = (b"authorization", b"x-api-key", b"cookie")
# Open data readable from any web page (the <civicair-air> widget on a commune's site): these GETs
# send `Access-Control-Allow-Origin: *`, never with credentials.
OPEN_PREFIXES = (*PUBLIC_PREFIXES, "/v1/map", "/v1/indices")


def link_parts(settings: Settings, licence_url: str | None = None) -> list[str]:
    return [
        f'<{licence_url or settings.licence_url}>; rel="license"',
        f'<{settings.portal_base_url}>; rel="describedby"; title="the city\'s open-data portal"',
        f'<{settings.public_base_url.rstrip("/")}/docs>; rel="service-doc"',
    ]


def link_header(settings: Settings, licence_url: str | None = None) -> str:
    return ", ".join(link_parts(settings, licence_url))


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))


class OpenDataHeaders:
    def __init__(self, app: ASGIApp, settings: Settings, cache_ttl_s: float = 10.0,
                 cache_entries: int = 2048, cache_bytes: int = 64 << 20) -> None:
        self.app = app
        self.link = link_header(settings).encode()
        self.link_parts = [p.encode() for p in link_parts(settings)]
        self.attribution = quote(settings.attribution, safe=" /,.;:()@-").encode()
        self.ttl = cache_ttl_s
        self.max_entries = cache_entries
        self.max_bytes = cache_bytes  # bodies held at most (a year-long series page is ~0.5 MB)
        self.cached_bytes = 0
        self.cache: OrderedDict[tuple[str, str, str], tuple[float, int, list[tuple[bytes, bytes]], bytes]] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0

    def _common(self, headers: list[tuple[bytes, bytes]], open_data: bool = False) -> list[tuple[bytes, bytes]]:
        names = {k.lower() for k, _ in headers}
        if open_data and b"access-control-allow-origin" not in names:
            headers.append((b"access-control-allow-origin", b"*"))
        if b"link" not in names:
            headers.append((b"link", self.link))
        else:  # the response's own links (paging, a dataset's licence) come first, then ours
            own = b", ".join(v for k, v in headers if k.lower() == b"link")
            extra = [p for p in self.link_parts if not (b'rel="license"' in p and b'rel="license"' in own)
                     and p.split(b">")[0] + b">" not in own]
            headers = [(k, v) for k, v in headers if k.lower() != b"link"]
            headers.append((b"link", b", ".join([own, *extra])))
        if b"x-attribution" not in names:
            headers.append((b"x-attribution", self.attribution))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        open_data = scope.get("method") in ("GET", "HEAD") and path.startswith(OPEN_PREFIXES)
        cacheable = (scope.get("method") == "GET" and path.startswith(PUBLIC_PREFIXES)
                     and not any(_header(scope, h) for h in PRIVATE_HEADERS))
        if not cacheable:
            async def send_common(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = self._common(list(message.get("headers", [])), open_data)
                await send(message)

            await self.app(scope, receive, send_common)
            return

        key = (path, scope.get("query_string", b"").decode("latin-1"), _header(scope, b"accept") or "")
        now = time.monotonic()
        with self.lock:
            entry = self.cache.get(key)
            if entry and entry[0] > now:
                self.cache.move_to_end(key)
                self.hits += 1
            else:
                entry = None
        if entry is None:
            status, headers, body = await self._run(scope, receive)
            if status == 200:
                # XXH3-128: 0.01 ms for a 0.5 MB page, SHA-256 took 0.31 ms (a tenth of the
                # request's CPU); a validator needs no cryptographic hash.
                etag = 'W/"' + xxhash.xxh3_128_hexdigest(body) + '"'
                headers = [(k, v) for k, v in headers if k.lower() not in (b"etag", b"cache-control")]
                headers += [(b"etag", etag.encode()),
                            (b"cache-control", f"public, max-age={int(self.ttl)}".encode()),
                            (b"vary", b"Accept, Accept-Encoding")]
                entry = (now + self.ttl, status, self._common(headers, open_data), body)
                if self.ttl > 0 and len(body) <= self.max_bytes // 8:
                    with self.lock:
                        old = self.cache.pop(key, None)
                        self.cached_bytes += len(body) - (len(old[3]) if old else 0)
                        self.cache[key] = entry
                        while len(self.cache) > self.max_entries or self.cached_bytes > self.max_bytes:
                            self.cached_bytes -= len(self.cache.popitem(last=False)[1][3])
            else:
                entry = (0.0, status, self._common(headers, open_data), body)
        _, status, headers, body = entry
        etag_value = next((v.decode() for k, v in headers if k == b"etag"), None)
        if status == 200 and etag_value and etag_matches(_header(scope, b"if-none-match"), etag_value):
            keep = {b"etag", b"cache-control", b"vary", b"link", b"x-attribution", b"access-control-allow-origin"}
            await send({"type": "http.response.start", "status": 304,
                        "headers": [(k, v) for k, v in headers if k in keep]})
            await send({"type": "http.response.body", "body": b""})
            return
        # a copy: outer middleware (GZip) edits the header list in place
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    async def _run(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        return int(start.get("status", 500)), headers, body


class TokenBucket:
    """Per-key token bucket: `rate` tokens per second, `burst` capacity. Thread-safe."""

    def __init__(self, per_minute: int, burst: int | None = None, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst or per_minute)
        self.max_keys = max_keys
        self.state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when allowed, else the seconds until a token is available."""
        now = time.monotonic() if now is None else now
        with self.lock:
            tokens, last = self.state.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
            self.state[key] = (tokens, now)
            while len(self.state) > self.max_keys:
                self.state.popitem(last=False)
            return wait


class RateLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.bucket = TokenBucket(settings.rate_limit_per_minute)
        self.link = link_header(settings).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        wait = self.bucket.take(str(client[0]))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = json.dumps({
            "type": "about:blank", "title": "Too many requests", "status": 429,
            "detail": f"rate limit of {int(self.bucket.rate * 60)} requests per minute exceeded; "
                      f"retry after {retry} s", "instance": scope.get("path", ""), "retry_after": retry,
        }).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", PROBLEM.encode()), (b"retry-after", str(retry).encode()),
            (b"content-length", str(len(body)).encode()), (b"link", self.link)]})
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, settings: Settings) -> None:
    """Add the middleware; call before GZip so compression stays outermost."""
    app.add_middleware(OpenDataHeaders, settings=settings, cache_ttl_s=settings.api_cache_ttl_s,
                       cache_bytes=settings.api_cache_mb << 20)
    app.add_middleware(RateLimit, settings=settings)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "HEAD"],
                           allow_headers=["*"], expose_headers=["ETag", "Link", "Retry-After", "X-Attribution"],
                           max_age=3600)
