"""The `civicair` command line: the root group, the process commands (`up`, `gateway`, `api`,
`migrate`) and every package's commands, registered downward through each package's
`cli.register(app)`. Package CLIs import their console helpers from `civicair.core.console`.

Light commands stay light: modules are imported when a command runs, so `civicair --help`
imports neither the API app nor matplotlib (BENCHMARKS.md, "CLI start-up").
"""

from __future__ import annotations

import typer

from civicair.bench.cli import bench_app
from civicair.calibration import cli as calibration_cli
from civicair.core.console import database_or_exit, fail, settings_or_exit, setup_logging
from civicair.core.errors import CivicairError
from civicair.firmware_tools import cli as firmware_tools_cli
from civicair.gateway import cli as gateway_cli
from civicair.ingest import cli as ingest_cli
from civicair.open_export import cli as open_export_cli
from civicair.readmodel import cli as readmodel_cli
from civicair.sta import cli as sta_cli

app = typer.Typer(
    name="civicair",
    help="Citizen air-quality sensors in, trustworthy open data out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def migrate() -> None:
    """Apply the database migrations (idempotent)."""
    from civicair.core.console import console
    from civicair.core.migrate import current_revision, upgrade

    _, db = database_or_exit()
    try:
        before = current_revision(db.engine)
        upgrade(db.engine)
        after = current_revision(db.engine)
        console.print(f"database: {db.description}")
        console.print(f"schema at revision {after}" + ("" if before != after else " (already up to date)"))
    finally:
        db.close()


def _run(components: set[str], demo: bool = False) -> None:
    from civicair.runtime import run_service

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    try:
        run_service(settings, demo=demo, components=components)
    except CivicairError as exc:
        fail(exc)


@app.command()
def up(
    demo: bool = typer.Option(False, "--demo", help="Add simulated sensors and reference stations."),
) -> None:
    """Run everything in one process: migrations, broker (if embedded), gateway, writer,
    scheduler and API. Ctrl-C stops cleanly."""
    _run({"gateway", "api", "scheduler"}, demo=demo)


@app.command()
def gateway() -> None:
    """Run only the gateway (MQTT listener + ingest writer); several may share a subscription."""
    _run({"gateway"})


@app.command()
def api(
    scheduler: bool = typer.Option(False, "--scheduler", help="Also run the scheduled jobs."),
) -> None:
    """Run only the HTTP API (optionally with the scheduled jobs)."""
    _run({"api", "scheduler"} if scheduler else {"api"})


for package_cli in (gateway_cli, ingest_cli, calibration_cli, readmodel_cli, open_export_cli,
                    firmware_tools_cli, sta_cli):
    package_cli.register(app)
app.add_typer(bench_app, name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
