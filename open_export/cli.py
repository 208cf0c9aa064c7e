"""`civicair` commands of the open_export package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands and command groups to the root CLI."""
