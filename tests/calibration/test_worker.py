"""The scheduled E2 fetcher against a local HTTP server serving a real E2 file, and the job list."""

from __future__ import annotations

import http.server
import threading
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from civicair.calibration.worker import e2_urls, fetch_e2, jobs
from civicair.core import tables

pytestmark = pytest.mark.db


@pytest.fixture
def file_server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_e2_fetcher_imports_served_files_idempotently(db, settings, shared_data, file_server) -> None:
    root, url = file_server
    (root / "2025").mkdir()
    (root / "2025" / "FR_E2_2025-01-01.csv").write_bytes((shared_data / "FR_E2_2025-01-01_excerpt.csv").read_bytes())
    s = settings.model_copy(update={"e2_url_template": url + "/{year}/FR_E2_{date}.csv", "e2_fetch_days": 2,
                                    "e2_fetch_enabled": True})
    assert [u for _, u in e2_urls(s.e2_url_template, date(2025, 1, 2), 2)] == [
        f"{url}/2025/FR_E2_2025-01-01.csv", f"{url}/2025/FR_E2_2025-01-02.csv"]
    with httpx.Client() as client:
        stats = fetch_e2(s, db, client, today=date(2025, 1, 2))
        assert stats == {"files": 1, "rows": 96, "written": 96, "missing": 1}
        again = fetch_e2(s, db, client, today=date(2025, 1, 2))
        assert again["written"] == 0
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.reference_readings)).scalar() == 96
    assert [j.name for j in jobs(s, db)] == ["e2-fetch", "calibration"]
    assert [j.name for j in jobs(settings, db)] == ["calibration"]  # fetcher off by default


def test_one_calibration_run_at_a_time(db, settings) -> None:
    """A scheduled run that finds another one holding the lock does nothing (another process)."""
    from civicair.calibration.service import run_calibration
    from civicair.calibration.worker import calibrate

    with db.engine.begin() as conn:
        first = run_calibration(conn, settings)
        assert not first.skipped
        other = calibrate(settings, db)  # its own connection and transaction, while this one holds the lock
        assert other["skipped"] is True
    assert calibrate(settings, db)["skipped"] is False
