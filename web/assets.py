"""The bundled front-end (web/static/dist, built by `make web`): the manifest that maps an entry
(`map.js`) to its content-hashed file. Without a bundle (Node.js missing at install) `url()` is
None and the pages leave their scripts out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

DIST = Path(__file__).parent / "static" / "dist"
DIST_URL = "/static/dist"
log = logging.getLogger(__name__)


class Assets:
    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist
        path = dist / "manifest.json"
        self.manifest: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
        if not self.manifest:
            log.warning("civicair.web: no front-end bundle in %s (make web needs Node.js): pages are served "
                        "without their map, chart and widget scripts", dist)

    def url(self, entry: str) -> str | None:
        name = self.manifest.get(entry)
        return f"{DIST_URL}/{name}" if name else None
