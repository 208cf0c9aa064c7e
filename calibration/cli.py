"""`civicair` commands of the calibration package: reference imports, calibration runs,
offline campaign evaluation and partner API keys (`civicair bench calibration` is in bench/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from civicair.core.errors import CivicairError, InvalidInput

reference_app = typer.Typer(help="Reference stations and their measurements (E2, EEA).", no_args_is_help=True)
calibration_app = typer.Typer(help="Calibration tools for co-location campaigns.", no_args_is_help=True)
partner_app = typer.Typer(help="Partner (air-quality agency) access.", no_args_is_help=True)
partner_key_app = typer.Typer(help="Partner API keys.", no_args_is_help=True)


def _open():
    from civicair.core.console import database_or_exit

    return database_or_exit()


@reference_app.command("import")
def reference_import(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="E2 or EEA CSV files"),
    format: str = typer.Option("auto", "--format", help="e2 | eea | auto"),
) -> None:
    """Import reference measurements (idempotent; bad rows reported with their line number)."""
    from civicair.calibration.service import import_reference_file
    from civicair.core.console import console, fail
    from rich.progress import Progress

    if format not in ("e2", "eea", "auto"):
        fail(f"--format must be e2, eea or auto, not {format!r}")
    settings, db = _open()
    failed = 0
    try:
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task("importing", total=len(files))
            for path in files:
                progress.update(task, description=f"importing {path.name}")
                try:
                    rep = import_reference_file(db, path, format)
                except CivicairError as exc:
                    console.print(f"[red]{path}: {exc.detail}[/]", highlight=False)
                    failed += 1
                    progress.advance(task)
                    continue
                s = rep.parse.summary()
                console.print(f"{path.name}: {s['format']} ({s['encoding']}), {s['rows']} valid rows, "
                              f"{rep.written} new or changed, {s['bad_rows']} bad rows, ignored {s['ignored']}",
                              highlight=False)
                for line, reason in rep.parse.bad_rows[:20]:
                    console.print(f"  line {line}: {reason}", highlight=False)
                if len(rep.parse.bad_rows) > 20:
                    console.print(f"  … and {len(rep.parse.bad_rows) - 20} more bad rows", highlight=False)
                progress.advance(task)
    finally:
        db.close()
    if failed:
        fail(f"{failed} of {len(files)} file(s) could not be imported")


@reference_app.command("stations")
def reference_stations(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Import station metadata (CSV: code, name, lat, lon, type; or GeoJSON points)."""
    from civicair.calibration.service import import_station_file
    from civicair.core.console import console, fail

    settings, db = _open()
    try:
        rep = import_station_file(db, file)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    s = rep.parse.summary()
    console.print(f"{file.name}: {s['rows']} stations, {rep.written} new or changed, {s['bad_rows']} bad rows",
                  highlight=False)
    for line, reason in rep.parse.bad_rows[:20]:
        console.print(f"  line {line}: {reason}", highlight=False)


