"""`civicair bench api` runs end to end (tiny data) and ends with the JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_api_smoke(pg_server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = pg_server_url
    done = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "api", "--json", "--days", "2",
                           "--requests", "40", "--concurrency", "4", "--workers", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("p50_ms", "p95_ms", "requests_per_s", "cached_requests_per_s", "live_requests_per_s",
                "transport_requests_per_s", "ratio_to_transport", "speedup_vs_live"):
        assert result[key] > 0
    assert result["ratio_to_transport"] == round(result["requests_per_s"] / result["transport_requests_per_s"], 3)
    assert result["rows_per_response"] == 48  # 2 days of hours of the zone's 4 devices
    assert result["p50_ms"] <= result["p95_ms"]
