"""`civicair bench push` runs end to end (few pushes) and ends with the JSON line; nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["sensor-community", "civicair"])
def test_bench_push_smoke(pg_server_url: str, fmt: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = pg_server_url
    done = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "push", "--json", "--format", fmt,
                           "--requests", "100", "--rounds", "1", "--concurrency", "4", "--workers", "1",
                           "--devices", "10"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["nothing_lost"] is True and result["statuses"] == {"201": result["pushes_sent"]}
    assert result["readings_stored"] == result["pushes_sent"] * (2 if fmt == "sensor-community" else 4)
    assert result["pushes_per_s"] > 0 and result["transport_pushes_per_s"] > 0
    assert result["ratio_to_transport"] == round(result["pushes_per_s"] / result["transport_pushes_per_s"], 3)