def _parse_date(value: str | None, name: str) -> datetime | None:
    from civicair.core.console import fail

    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{name}: not an ISO date/time: {value!r}")
        raise
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def calibrate(
    since: str | None = typer.Option(None, "--since", help="Window start (ISO date); default: the rolling window"),
    device: str | None = typer.Option(None, "--device", help="Only this device uid"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Refit models, flag, rate and write calibrated hourly means now (the scheduled job's run)."""
    from civicair.calibration.service import run_calibration
    from civicair.core.console import console, fail

    start = _parse_date(since, "--since")
    settings, db = _open()
    try:
        with db.engine.begin() as conn:
            summary = run_calibration(conn, settings, since=start, device_uid=device)
    except CivicairError as exc:
        fail(exc)
        raise
    finally:
        db.close()
    d = summary.as_dict()
    if as_json:
        print(json.dumps(d))
    else:
        console.print(f"window {d['window_start']} → {d['window_end']}: {d['devices']} devices, "
                      f"{d['colocated']} co-located, {d['fitted']} calibrated against their station, "
                      f"{d['network_models']} by a network model, {d['epa_fallback']} by the US-EPA correction, "
                      f"{d['not_calibrated']} not calibrated (device × quantity); {d['flags']} flags, "
                      f"{d['hourly_written']} hourly rows changed; status {d['statuses']}", highlight=False)


@calibration_app.command("evaluate")
def evaluate(
    sensor: list[Path] = typer.Option(..., "--sensor", exists=True, dir_okay=False,
                                      help="Sensor CSV (generic or sensor.community); repeat for a T/RH file"),
    reference: Path = typer.Option(..., "--reference", exists=True, dir_okay=False,
                                   help="Reference CSV: E2, EEA, AirNow-Tech (auto-detected) or generic"),
    out: Path | None = typer.Option(None, "--out", help="Write report.json and report.html here"),
    test_fraction: float = typer.Option(1 / 3, "--test-fraction", help="Later share of the paired hours judged"),
    as_json: bool = typer.Option(False, "--json", help="Last line: one JSON object"),
    time_col: str = typer.Option("time", "--time-col"),
    value_col: str = typer.Option("value", "--value-col"),
    rh_col: str = typer.Option("rh", "--rh-col"),
    time_format: str = typer.Option("", "--time-format", help="strptime format of the sensor times; empty: ISO 8601"),
    utc_offset: str = typer.Option("", "--utc-offset", help="Offset of sensor times without one, e.g. -05:00"),
    unit: str = typer.Option("µg/m³", "--unit", help="Unit of the sensor values: µg/m³, or ppb for NO2/O3"),
    sensor_model: str = typer.Option("", "--sensor-model", help="e.g. SDS011, PMS5003 (the report names it)"),
    quantity: str = typer.Option("pm25", "--quantity"),
    station: str | None = typer.Option(None, "--station", help="Station code in a multi-station reference file"),
    min_pairs: int | None = typer.Option(None, "--min-pairs", help="Default: CIVICAIR_CALIBRATION_MIN_PAIRS"),
) -> None:
    """Offline co-location campaign: the calibration pipeline on the earlier part, judged on the later."""
    from civicair.calibration.campaign import evaluate_campaign
    from civicair.calibration.campaign_files import (
        SensorFormat,
        merge_samples,
        read_reference,
        read_samples,
    )
    from civicair.calibration.report import render_html
    from civicair.calibration.service import rules_from
    from civicair.core.console import console, fail, settings_or_exit
    from civicair.core.domain import QUANTITY_BY_NAME

    settings = settings_or_exit()
    if quantity not in QUANTITY_BY_NAME:
        fail(f"--quantity: unknown quantity {quantity!r}")
    if min_pairs is not None:
        settings = settings.model_copy(update={"calibration_min_pairs": min_pairs})
    fmt = SensorFormat(time_col=time_col, value_col=value_col, rh_col=rh_col, time_format=time_format,
                       utc_offset=utc_offset, unit=unit)
    try:
        samples = merge_samples([read_samples(p.read_bytes(), quantity=quantity, fmt=fmt) for p in sensor])
        ref = read_reference(reference.read_bytes(), quantity=quantity, station=station, time_col=time_col,
                             value_col=value_col)
        report = evaluate_campaign(samples, ref, quantity=quantity, test_fraction=test_fraction,
                                   min_coverage=settings.coverage_min, rules=rules_from(settings),
                                   sensor_model=sensor_model, sensor_name=sensor[0].name)
    except (CivicairError, OSError) as exc:
        fail(exc if isinstance(exc, CivicairError) else InvalidInput(str(exc)))
        raise
    report["sources"] = {"sensor": [str(p) for p in sensor], "reference": str(reference), "reference_series": ref.name,
                         "sensor_bad_rows": len(samples.bad_rows)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        (out / "report.html").write_text(render_html(report))
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(report["verdict"], highlight=False)
    m = report["metrics"]
    for name in ("raw", "calibrated"):
        mm = m.get(name)
        if mm:
            console.print(f"test {name}: RMSE {mm['rmse']}, R² {mm['r2']}, slope {mm['slope']}, "
                          f"intercept {mm['intercept']}, n {mm['n']}", highlight=False)
    console.print(f"{len(report['flags'])} flag(s)" + (f"; report in {out}" if out else ""), highlight=False)
    if as_json:
        print(json.dumps({k: v for k, v in report.items() if k != "series"}))


@partner_key_app.command("create")
def partner_key_create(
    name: str = typer.Option(..., "--name"),
    scope: list[str] = typer.Option(["calibration"], "--scope", help="Repeatable, e.g. calibration"),
) -> None:
    """Create a partner API key; it is printed once and only its hash is stored."""
    from civicair.calibration.repository import create_partner_key
    from civicair.core.console import console
    from civicair.core.security import hash_secret, new_api_key

    settings, db = _open()
    key = new_api_key()
    try:
        with db.engine.begin() as conn:
            key_id = create_partner_key(conn, name, hash_secret(key), sorted(set(scope)))
    finally:
        db.close()
    console.print(f"partner key {key_id} for {name!r} with scopes {sorted(set(scope))} (shown once):", highlight=False)
    print(key)


@partner_key_app.command("revoke")
def partner_key_revoke(
    key_id: int | None = typer.Argument(None, help="The key's id (see `partner key list`)."),
    name: str | None = typer.Option(None, "--name", help="Revoke every key of this name instead."),
) -> None:
    """Revoke a partner API key: it is refused from the next request on."""
    from civicair.calibration.repository import revoke_partner_keys
    from civicair.core.console import console, fail

    if (key_id is None) == (name is None):
        fail("give a key id or --name (one of them)")
    settings, db = _open()
    try:
        with db.engine.begin() as conn:
            revoked = revoke_partner_keys(conn, key_id=key_id, name=name)
    finally:
        db.close()
    if not revoked:
        fail(f"no unrevoked partner key {'named ' + repr(name) if name else key_id}")
    console.print(f"revoked partner key(s) {', '.join(map(str, revoked))}", highlight=False)


@partner_key_app.command("list")
def partner_key_list() -> None:
    """Partner API keys (never the keys themselves: only their hashes are stored)."""
    from civicair.calibration.repository import partner_keys

    settings, db = _open()
    try:
        with db.engine.connect() as conn:
            rows = partner_keys(conn)
    finally:
        db.close()
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        used = f", last used {r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else ""
        print(f"{r.id}\t{r.name}\t{','.join(r.scopes)}\t{state}{used}")


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.add_typer(reference_app, name="reference")
    app.add_typer(calibration_app, name="calibration")
    app.command("calibrate")(calibrate)
    partner_app.add_typer(partner_key_app, name="key")
    app.add_typer(partner_app, name="partner")


