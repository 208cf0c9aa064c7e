"""The scratch database of a benchmark: created next to `CIVICAIR_DATABASE_URL` and dropped
afterwards, else an embedded PostgreSQL in a temporary folder, stopped afterwards."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from civicair.core.settings import Settings


@contextmanager
def scratch_database(settings: Settings, bench: str) -> Iterator[tuple[str, str]]:
    """(URL, where it is) of an empty database for the benchmark `bench`."""
    import sqlalchemy as sa
    from civicair.core.db import create_engine, start_embedded_postgres

    with tempfile.TemporaryDirectory(prefix=f"civicair-bench-{bench}-") as tmp:
        if settings.database_url is None:
            url, server = start_embedded_postgres(Path(tmp))
            try:
                yield url, "embedded PostgreSQL"
            finally:
                server.cleanup()
            return
        name = f"civicair_bench_{bench}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        server_url = settings.database_url.get_secret_value()
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'create database "{name}"'))
            try:
                yield (sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False),
                       "scratch database next to CIVICAIR_DATABASE_URL")
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        finally:
            admin.dispose()
