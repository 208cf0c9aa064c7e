"""`civicair` commands of the api package: `civicair zones import FILE`, `civicair bench api`."""

from __future__ import annotations

from pathlib import Path

import typer

zones_app = typer.Typer(help="Administrative zones for the open-data zone series.", no_args_is_help=True)


@zones_app.command("import")
def import_zones(file: Path = typer.Argument(..., help="GeoJSON FeatureCollection of (Multi)Polygons")) -> None:
    """Load zones from a GeoJSON file (idempotent: re-importing updates them) and map devices."""
    from api.zones import load_zone_file, refresh_device_zones, upsert_zones
    from core.cli import console, fail, settings_or_exit
    from core.db import open_database
    from core.errors import CivicairError

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


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    import api.bench  # noqa: F401 - registers `civicair bench api`

    app.add_typer(zones_app, name="zones")
