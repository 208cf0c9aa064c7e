"""The installed distribution: one top-level import name, `civicair`, and every product file in it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("core", "gateway", "ingest", "calibration", "readmodel", "api", "open_export", "firmware_tools",
           "migrations", "web", "demo", "bench", "sta")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("civicair-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_installs_exactly_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["civicair"]
    record = next(n for n in names if n.endswith(".dist-info/RECORD"))
    tops = {line.split(",")[0].split("/")[0] for line in wheel.read(record).decode().splitlines() if line}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"civicair"}


def test_the_wheel_holds_every_product_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {f"civicair/{p.relative_to(REPO)}" for folder in FOLDERS for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    expected |= {f"civicair/{p.name}" for p in (REPO / "civicair").glob("*.py")}
    missing = sorted(expected - names)
    assert not missing, f"files of the product folders missing from the wheel: {missing}"
    # the migrations an installed `civicair migrate` runs
    assert any(n.startswith("civicair/migrations/versions/0001_") for n in names)
