"""`civicair zones import FILE` in a real process: zones loaded, devices mapped, bad files
rejected with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.errors import InvalidInput
from civicair.readmodel.zones import parse_zones

from tests.seed import add_device

pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "demo" / "data" / "strasbourg_example_zones.geojson"


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env["CIVICAIR_DATABASE_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_import_example_zones_maps_devices_and_is_idempotent(db, unique) -> None:
    with db.engine.begin() as conn:
        inside, _ = add_device(conn, f"ca-{unique}-a", lat=48.5734, lon=7.7521)  # Strasbourg box
        add_device(conn, f"ca-{unique}-b", lat=48.7000, lon=7.9000)  # outside every zone
        add_device(conn, f"ca-{unique}-m", kind="mobile")  # mobile: never mapped
    for _ in range(2):
        done = run_cli(db.url, "zones", "import", str(EXAMPLE))
        assert done.returncode == 0, done.stderr
        assert "imported 5 zones" in done.stderr + done.stdout
    with db.engine.connect() as conn:
        zones = dict(conn.execute(sa.select(tables.zones.c.id, tables.zones.c.name)).all())
        mapping = conn.execute(sa.select(tables.device_zones.c.device_id, tables.device_zones.c.zone_id)).all()
    assert zones["67482"] == "Strasbourg" and len(zones) == 5
    assert mapping == [(inside, "67482")]


def test_bad_zone_files_fail_with_one_clear_line(db, tmp_path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "x"},'
                   ' "geometry": {"type": "Point", "coordinates": [7, 48]}}]}')
    done = run_cli(db.url, "zones", "import", str(bad))
    assert done.returncode == 1
    assert "feature 0" in done.stderr and "Traceback" not in done.stderr
    missing = run_cli(db.url, "zones", "import", str(tmp_path / "nope.geojson"))
    assert missing.returncode == 1 and "nope.geojson" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "notjson.geojson").write_text("{oops")
    notjson = run_cli(db.url, "zones", "import", str(tmp_path / "notjson.geojson"))
    assert notjson.returncode == 1 and "not JSON" in notjson.stderr


def test_parse_zones_reads_common_property_names() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"INSEE_COM": "67043", "NOM_COM": "Bischheim"},
         "geometry": {"type": "MultiPolygon", "coordinates": [[[[7, 48], [8, 48], [8, 49], [7, 48]]]]}}]}
    assert [(z["id"], z["name"]) for z in parse_zones(doc)] == [("67043", "Bischheim")]
    with pytest.raises(InvalidInput):
        parse_zones({"type": "Feature"})
    assert json.loads(EXAMPLE.read_text())["features"][0]["properties"]["note"].startswith("illustrative")
