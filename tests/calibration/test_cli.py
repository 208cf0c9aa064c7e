"""The calibration commands as a user runs them (real processes, real database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from civicair.bench.calibration_data import make_network
from civicair.calibration.importers import E2_HEADER
from civicair.core import tables
from civicair.core.security import hash_secret

REPO = Path(__file__).resolve().parents[2]
START = datetime(2025, 3, 1, tzinfo=UTC)


def run(args: list[str], db_url: str | None = None, tmp: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    if db_url:
        env["CIVICAIR_DATABASE_URL"] = db_url
    if tmp:
        env["CIVICAIR_DATA_DIR"] = str(tmp / "data")
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def campaign(tmp: Path, days: int = 30, sensor_community: bool = False):
    """A co-location campaign: a sensor every 5 min and an hourly reference (E2 or generic)."""
    net = make_network(1, days * 24, seed=21, outlier_share=0.03)
    rng = np.random.default_rng(1)
    sensor = tmp / ("sc.csv" if sensor_community else "sensor.csv")
    lines = (["sensor_id;sensor_type;location;lat;lon;timestamp;P1;durP1;ratioP1;P2;durP2;ratioP2"]
             if sensor_community else ["when,pm,humidity"])
    rh_lines = ["sensor_id;sensor_type;location;lat;lon;timestamp;temperature;humidity"]
    for j in range(days * 24):
        for k in range(12):
            t = START + timedelta(hours=j, minutes=5 * k)
            v = net.raw[0, j] + rng.normal(0, 0.3)
            if sensor_community:
                ts = t.strftime("%Y-%m-%dT%H:%M:%S")
                lines.append(f"1;SDS011;9;48.58;7.75;{ts};{v * 1.5:.2f};;;{v:.2f};;")
                rh_lines.append(f"2;DHT22;9;48.58;7.75;{ts};10.0;{net.rh[0, j]:.1f}")
            else:
                lines.append(f"{t.isoformat()},{v:.2f},{net.rh[0, j]:.1f}")
    sensor.write_text("\n".join(lines) + "\n")
    files = [sensor]
    if sensor_community:
        (tmp / "rh.csv").write_text("\n".join(rh_lines) + "\n")
        files.append(tmp / "rh.csv")
        ref = tmp / "FR_E2_campaign.csv"
        rows = [";".join(E2_HEADER)]
        for j in range(days * 24):
            t = START + timedelta(hours=j)
            rows.append(f"{t:%Y/%m/%d %H:%M:%S};{t + timedelta(hours=1):%Y/%m/%d %H:%M:%S};ATMO;Z;ZAG;FR01011;Metz;"
                        f"Urbaine;PM2.5;Fond;A;Oui;mesures fixes;TEOM;moyenne horaire validée;{net.ref[0, j]:.1f};"
                        f"{net.ref[0, j]:.2f};µg-m3;;;;A;1")
        ref.write_text("\n".join(rows) + "\n", encoding="latin-1", errors="replace")
    else:
        ref = tmp / "reference.csv"
        ref.write_text("time,value\n" + "\n".join(
            f"{(START + timedelta(hours=j)).isoformat()},{net.ref[0, j]:.2f}" for j in range(days * 24)) + "\n")
    return net, files, ref


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_evaluate_generic_campaign_out_of_sample(tmp_path: Path) -> None:
    net, files, ref = campaign(tmp_path)
    out = tmp_path / "report"
    p = run(["calibration", "evaluate", "--sensor", str(files[0]), "--reference", str(ref), "--json",
             "--out", str(out), "--time-col", "when", "--value-col", "pm", "--rh-col", "humidity",
             "--sensor-model", "SDS011"], tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    r = last_json(p.stdout)
    assert set(r) >= {"model", "metrics", "uncertainty_pct", "class", "flags", "verdict", "window", "cv", "reasons"}
    assert r["state"] == "colocated" and r["sensor_model"] == "SDS011" and r["unit"] == "µg/m³"
    assert r["model"]["method"] in ("ols", "huber", "ols_rh", "huber_rh", "kohler")
    w = r["window"]
    assert w["test_pairs"] == round((w["train_pairs"] + w["test_pairs"]) / 3)
    assert w["split"] > w["start"] and w["test_pairs"] == 30 * 24 - w["train_pairs"]
    # gross-error hours are flagged as spikes and left out of the judging, and said so
    assert w["fault_hours_excluded"]["test"] > 0 and any(f["flag"] == "spike" for f in r["flags"])
    assert w["test_hours_judged"] == w["test_pairs"] - w["fault_hours_excluded"]["test"]
    cal, raw = r["metrics"]["calibrated"], r["metrics"]["raw"]
    assert cal["n"] == w["test_hours_judged"] and cal["rmse"] < raw["rmse"] / 3
    print(r["verdict"], cal)
    # the prediction direction trades slope for error: the calibrated values shrink a little towards the mean
    assert 0.75 < cal["slope"] <= 1.05 and cal["r2"] > 0.7 and r["class"] in (1, 2)
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and "1:1" in html and r["model"]["method"] in html and "SDS011" in html
    assert json.loads((out / "report.json").read_text())["model"] == r["model"]


def test_evaluate_sensor_community_with_e2_reference_auto_detected(tmp_path: Path) -> None:
    net, files, ref = campaign(tmp_path, days=20, sensor_community=True)
    args = ["calibration", "evaluate", "--reference", str(ref), "--json", "--test-fraction", "0.25"]
    for f in files:
        args += ["--sensor", str(f)]
    p = run(args, tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    r = last_json(p.stdout)
    assert r["sources"]["reference_series"] == "e2:FR01011" and r["station"]["code"] == "FR01011"
    assert r["model"]["rh_used"]  # RH from the DHT22 file was joined and helps
    assert r["metrics"]["calibrated"]["rmse"] < r["metrics"]["raw"]["rmse"] / 2.5


def test_evaluate_errors_are_one_clear_line(tmp_path: Path) -> None:
    _, files, ref = campaign(tmp_path, days=3)
    p = run(["calibration", "evaluate", "--sensor", str(files[0]), "--reference", str(ref),
             "--time-col", "when", "--value-col", "pm"], tmp=tmp_path)
    assert p.returncode == 1 and "paired hours" in p.stderr and "Traceback" not in p.stderr
    p = run(["calibration", "evaluate", "--sensor", str(files[0]), "--reference", str(ref)], tmp=tmp_path)
    assert p.returncode == 1 and "no time column 'time'" in p.stderr


@pytest.mark.db
def test_reference_import_stations_calibrate_and_partner_key(db, tmp_path: Path, shared_data: Path) -> None:
    bad = tmp_path / "FR_E2_bad.csv"
    text = (shared_data / "FR_E2_2025-01-01_excerpt.csv").read_text().splitlines()
    text.insert(3, "2025/01/01 xx;broken")
    bad.write_text("\n".join(text) + "\n")
    p = run(["reference", "import", str(shared_data / "FR_E2_2025-01-01_excerpt.csv"), str(bad)], db.url, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "96 new or changed" in p.stderr and "line 4:" in p.stderr and "1 bad rows" in p.stderr
    p = run(["reference", "import", "--format", "eea", str(shared_data / "FR_E2_2025-01-01_excerpt.csv")], db.url,
            tmp_path)
    assert p.returncode == 1 and "not an EEA" in p.stderr
    stations = tmp_path / "stations.geojson"
    stations.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "FR01011", "name": "Metz-Centre", "type": "urban"},
         "geometry": {"type": "Point", "coordinates": [6.1808, 49.1196]}}]}))
    p = run(["reference", "stations", str(stations)], db.url, tmp_path)
    assert p.returncode == 0 and "1 stations" in p.stderr, p.stderr
    p = run(["calibrate", "--since", "2025-01-01", "--json"], db.url, tmp_path)
    assert p.returncode == 0, p.stderr
    assert last_json(p.stdout)["devices"] == 0
    p = run(["calibrate", "--device", "nope"], db.url, tmp_path)
    assert p.returncode == 1 and "no fixed device" in p.stderr
    p = run(["partner", "key", "create", "--name", "ATMO Grand Est", "--scope", "calibration"], db.url, tmp_path)
    assert p.returncode == 0, p.stderr
    key = p.stdout.strip().splitlines()[-1]
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(tables.partner_api_keys)).one()
        st = conn.execute(sa.select(tables.reference_stations.c.lat).where(
            tables.reference_stations.c.code == "FR01011")).scalar()
    assert row.key_hash == hash_secret(key) and key not in row.key_hash and row.scopes == ["calibration"]
    assert st == pytest.approx(49.1196)


def test_bench_calibration_json_last_line(tmp_path: Path) -> None:
    p = run(["bench", "calibration", "--devices", "40", "--days", "10", "--repeat", "1", "--json"], tmp=tmp_path)
    assert p.returncode == 0, p.stderr
    r = last_json(p.stdout)
    assert r["devices"] == 40 and r["hours"] == 240 and r["seconds"] > 0 and r["plain_ols_seconds"] > 0
    assert r["ratio_to_plain_ols"] == pytest.approx(r["seconds"] / r["plain_ols_seconds"], rel=0.1)
    assert r["humid_hours_flagged"] > 0 and sum(r["methods"].values()) == 40
