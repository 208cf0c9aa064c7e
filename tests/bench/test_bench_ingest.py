"""`civicair bench ingest` runs end to end on a tiny load and reports its JSON keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import REPO

pytestmark = [pytest.mark.db, pytest.mark.mqtt, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")]


@pytest.mark.parametrize("gateways", [1, 2])
def test_bench_ingest_small_run(db, gateways) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = db.url
    r = subprocess.run([sys.executable, "-m", "civicair.cli", "bench", "ingest", "--readings", "1200",
                        "--publishers", "2", "--devices", "20", "--rate", "1200", "--json",
                        "--gateways", str(gateways)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("readings_per_s", "ceiling_per_s", "naive_per_s", "ratio_to_ceiling", "p99_latency_s",
                "peak_rss_mb", "lost", "duplicated"):
        assert key in out, key
    assert (out["lost"], out["duplicated"], out["gateways"]) == (0, 0, gateways)
    assert out["readings_per_s"] > 0 and out["peak_rss_mb"] > 0
    with db.engine.connect() as conn:  # the benchmark cleans up after itself
        assert conn.execute(sa.text("select count(*) from devices where uid like 'bench-%'")).scalar() == 0
        assert conn.execute(sa.text("select count(*) from readings")).scalar() == 0
