"""Migrations on an empty database: head reached, idempotent, schema matches core.tables."""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from civicair.core.db import create_engine
from civicair.core.migrate import current_revision, head_revision, upgrade
from civicair.core.tables import metadata


def test_migrations_on_empty_database_are_idempotent_and_match_tables(pg_server_url: str) -> None:
    name = f"civicair_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        upgrade(engine)  # second run changes nothing
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            names = {r[0] for r in conn.execute(sa.text("select name from quantities"))}
            timescale = bool(conn.execute(sa.text("select 1 from pg_extension where extname = 'timescaledb'")).scalar())
        # The one index the table definitions do not declare: BRIN on plain PostgreSQL, the
        # hypertable's own time index on TimescaleDB.
        extra = "readings_time_idx" if timescale else "readings_time_brin"
        diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name == extra)]
        assert diff == [], f"migrations and core/tables.py disagree: {diff}"
        assert {"pm25", "pm10", "temperature", "humidity", "pressure"} <= names
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
