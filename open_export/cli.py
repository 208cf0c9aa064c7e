"""`civicair` commands of the open_export package: `civicair export`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.command("export")(export)


def export(
    dataset: list[str] = typer.Option([], "--dataset", metavar="ID", help="Dataset id (repeatable). Default: all configured."),
    period: str = typer.Option("day", "--period", help="day or month."),
    on: str | None = typer.Option(None, "--date", help="YYYY-MM-DD (or YYYY-MM for a month); default yesterday / last month."),
    out: Path | None = typer.Option(None, "--out", help="Output folder. Default: CIVICAIR_EXPORT_DIR or DATA_DIR/exports."),
) -> None:
    """Write CSV + Parquet files, datapackage.json and SHA256SUMS for one day or month (idempotent)."""
    from civicair.core.console import console, fail, settings_or_exit
    from civicair.core.db import open_database
    from civicair.core.errors import CivicairError, InvalidParameter
    from civicair.open_export.service import available_datasets, run_export
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    settings = settings_or_exit()
    if period not in ("day", "month"):
        fail(InvalidParameter("--period", f"must be day or month, got {period!r}"))
    kind: Literal["day", "month"] = "day" if period == "day" else "month"
    try:
        day = date.fromisoformat(on + "-01" if on and kind == "month" and len(on) == 7 else on) if on else None
    except ValueError:
        fail(InvalidParameter("--date", f"not a YYYY-MM-DD date (or YYYY-MM with --period month): {on!r}"))
    try:
        db = open_database(settings)
    except CivicairError as exc:
        fail(exc)
    try:
        steps = len(dataset) if dataset else len(available_datasets(settings)) or 1
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("export", total=steps + 1)

            def on_step(label: str) -> None:
                progress.update(task, description=label, advance=1)

            report = run_export(settings, db.read_engine, dataset_ids=dataset, kind=kind, day=day,
                                out=out, on_step=on_step)
    except CivicairError as exc:
        fail(exc)
    finally:
        db.close()
    for path in report.written:
        console.print(f"wrote {path}")
    console.print(f"{len(report.written)} file(s) written, {len(report.unchanged)} unchanged in {report.out}")
    for ds, reason in report.skipped.items():
        console.print(f"skipped {ds}: {reason}")
