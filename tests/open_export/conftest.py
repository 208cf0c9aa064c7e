"""A running civicair for the portal tests: its own database with the export fixture on recent
days, the files exported as the scheduled job writes them, and `civicair api` serving them in a
real process on a free port, with no CIVICAIR_PUBLIC_BASE_URL (every URL derived from that port).
Read-only: the catalogue, file, SHACL and harvester tests share it for the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from civicair.core.broker import free_port
from civicair.core.db import create_engine
from civicair.core.migrate import upgrade
from civicair.core.settings import Settings

from tests.conftest import REPO, wait_until
from tests.open_export.fixture import Fixture, seed_and_export_recent
from tests.seed import SECRET


@dataclass(frozen=True)
class Portal:
    base: str  # where `civicair api` listens
    settings: Settings  # the settings it runs with (as the export used them)
    export_dir: Path
    today: date
    database_url: str
    fixture: Fixture


@pytest.fixture(scope="session")
def portal(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    name = f"civicair_portal_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    data_dir = tmp_path_factory.mktemp("portal")
    port = free_port()
    settings = Settings(database_url=url, data_dir=data_dir, api_port=port, pseudonym_secret=SECRET,
                        _env_file=None)  # type: ignore[call-arg]
    engine = create_engine(url)
    proc: subprocess.Popen[str] | None = None
    try:
        upgrade(engine)
        today = datetime.now(UTC).date()
        fx = seed_and_export_recent(engine, settings, today)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
        env.update(CIVICAIR_DATABASE_URL=url, CIVICAIR_API_PORT=str(port), CIVICAIR_DATA_DIR=str(data_dir),
                   CIVICAIR_PSEUDONYM_SECRET=SECRET, CIVICAIR_RATE_LIMIT_PER_MINUTE="100000")
        proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "api"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"civicair api exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                return httpx.get(f"{base}/catalog.ttl", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 60, interval=0.2, message="civicair api serving the catalogue")
        yield Portal(base, settings, data_dir / "exports", today, url, fx)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
