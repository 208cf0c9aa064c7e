"""Operations (issue 19, items 20 and 24) on real processes: SIGTERM stops `civicair up` and its
embedded PostgreSQL; `up` waits for a database that is down at start; /health tells no database
error text; X-Forwarded-For sets the rate-limit key only from a configured trusted proxy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from civicair.core.broker import free_port
from civicair.core.settings import Settings

from tests.conftest import wait_until
from tests.pg_instance import PostgresInstance, private_dir

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.db, pytest.mark.slow]


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    env.update(CIVICAIR_API_PORT=str(port), CIVICAIR_DATA_DIR=str(tmp_path / "data"),
               CIVICAIR_PSEUDONYM_SECRET="ops-test-secret", CIVICAIR_LOG_LEVEL="info", **extra)
    return env


def _postgres_of(pgdata: Path) -> list[psutil.Process]:
    """The running postgres processes whose command line names `pgdata` (the postmaster)."""
    found = []
    for proc in psutil.process_iter(attrs=("name", "cmdline")):
        cmd = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and any(str(pgdata) in part for part in cmd):
            found.append(proc)
    return found


def _healthy(base: str) -> dict | None:
    try:
        r = httpx.get(f"{base}/health", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_sigterm_stops_up_and_its_embedded_postgresql(mqtt_url) -> None:
    """Before: SIGTERM (systemd, Docker) ended civicair and left the embedded postmaster running."""
    port = free_port()
    home = private_dir("civicair-test-sigterm-")  # the embedded server runs as another user (pg_instance.py)
    env = _env(home, port, CIVICAIR_MQTT_URL=mqtt_url, CIVICAIR_MQTT_CLIENT_ID=f"sigterm-{port}")
    proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "up"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pgdata = (home / "data" / "postgres").resolve()
    try:
        health = wait_until(lambda: _healthy(f"http://127.0.0.1:{port}"), 90, interval=0.5, message="up")
        assert health["database"] == {"status": "ok"}
        assert _postgres_of(pgdata), "the embedded PostgreSQL runs under the data dir"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        left = _postgres_of(pgdata)
    finally:
        if proc.poll() is None:
            proc.kill()
        for leftover in _postgres_of(pgdata):  # a failing run must not leave a server behind
            leftover.terminate()
        shutil.rmtree(home, ignore_errors=True)
    assert proc.returncode == 0, out
    assert "stopped" in out and "Traceback" not in out
    assert left == [], "no postgres process of the data dir is left"
    assert not (pgdata / "postmaster.pid").exists()


def test_up_waits_for_its_database_and_health_shows_no_error_text(tmp_path, mqtt_url) -> None:
    pg = PostgresInstance()
    port = free_port()
    env = _env(tmp_path, port, CIVICAIR_MQTT_URL=mqtt_url, CIVICAIR_MQTT_CLIENT_ID=f"wait-{port}",
               CIVICAIR_DATABASE_URL=pg.database_url("postgres"), CIVICAIR_DATABASE_WAIT_S="60")
    proc = subprocess.Popen([sys.executable, "-m", "civicair.cli", "up"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        time.sleep(4)  # civicair starts first; the database is down
        assert proc.poll() is None, "civicair up gave up on a database that is down at start"
        pg.start()
        health = wait_until(lambda: _healthy(base), 60, interval=0.5, message="up after the database came")
        assert health["status"] == "ok" and health["database"] == {"status": "ok"}
        pg.stop("immediate")
        r = httpx.get(f"{base}/health", timeout=10)
        assert r.status_code == 200 and r.json()["database"] == {"status": "down"}
        assert r.json()["status"] == "degraded"
        for leak in ("connection", "refused", "127.0.0.1", str(pg.port), "psycopg", "postgres"):
            assert leak not in r.text.lower(), r.text
        pg.start()
        wait_until(lambda: (_healthy(base) or {}).get("database") == {"status": "ok"}, 30, interval=0.5,
                   message="health back to ok")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        pg.close()
    assert proc.returncode == 0, out
    assert "database: unavailable, retrying" in out
    assert "(migrated from an empty database)" in out and "Running upgrade" not in out


def _serve(settings: Settings, db) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    import uvicorn

    from civicair.runtime import build_app, uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(settings, build_app(settings, db), host="127.0.0.1", port=port))
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, 10, message="uvicorn start")
    return f"http://127.0.0.1:{port}", server


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_sets_the_rate_limit_key_only_from_a_trusted_proxy(settings, db, trusted) -> None:
    """Before: uvicorn's default trusted 127.0.0.1, so any local client (or a proxy passing the
    header through) chose its own rate-limit key with X-Forwarded-For."""
    settings = settings.model_copy(update={"rate_limit_per_minute": 5,
                                           "trusted_proxies": ["127.0.0.1"] if trusted else []})
    base, server = _serve(settings, db)
    try:
        codes = [httpx.get(f"{base}/v1/quantities", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
                 for i in range(8)]
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
    if trusted:
        assert codes == [200] * 8  # eight clients behind the proxy, one request each
    else:
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3  # one client: the TCP peer
