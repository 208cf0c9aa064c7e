"""`civicair zones import FILE`, `civicair zones refresh` and `civicair mobile refresh`:
administrative zones, the materialised zone series and the mobile rollup."""

from __future__ import annotations

from pathlib import Path

import typer

zones_app = typer.Typer(help="Administrative zones for the open-data zone series.", no_args_is_help=True)


@zones_app.command("import")
def import_zones(file: Path = typer.Argument(..., help="GeoJSON FeatureCollection of (Multi)Polygons")) -> None:
    """Load zones from a GeoJSON file (idempotent: re-importing updates them) and map devices."""
    from civicair.core.console import console, fail, settings_or_exit
    from civicair.core.db import open_database
    from civicair.core.errors import CivicairError
    from civicair.readmodel.zones import load_zone_file, refresh_device_zones, upsert_zones

    settings = settings_or_exit()
    try:
        rows = load_zone_file(file)
        db = open_database(settings)
    except CivicairError as exc:
        fail(exc)
        return
    try:
        with db.engine.begin() as conn:
            n = upsert_zones(conn, rows)
            mapped = refresh_device_zones(conn)
    finally:
        db.close()
    console.print(f"imported {n} zones from {file}; {mapped} device-zone memberships")


@zones_app.command("refresh")
def refresh_zones(rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild every zone from scratch.")) -> None:
    """Bring the materialised zone series up to date (the api worker does it on a schedule)."""
    from civicair.core.console import console, database_or_exit
    from civicair.readmodel.zone_rollup import refresh

    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:
            r = refresh(conn, settings, rebuild=rebuild)
    finally:
        db.close()
    console.print(f"zone series up to {r.watermark.isoformat()}: {r.rebuilt} zones built, {r.updated} updated, "
                  f"{r.dropped} dropped, {r.rows:,} rows, {r.invalidations:,} logged writes, {r.seconds:.1f} s")


mobile_app = typer.Typer(help="Mobile (bike) data: the rollup behind the public cell-hours.", no_args_is_help=True)


@mobile_app.command("refresh")
def refresh_mobile(rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild every trip from scratch.")) -> None:
    """Take in the trips closed since the last run (the scheduler does it every few minutes)."""
    from civicair.core.console import console, database_or_exit
    from civicair.readmodel.mobile_rollup import refresh

    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:
            r = refresh(conn, settings, rebuild=rebuild)
    finally:
        db.close()
    console.print(f"mobile rollup{' rebuilt' if r.rebuilt else ''}: {r.trips:,} closed trips of {r.devices} "
                  f"devices ({r.open_trips} still open), {r.rows:,} rows, {r.seconds:.1f} s")


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    app.add_typer(zones_app, name="zones")
    app.add_typer(mobile_app, name="mobile")
