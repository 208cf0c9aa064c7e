"""Export of a known fixture from the real database: exact rows and columns, privacy, frictionless
validation, idempotence, interrupted runs, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import frictionless
import pyarrow.parquet as pq
import pytest
from civicair.open_export.datasets import DEFAULT_DATASETS
from civicair.open_export.service import run_export
from civicair.open_export.state import LOCK
from civicair.readmodel import devices, mobile, params

from tests.conftest import REPO
from tests.open_export.fixture import DAY, ZONE, ZONE_GEOMETRY, seed

pytestmark = pytest.mark.db
BY_ID = {d.id: d for d in DEFAULT_DATASETS}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def exported(db, settings, tmp_path):
    fx = seed(db.engine)
    out = tmp_path / "exports"
    report = run_export(settings, db.engine, kind="day", day=DAY, out=out)
    return fx, out, report


def test_export_has_exactly_the_expected_rows_and_nothing_private(exported, db, settings) -> None:
    fx, out, report = exported
    assert report.skipped == {}
    label = DAY.isoformat()
    files = {ds: read_csv(out / ds / f"{ds}_{label}.csv") for ds in BY_ID}
    for ds in files:
        with open(out / ds / f"{ds}_{label}.csv", encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(BY_ID[ds].column_names), ds

    # zone-hourly: only the 10:00 zone-hour of the admin zone (3 devices). 11:00 (2 eligible
    # devices: D has no consent, E is unreliable) and every single-device H3 cell are suppressed.
    zh = files["zone-hourly"]
    assert [(r["zone_id"], r["quantity"], r["datetime_from"], r["datetime_to"]) for r in zh] == [
        (ZONE, "pm25", f"{label}T10:00:00Z", f"{label}T11:00:00Z")]
    assert float(zh[0]["value"]) == pytest.approx((10.0 + 10.5 + 12.0 + 12.5 + 14.0 + 14.5) / 6)
    assert (zh[0]["n_devices"], zh[0]["n_readings"], zh[0]["calibrated"]) == ("3", "6", "false")
    assert (float(zh[0]["min"]), float(zh[0]["max"])) == (10.0, 14.5)  # the flagged 900 is excluded

    zd = files["zone-daily"]
    assert [(r["zone_id"], r["datetime_from"], r["datetime_to"], r["n_devices"]) for r in zd] == [
        (ZONE, f"{label}T00:00:00Z", "2026-11-21T00:00:00Z", "3")]
    assert float(zd[0]["value"]) == pytest.approx(12.25)

    # device-hourly: consenting fixed devices only, their hours inside the day
    dh = files["device-hourly"]
    pseudo = fx.public_fixed
    got = {(r["device"], r["datetime_from"][11:13]) for r in dh}
    expected = {(pseudo["A"], "10"), (pseudo["A"], "11"), (pseudo["B"], "10"), (pseudo["B"], "11"), (pseudo["C"], "10")}
    with db.engine.connect() as conn:
        api_e = devices.device_series(conn, settings, pseudo["E"], "pm25", params.TimeRange(
            datetime_from=datetime(2026, 11, 20, tzinfo=UTC), datetime_to=datetime(2026, 11, 21, tzinfo=UTC)))
    expected |= {(pseudo["E"], r["period"]["datetime_from"].strftime("%H")) for r in api_e}
    assert got == expected
    a10 = next(r for r in dh if r["device"] == pseudo["A"] and r["datetime_from"].endswith("T10:00:00Z"))
    assert float(a10["value"]) == pytest.approx(10.25) and a10["n_readings"] == "2"

    # mobile-cells: only the 10:00 ride of 3 devices, never the 12:00 one (2 eligible devices),
    # never a cell at a trip's start or end.
    mc = files["mobile-cells"]
    assert mc and {r["datetime_from"] for r in mc} == {f"{label}T10:00:00Z"}
    assert all(int(r["n_devices"]) >= settings.k_anonymity for r in mc)
    assert not {r["h3_cell"] for r in mc} & set(fx.route_ends)

    # devices: consenting devices only, mobile ones without a cell
    dv = {r["device"]: r for r in files["devices"]}
    assert set(dv) == set(fx.public_fixed.values()) | set(fx.mobile.values())
    assert all(dv[p]["h3_cell"] == "" for p in fx.mobile.values())
    assert all(len(dv[p]["h3_cell"]) == 15 for p in fx.public_fixed.values())

    st = files["reference-stations"]
    assert [(r["station_code"], r["datetime_from"], r["value"]) for r in st] == [
        ("FR01011", f"{label}T10:00:00Z", "21.5")]

    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for hidden in (*fx.hidden.values(), *fx.secrets):
        assert hidden.encode() not in everything, hidden
    # no published position (GeoJSON [lon, lat], CSV lat/lon columns) is a device's exact one
    published = {(round(float(lat), 4), round(float(lon), 4)) for p in out.rglob("*.geojson")
                 for lon, lat in re.findall(r"\[(-?\d+\.\d+),(-?\d+\.\d+)\]", p.read_text("utf-8"))}
    for rows in files.values():
        for r in rows:
            for la, lo in (("latitude", "longitude"), ("lat", "lon")):
                if r.get(la):
                    published.add((round(float(r[la]), 4), round(float(r[lo]), 4)))
    assert len(published) > 10 and not published & fx.positions


def test_geojson_files_carry_geometries_and_provenance(exported, settings) -> None:
    fx, out, _ = exported
    label = DAY.isoformat()

    def load(ds: str) -> dict:
        return json.loads((out / ds / f"{ds}_{label}.geojson").read_text("utf-8"))

    zones = load("zone-hourly")
    assert [f["geometry"] for f in zones["features"]] == [ZONE_GEOMETRY]
    assert zones["features"][0]["properties"]["datetime_from"] == f"{label}T10:00:00Z"
    assert zones["landing_page"] == f"{settings.public_base_url}/datasets/zone-hourly"
    assert "portal_url" not in zones  # no portal slug configured: no guessed portal page
    assert zones["catalogue_url"].endswith("/catalog.jsonld") and zones["licence_url"] == settings.licence_url
    stations = load("reference-stations")  # the network's licence, as in the CSV's licence column
    assert stations["licence_url"] == settings.reference_licence_url
    cells = load("mobile-cells")
    assert cells["features"] and all(f["geometry"]["type"] == "Polygon" for f in cells["features"])
    devices = {f["properties"]["device"]: f["geometry"] for f in load("devices")["features"]}
    assert all(devices[p] is None for p in fx.mobile.values())
    assert all(devices[p]["type"] == "Point" for p in fx.public_fixed.values())


def test_mobile_export_equals_the_api_result(exported, db, settings) -> None:
    _, out, _ = exported
    rows = read_csv(out / "mobile-cells" / f"mobile-cells_{DAY.isoformat()}.csv")
    with db.engine.connect() as conn:
        api_rows = mobile.mobile_cells(conn, settings, "pm25", params.TimeRange(
            datetime_from=datetime(2026, 11, 20, tzinfo=UTC), datetime_to=datetime(2026, 11, 21, tzinfo=UTC)))
    assert sorted((r["h3_cell"], int(r["n_devices"]), float(r["value"])) for r in rows) == sorted(
        (r["h3_cell"], r["n_devices"], r["value"]) for r in api_rows)


def test_datapackage_and_files_validate_with_frictionless(exported, settings) -> None:
    _, out, _ = exported
    report = frictionless.validate(str(out / "datapackage.json"))
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])
    package = json.loads((out / "datapackage.json").read_text("utf-8"))
    paths = {r["path"] for r in package["resources"]}
    for ds in BY_ID:
        assert {f"{ds}/{ds}_{DAY.isoformat()}.csv", f"{ds}/{ds}_{DAY.isoformat()}.parquet"} <= paths
    assert package["licenses"][0]["path"] and package["sources"] and package["catalogue"].endswith("/catalog.jsonld")
    # Parquet holds the same rows, typed, and says where it comes from
    for ds in BY_ID:
        table = pq.read_table(out / ds / f"{ds}_{DAY.isoformat()}.parquet")
        assert table.column_names == list(BY_ID[ds].column_names)
        assert table.num_rows == len(read_csv(out / ds / f"{ds}_{DAY.isoformat()}.csv"))
        assert table.schema.metadata[b"civicair:landing_page"].decode() == f"{settings.public_base_url}/datasets/{ds}"
    for name, tool in (("SHA256SUMS", "sha256sum"), ("SHA512SUMS", "sha512sum")):
        sums = (out / name).read_text().splitlines()
        assert len(sums) == 1 + 3 * len(BY_ID)  # dictionary.csv + CSV, Parquet and GeoJSON of each dataset
        check = subprocess.run([tool, "-c", "--quiet", name], cwd=out, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_rerunning_an_export_changes_nothing(exported, db, settings) -> None:
    _, out, first = exported
    assert first.written
    before = snapshot(out)
    again = run_export(settings, db.engine, kind="day", day=DAY, out=out)
    assert again.written == []
    assert snapshot(out) == before


def test_interrupted_export_leaves_no_partial_file(db, settings, tmp_path) -> None:
    seed(db.engine)
    out = tmp_path / "exports"
    calls = []

    def crash_on_third(tmp: Path) -> None:
        calls.append(tmp)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a Ctrl-C in the middle of the run

    with pytest.raises(KeyboardInterrupt):
        run_export(settings, db.engine, kind="day", day=DAY, out=out, before_replace=crash_on_third)
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != LOCK)
    assert len(on_disk) == 2  # the two files completed before the crash, nothing else (but the lock)
    assert not [p for p in on_disk if p.endswith(".tmp")]
    for name in on_disk:  # each present file is complete
        if name.endswith(".csv"):
            assert read_csv(out / name)
        else:
            assert pq.read_table(out / name).num_rows > 0
    # the next run completes the export
    report = run_export(settings, db.engine, kind="day", day=DAY, out=out)
    assert len(report.unchanged) == 2 and frictionless.validate(str(out / "datapackage.json")).valid


def test_killed_export_process_leaves_no_partial_file(db, settings, tmp_path) -> None:
    """A real process killed (SIGKILL) while it writes: only complete files or nothing, and the
    next run removes the dead process's temporary file."""
    seed(db.engine)
    out = tmp_path / "exports"
    script = (
        "import os, signal, sys\n"
        "from datetime import date\n"
        "from core.db import create_engine\n"
        "from core.settings import Settings\n"
        "from open_export.service import run_export\n"
        "def die(tmp):\n"
        "    tmp.write_bytes(tmp.read_bytes()[:10])  # as if the disk write was cut short\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "s = Settings(database_url=sys.argv[1], pseudonym_secret='test-secret', _env_file=None)\n"
        "run_export(s, create_engine(sys.argv[1]), kind='day', day=date(2026, 11, 20), out=__import__('pathlib').Path(sys.argv[2]), before_replace=die)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, db.url, str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.name != LOCK]
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)
    report = run_export(settings, db.engine, kind="day", day=DAY, out=out)
    assert report.written and not [p for p in out.rglob("*.tmp")]


