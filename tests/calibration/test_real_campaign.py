"""The real co-location campaign of ../shared/data (US-EPA sensortoolkit example: a low-cost
multi-pollutant sensor beside the Burdens Creek reference monitors, August 2019), through the
product's evaluate path (`civicair calibration evaluate` in a real process), against the bar the
issue sets: a plain OLS `ref ~ sensor + RH` fitted here, on the same split (first 2/3 of the
paired hours fit, last 1/3 test, hourly means with ≥ 75 % of the minutes)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.calibration.test_cli import last_json, run

SENSOR_FILE = "toco_toucan_RT02_raw.csv"
REFERENCE_FILE = "airnowtech_example_reference_data.csv"
COLUMNS = {"pm25": ("PM2.5 (µg/m³)", "µg/m³", "PM2.5-88101", 1.0), "no2": ("NO2 (ppb)", "ppb", "NO2", 1.88),
           "o3": ("O3 (ppb)", "ppb", "O3", 1.96)}


def evaluate(data: Path, tmp: Path, quantity: str, sensor: Path | None = None, *extra: str) -> dict:
    col, unit, _, _ = COLUMNS[quantity]
    out = tmp / f"report-{quantity}"
    p = run(["calibration", "evaluate", "--sensor", str(sensor or data / SENSOR_FILE),
             "--reference", str(data / REFERENCE_FILE), "--quantity", quantity, "--time-col", "Time",
             "--value-col", col, "--rh-col", "RH (%)", "--time-format", "%m/%d/%Y %H:%M", "--utc-offset", "-05:00",
             "--unit", unit, "--test-fraction", str(1 / 3), "--json", "--out", str(out), *extra], tmp=tmp)
    assert p.returncode == 0, p.stderr
    report = last_json(p.stdout)
    assert (out / "report.html").exists() and json.loads((out / "report.json").read_text())["verdict"]
    report["_stderr"] = p.stderr
    return report


def hourly_pairs(data: Path, quantity: str):
    """The test's own reading of the campaign (no product code): hourly means of the minutes with
    ≥ 45 of 60 present, UTC−05:00 → UTC, paired with the reference hours of QC code 0."""
    col, _, param, factor = COLUMNS[quantity]
    lines = (data / SENSOR_FILE).read_text(encoding="utf-8-sig").splitlines()[6:]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    sums: dict[datetime, list[float]] = {}
    rhs: dict[datetime, list[float]] = {}
    for r in rows:
        t = datetime.strptime(r["Time"], "%m/%d/%Y %H:%M") + timedelta(hours=5)
        hour = t.replace(minute=0)
        if r[col]:
            sums.setdefault(hour, []).append(float(r[col]) * factor)
        if r["RH (%)"]:
            rhs.setdefault(hour, []).append(float(r["RH (%)"]))
    ref: dict[datetime, float] = {}
    for r in csv.DictReader(io.StringIO((data / REFERENCE_FILE).read_text())):
        if r["Param"] == param and r["QC Code"] == "0":
            ref[datetime.strptime(f"{r['Date (UTC)']} {r['Time (UTC)']}", "%m/%d/%Y %H:%M")] = float(r["Value"]) * factor
    hours = sorted(h for h, v in sums.items() if len(v) >= 45 and h in ref)
    raw = np.array([np.mean(sums[h]) for h in hours])
    rh = np.array([np.mean(rhs[h]) if len(rhs.get(h, [])) >= 45 else np.nan for h in hours])
    return hours, raw, np.array([ref[h] for h in hours]), rh


def test_pm25_calibration_beats_raw_and_matches_plain_ols_out_of_sample(shared_data: Path, tmp_path: Path) -> None:
    rep = evaluate(shared_data, tmp_path, "pm25")
    hours, raw, ref, rh = hourly_pairs(shared_data, "pm25")
    n_train = len(hours) - round(len(hours) / 3)
    w = rep["window"]
    assert (w["paired_hours"], w["train_pairs"]) == (len(hours), n_train)
    assert w["split"].startswith(hours[n_train].isoformat()[:13])  # the same split as the test's
    tr, te = slice(0, n_train), slice(n_train, None)
    ok = np.isfinite(rh[tr])
    X = np.c_[np.ones(ok.sum()), raw[tr][ok], rh[tr][ok]]
    beta = np.linalg.lstsq(X, ref[tr][ok], rcond=None)[0]
    rh_te = np.where(np.isfinite(rh[te]), rh[te], np.nanmean(rh[tr]))
    ols = float(np.sqrt(np.mean((beta[0] + beta[1] * raw[te] + beta[2] * rh_te - ref[te]) ** 2)))
    raw_rmse = float(np.sqrt(np.mean((raw[te] - ref[te]) ** 2)))
    published = rep["metrics"]["calibrated"]["rmse"]
    print(f"\nPM2.5 test RMSE: raw {raw_rmse:.3f}, OLS ref ~ sensor + RH {ols:.3f}, published ({rep['model']['method']}) "
          f"{published:.3f} → {published / raw_rmse:.3f} × raw, {published / ols:.3f} × OLS; "
          f"U {rep['uncertainty_pct']:.1f} %, class {rep['class']}; status {rep['status']}")
    assert rep["metrics"]["raw"]["rmse"] == pytest.approx(raw_rmse, rel=1e-6)  # judged on the same hours
    assert w["test_hours_judged"] == len(hours) - n_train  # no fault hours here
    assert published <= 0.6 * raw_rmse
    assert published <= 1.05 * ols
    assert rep["state"] == "colocated" and rep["class"] in (1, 2, 3)
    # the humid hours are flagged: every test-hour with RH > 85 % lies in a high_humidity run
    humid = [(f["start"], f["end"]) for f in rep["flags"] if f["flag"] == "high_humidity"]
    wet = [h for h, x in zip(hours, rh, strict=True) if x > 85]
    assert len(wet) > 100
    for h in wet:
        stamp = h.isoformat() + "Z"
        assert any(a <= stamp < b for a, b in humid), stamp
    html = (tmp_path / "report-pm25" / "report.html").read_text()
    for text in ("Particulate matter &lt; 2.5 µm", "µg/m³", "370630099", "Burdens Creek", "class", "%"):
        assert text in html, text


def test_no2_of_this_sensor_is_never_rated_class_1_or_2(shared_data: Path, tmp_path: Path) -> None:
    rep = evaluate(shared_data, tmp_path, "no2")
    print(f"\nNO2: {rep['state']}, class {rep['class']}, reasons {[r['code'] for r in rep['reasons']]}")
    assert rep["class"] not in (1, 2)
    assert rep["state"] == "unreliable" and rep["model"] is None
    assert {"no_signal", "no_skill"} & {r["code"] for r in rep["reasons"]}
    assert any("fall as the reference rises" in w for w in rep["warnings"])  # the negative slope, said
    assert "warning" in rep["_stderr"]


def test_o3_of_the_same_sensor_is_calibrated(shared_data: Path, tmp_path: Path) -> None:
    rep = evaluate(shared_data, tmp_path, "o3")
    print(f"\nO3: {rep['model']['method']}, test RMSE {rep['metrics']['calibrated']['rmse']:.2f} "
          f"(raw {rep['metrics']['raw']['rmse']:.2f}), class {rep['class']}")
    assert rep["metrics"]["calibrated"]["rmse"] < 0.5 * rep["metrics"]["raw"]["rmse"]


def _rewrite(data: Path, tmp: Path, name: str, change) -> Path:
    """The campaign's sensor file with one column changed (preamble and header kept)."""
    text = (data / SENSOR_FILE).read_text(encoding="utf-8-sig").splitlines()
    head, body = text[:7], list(csv.reader(text[7:]))
    for i, row in enumerate(body):
        change(i, row)
    out = tmp / name
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(body)
    out.write_text("\n".join(head) + "\n" + buf.getvalue(), encoding="utf-8")
    return out


