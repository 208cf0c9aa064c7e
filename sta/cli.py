"""`civicair sta ids`: number the public things and sensor models for the SensorThings API now
(the `readmodel.sta_ids` job does it every minute; docs/sensorthings.md#identifiers)."""

from __future__ import annotations

import typer

sta_app = typer.Typer(help="The SensorThings API (/sta/v1.1).", no_args_is_help=True)


@sta_app.command("ids")
def assign_ids() -> None:
    """Give an @iot.id to every public thing and sensor model that has none (idempotent)."""
    from civicair.core.console import console, database_or_exit
    from civicair.readmodel.registry import ids
    from civicair.readmodel.things import sync_registry

    settings, db = database_or_exit()
    try:
        with db.engine.begin() as conn:
            added = sync_registry(conn, settings)
            total = len(ids(conn))
    finally:
        db.close()
    console.print(f"SensorThings ids: {added} new, {total} in all")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root CLI."""
    app.add_typer(sta_app, name="sta")