def test_monthly_export_and_dataset_selection(db, settings, tmp_path) -> None:
    seed(db.engine)
    out = tmp_path / "exports"
    settings.max_range_days = 7  # the API's interactive limit does not restrict a monthly export
    report = run_export(settings, db.engine, dataset_ids=["reference-stations", "zone-daily"], kind="month",
                        day=DAY, out=out)
    assert len(read_csv(out / "zone-daily" / "zone-daily_2026-11.csv")) == 1
    rows = read_csv(out / "reference-stations" / "reference-stations_2026-11.csv")
    # the month holds the valid 10:00 value and the next day's value
    assert [(r["datetime_from"], r["value"]) for r in rows] == [
        ("2026-11-20T10:00:00Z", "21.5"), ("2026-11-21T01:00:00Z", "5.0")]
    assert {p.parent.name for p in report.written if p.parent != out} == {"reference-stations", "zone-daily"}


def _cli(args: list[str], settings, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update({"CIVICAIR_DATABASE_URL": settings.database_url.get_secret_value(),
                "CIVICAIR_PSEUDONYM_SECRET": "test-secret", "CIVICAIR_DATA_DIR": str(settings.data_dir),
                **(extra_env or {})})
    return subprocess.run([sys.executable, "-m", "civicair.cli", "export", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_export_and_clear_errors(db, settings, tmp_path) -> None:
    seed(db.engine)
    out = tmp_path / "cli-out"
    ok = _cli(["--date", DAY.isoformat(), "--out", str(out), "--dataset", "zone-hourly"], settings)
    assert ok.returncode == 0, ok.stderr
    assert (out / "zone-hourly" / f"zone-hourly_{DAY.isoformat()}.parquet").is_file()
    assert "file(s) written" in ok.stderr
    again = _cli(["--date", DAY.isoformat(), "--out", str(out), "--dataset", "zone-hourly"], settings)
    assert again.returncode == 0 and "0 file(s) written" in again.stderr
    for args, message in ((["--period", "week"], "--period"), (["--date", "20-11-2026"], "--date"),
                          (["--dataset", "nope"], "unknown dataset 'nope'")):
        bad = _cli([*args, "--out", str(out)], settings)
        assert bad.returncode != 0 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    month = _cli(["--period", "month", "--date", "2026-11", "--out", str(out), "--dataset", "reference-stations"],
                 settings)
    assert month.returncode == 0 and (out / "reference-stations" / "reference-stations_2026-11.parquet").is_file()
    csv_text = (out / "zone-hourly" / f"zone-hourly_{DAY.isoformat()}.csv").read_text("utf-8")
    assert list(csv.DictReader(io.StringIO(csv_text)))[0]["zone_id"] == ZONE


def test_frictionless_checks_the_content_of_parquet_and_geojson_files(exported, settings, tmp_path) -> None:
    """Not only bytes and hashes: a Parquet column of the wrong type and a GeoJSON feature with a
    broken geometry fail validation (the datapackage rebuilt, so the hashes match), and the
    GeoJSON properties' JSON Schema holds for real files and catches a wrong type."""
    import shutil

    import jsonschema
    import pyarrow as pa
    from civicair.open_export.package import build_datapackage
    from civicair.open_export.service import package_meta

    _, out, _ = exported
    label = DAY.isoformat()
    package = json.loads((out / "datapackage.json").read_text("utf-8"))
    geo = next(r for r in package["resources"] if r["path"] == f"zone-hourly/zone-hourly_{label}.geojson")
    schema = next(f for f in geo["schema"]["fields"] if f["name"] == "properties")["jsonSchema"]
    for ds in BY_ID:
        for feature in json.loads((out / ds / f"{ds}_{label}.geojson").read_text("utf-8"))["features"]:
            jsonschema.validate(feature["properties"], schema if ds == "zone-hourly" else next(
                f for f in next(r for r in package["resources"] if r["path"] == f"{ds}/{ds}_{label}.geojson"
                                )["schema"]["fields"] if f["name"] == "properties")["jsonSchema"])
    broken = json.loads((out / "zone-hourly" / f"zone-hourly_{label}.geojson").read_text("utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**broken["features"][0]["properties"], "value": "abc"}, schema)

    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    broken["features"][0]["geometry"] = {"type": "Polygon", "coordinates": "not coordinates"}
    broken["features"].append({**broken["features"][0], "type": "Nope"})
    (bad / "zone-hourly" / f"zone-hourly_{label}.geojson").write_text(json.dumps(broken), "utf-8")
    table = pq.read_table(bad / "devices" / f"devices_{label}.parquet")
    stars = table.schema.get_field_index("stars")
    table = table.set_column(stars, pa.field("stars", pa.string()), pa.array(["many"] * table.num_rows))
    pq.write_table(table, bad / "devices" / f"devices_{label}.parquet")
    body, _, _ = build_datapackage(bad, list(BY_ID.values()), package_meta(settings), {})
    (bad / "datapackage.json").write_bytes(body)
    report = frictionless.validate(str(bad / "datapackage.json"))
    errors = {(task.place, err.field_name if hasattr(err, "field_name") else None, err.type)
              for task in report.tasks for err in task.errors}
    assert (f"devices/devices_{label}.parquet", "stars", "type-error") in errors
    assert (f"zone-hourly/zone-hourly_{label}.geojson", "geometry", "type-error") in errors
    assert (f"zone-hourly/zone-hourly_{label}.geojson", "type", "constraint-error") in errors
    assert not {e for e in errors if e[2] in ("hash-count", "byte-count")}  # content errors, not bytes