def test_evaluate_warns_on_a_stuck_rh_channel_and_drops_it(shared_data: Path, tmp_path: Path) -> None:
    def stuck(i: int, row: list[str]) -> None:
        row[5] = "99.9"

    rep = evaluate(shared_data, tmp_path, "pm25", _rewrite(shared_data, tmp_path, "stuck_rh.csv", stuck))
    assert not rep["model"]["rh_used"] and rep["model"]["method"] in ("ols", "huber", "identity")
    assert any("RH not used" in w and "stuck" in w for w in rep["warnings"])
    assert any(f["flag"] == "stuck" and f["quantity"] == "humidity" for f in rep["flags"])


def test_fault_hours_are_counted_where_they_are_excluded(shared_data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    spiky = set(rng.choice(np.arange(30_000, 42_000, 60), 6, replace=False).tolist())

    def spike(i: int, row: list[str]) -> None:  # six test hours with a gross error on every minute
        if any(s <= i < s + 60 for s in spiky):
            row[3] = "400"

    rep = evaluate(shared_data, tmp_path, "pm25", _rewrite(shared_data, tmp_path, "spikes.csv", spike))
    w = rep["window"]
    assert w["fault_hours_excluded"]["test"] >= 5
    assert w["test_hours_judged"] == w["test_pairs"] - w["fault_hours_excluded"]["test"]
    assert rep["metrics"]["calibrated"]["n"] == w["test_hours_judged"]


def test_evaluate_names_both_periods_when_they_do_not_overlap(shared_data: Path, tmp_path: Path) -> None:
    def next_year(i: int, row: list[str]) -> None:
        row[0] = row[0].replace("/2019 ", "/2020 ")

    sensor = _rewrite(shared_data, tmp_path, "later.csv", next_year)
    col, unit, _, _ = COLUMNS["pm25"]
    p = run(["calibration", "evaluate", "--sensor", str(sensor), "--reference", str(shared_data / REFERENCE_FILE),
             "--time-col", "Time", "--value-col", col, "--rh-col", "RH (%)", "--time-format", "%m/%d/%Y %H:%M",
             "--utc-offset", "-05:00"], tmp=tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "do not overlap" in p.stderr and "2020-08-01" in p.stderr and "2019-08-01" in p.stderr
