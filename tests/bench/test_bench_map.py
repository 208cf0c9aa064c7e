"""`civicair bench map` runs end to end on a small city and times a map that really has its cells
(it once timed a map of zones only: its devices were not published)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_map_smoke(pg_server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = pg_server_url
    done = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "map", "--json", "--devices", "600",
                           "--requests", "20"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 600 and result["requests"] == 20
    assert result["cells"] > 0 and result["features"] == result["cells"] + 33  # the 33 bench zones, every cell of ≥ k
    assert 0 < result["p50_ms"] <= result["p95_ms"] and 0 < result["http_alone_p50_ms"] <= result["http_alone_p95_ms"]
    assert result["p95_ratio_to_http_alone"] == round(result["p95_ms"] / result["http_alone_p95_ms"], 1)
