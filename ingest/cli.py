"""`civicair` commands of the ingest package: `rollup` and `retention`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer


def _parse_since(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 date or time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
    @app.command()
    def rollup(
        rebuild: bool = typer.Option(False, "--rebuild", help="Recompute hourly rows from raw readings."),
        since: str = typer.Option(..., "--since", help="First hour to recompute (ISO-8601, UTC if no offset)."),
        until: str | None = typer.Option(None, "--until", help="End (exclusive); default: latest reading."),
    ) -> None:
        """Recompute the hourly rollup from raw readings (the writer maintains it incrementally)."""
        from civicair.core.console import console, database_or_exit, fail
        from civicair.ingest.rollup import rebuild_hourly

        if not rebuild:
            fail("nothing to do: pass --rebuild")
        start = _parse_since(since)
        end = _parse_since(until) if until else None
        settings, db = database_or_exit()
        try:
            n = rebuild_hourly(db.engine, start, end)
        finally:
            db.close()
        console.print(f"hourly rollup rebuilt since {start.isoformat()}: {n} rows")

    @app.command()
    def retention() -> None:
        """Delete raw readings older than CIVICAIR_RAW_RETENTION_DAYS now (rollups are kept), and
        dead letters / quarantine entries older than CIVICAIR_DEAD_LETTER_RETENTION_DAYS /
        CIVICAIR_QUARANTINE_RETENTION_DAYS."""
        from civicair.core.console import console, database_or_exit
        from civicair.ingest.retention import apply_kept_retention, apply_retention

        settings, db = database_or_exit()
        try:
            r = apply_retention(db.engine, settings.raw_retention_days)
            k = apply_kept_retention(db.engine, settings.dead_letter_retention_days,
                                     settings.quarantine_retention_days)
        finally:
            db.close()
        console.print(f"retention ({r.method}): {r.readings_deleted} readings and "
                      f"{r.uplinks_deleted} uplinks older than {settings.raw_retention_days} days deleted")
        console.print(f"retention: {k.dead_letters_deleted} dead letters older than "
                      f"{settings.dead_letter_retention_days} days and {k.quarantine_deleted} quarantine entries "
                      f"older than {settings.quarantine_retention_days} days deleted")
