"""Row providers: one function per dataset, `rows(conn, settings, start, end) -> iterable of dicts`
keyed by the dataset's column names.

Datasets built from volunteers' readings (zones, devices, mobile cells) are served by the public
API's privacy-reviewed query code (api/queries.py: k-anonymity suppression, mobile privacy
filters, consent, exclusion of unreliable devices); this module only adapts their results to
the export columns and never re-implements those rules. A dataset whose query is not available
has no provider: it is skipped by the export and left out of the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from core.settings import Settings
from open_export import repository

Provider = Callable[[Connection, Settings, datetime, datetime], Iterable[Mapping[str, Any]]]


def reference_stations(conn: Connection, settings: Settings, start: datetime, end: datetime) -> Iterable[dict]:
    return repository.reference_hourly(conn, start, end)


def default_providers() -> dict[str, Provider]:
    """Providers available in this build, by dataset id."""
    found: dict[str, Provider] = {"reference-stations": reference_stations}
    found.update(_api_providers())
    return found


def _api_providers() -> dict[str, Provider]:
    return {}
