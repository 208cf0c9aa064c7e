"""Browser-test harness: real uvicorn servers on free ports, Debian's Chromium driven by Playwright
(`executable_path=shutil.which("chromium")`; `playwright install` is never run: its download is
not reachable here), a network cut that records what a page tried to fetch, axe-core (from the
npm lock, frontend/node_modules) run inside a page, and a byte counter of what the server sent.
The signed-in pages (issue 17) reuse all of it."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from civicair.core.broker import free_port

REPO = Path(__file__).resolve().parents[2]
AXE_JS = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO / "build" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def serve(app: Any, port: int | None = None, host: str = "127.0.0.1") -> Iterator[int]:
    """Run `app` with uvicorn in a thread on a free port until the block ends."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def launch(pw: Any, extra_args: list[str] | None = None) -> Any:
    exe = shutil.which("chromium")
    if exe is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    return pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS + (extra_args or []))


@dataclass
class NetworkCut:
    """context.route handler: requests to other origins are aborted and recorded."""

    allowed: set[str]
    blocked: list[str] = field(default_factory=list)

    def __call__(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" in self.allowed:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


def cut_network(context: Any, *allowed_origins: str) -> NetworkCut:
    cut = NetworkCut(set(allowed_origins))
    context.route("**/*", cut)
    return cut


def axe_serious(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations in the page (WCAG 2.1 A/AA and best practice).
    Evaluated through DevTools, which the page's CSP (no inline script) does not govern."""
    page.evaluate(AXE_JS.read_text() + "\n;void 0")
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


class ByteCounter:
    """ASGI wrapper counting what the server sends: body bytes exact (compressed when gzip
    applies), status line and headers approximated."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.by_path: dict[str, int] = {}

    def reset(self) -> None:
        self.by_path = {}

    @property
    def total(self) -> int:
        return sum(self.by_path.values())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = scope["path"] + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")

        async def counting_send(message: dict[str, Any]) -> None:
            n = 0
            if message["type"] == "http.response.start":
                n = 17 + sum(len(k) + len(v) + 4 for k, v in message.get("headers", []))
            elif message["type"] == "http.response.body":
                n = len(message.get("body", b""))
            self.by_path[key] = self.by_path.get(key, 0) + n
            await send(message)

        await self.app(scope, receive, counting_send)
