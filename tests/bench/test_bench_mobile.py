"""`civicair bench mobile` runs end to end (a few bikes) and ends with the JSON line; the SQL path
and the previous Python path it is compared with publish the same number of cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_mobile_smoke(pg_server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = pg_server_url
    done = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "mobile", "--json", "--bikes", "10",
                           "--requests", "30", "--concurrency", "2"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["points"] == 10 * 7 * 8 * 180
    for key in ("p50_ms", "p95_ms", "concurrent_p95_ms", "transport_p95_ms", "python_path_s", "rollup_rows"):
        assert result[key] > 0
    assert result["p50_ms"] <= result["p95_ms"]
    # where loops cross, cells reach k = 3: the SQL rollup path and the Python one agree on them
    assert 0 < result["cells_per_page"] < 1000
    assert result["cells_per_page"] == result["python_path_cells"]
