"""`civicair bench sta` runs end to end (a few days of data) and ends with the JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_sta_smoke(pg_server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = pg_server_url
    done = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "sta", "--json", "--days", "100",
                           "--zones", "2", "--repeat", "2"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows_per_year"] == 100 * 24  # every hour of the 4 devices' zone, in 3 pages
    assert result["datastreams"] == 2 and result["every_page"]["n"] == 2 * 3
    for key in ("first", "every_page", "deep_nextlink", "deep_skip", "baseline_public_api"):
        assert 0 < result[key]["p50_ms"] <= result[key]["p95_ms"]
    assert result["deep_nextlink_to_first_p95"] == round(result["deep_nextlink"]["p95_ms"] / result["first"]["p95_ms"], 2)
