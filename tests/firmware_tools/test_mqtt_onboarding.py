"""End to end for an MQTT volunteer: register (CLI) → `civicair mosquitto sync` → a real Mosquitto
accepts the credentials shown at registration; after a rotation (API) + sync, the old password is refused."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import httpx
import pytest
from civicair.core.broker import free_port
from civicair.core.db import Database
from civicair.core.settings import Settings

from tests.conftest import wait_until
from tests.gateway.test_operator import _client, _shipped_conf, _shut_down, cli


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto binary not installed")
def test_registered_credentials_work_on_a_real_broker(db: Database, settings: Settings, live_api: str,
                                                       tmp_path, unique: str) -> None:  # type: ignore[no-untyped-def]
    reg = cli(settings, "device", "register", "--name", "n", "--kind", "fixed", "--sensor", "SDS011",
              "--transport", "mqtt", "--lat", "45.1", "--lon", "5.2", "--email", "m@example.org", "--json")
    assert reg.returncode == 0, reg.stderr
    creds = json.loads(reg.stdout)["credentials"]
    passwd, acl = tmp_path / "civicair.passwd", tmp_path / "civicair.acl"

    def sync() -> None:
        r = cli(settings, "mosquitto", "sync", "--password-file", str(passwd), "--acl-file", str(acl),
                "--gateway-user", "gw", "--gateway-password", "gw-pw")
        assert r.returncode == 0 and "1 device(s)" in r.stdout, r.stdout + r.stderr

    sync()
    port = free_port()
    conf = _shipped_conf(tmp_path, port, passwd, acl)
    clients = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return proc.poll() is not None
        wait_until(up, 10, message="mosquitto listening")
        assert proc.poll() is None
        return proc

    proc = start()
    try:
        ok, rc = _client(port, creds["mqtt_username"], creds["mqtt_password"], f"ok-{unique}")
        clients.append(ok)
        assert not rc.is_failure
        rot = httpx.post(f"{live_api}/v1/volunteer/device/rotate",
                         headers={"Authorization": f"Bearer {creds['device_token']}"}, timeout=10)
        assert rot.status_code == 200, rot.text
        sync()
        proc.terminate()
        proc.wait(10)
        proc = start()  # the broker reads the files at start (production: SIGHUP)
        old, rc = _client(port, creds["mqtt_username"], creds["mqtt_password"], f"old-{unique}")
        clients.append(old)
        assert rc.is_failure
        new, rc = _client(port, creds["mqtt_username"], rot.json()["mqtt_password"], f"new-{unique}")
        clients.append(new)
        assert not rc.is_failure
    finally:
        _shut_down(clients, proc)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto binary not installed")
def test_scheduled_sync_lets_credentials_in_without_restarting_the_broker(
        db: Database, settings: Settings, live_api: str, tmp_path, unique: str) -> None:  # type: ignore[no-untyped-def]
    """The `gateway.mosquitto_sync` job: files follow the devices table, the broker is reloaded
    (SIGHUP through its pid file) only when they changed, and the same broker process accepts a
    new registration and refuses a rotated password."""
    from civicair.gateway.worker import jobs, sync_once

    passwd, acl, pid_file = tmp_path / "civicair.passwd", tmp_path / "civicair.acl", tmp_path / "mosquitto.pid"
    synced = settings.model_copy(update={"mosquitto_password_file": passwd, "mosquitto_acl_file": acl,
                                         "mosquitto_pid_file": pid_file})
    assert [j.name for j in jobs(synced, db)] == ["gateway.mosquitto_sync"] and jobs(settings, db) == []
    assert sync_once(synced, db)  # the files exist before the broker starts (no broker to reload yet)
    port = free_port()
    conf = _shipped_conf(tmp_path, port, passwd, acl)
    conf.write_text(conf.read_text() + f"\npid_file {pid_file}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients = []

    def accepted(user: str, password: str) -> bool:
        c, rc = _client(port, user, password, f"c-{unique}-{len(clients)}")
        clients.append(c)
        return not rc.is_failure  # type: ignore[attr-defined]

    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() == str(proc.pid), 10,
                   message="mosquitto wrote its pid file")
        reg = cli(settings, "device", "register", "--name", "n", "--kind", "fixed", "--sensor", "SDS011",
                  "--transport", "mqtt", "--lat", "45.1", "--lon", "5.2", "--email", "m@example.org", "--json")
        assert reg.returncode == 0, reg.stderr
        creds = json.loads(reg.stdout)["credentials"]
        assert not accepted(creds["mqtt_username"], creds["mqtt_password"])  # not in the files yet
        assert sync_once(synced, db)
        wait_until(lambda: accepted(creds["mqtt_username"], creds["mqtt_password"]), 10, interval=0.3,
                   message="new credentials accepted after the reload")
        assert not sync_once(synced, db)  # nothing changed: no rewrite, no reload
        rot = httpx.post(f"{live_api}/v1/volunteer/device/rotate",
                         headers={"Authorization": f"Bearer {creds['device_token']}"}, timeout=10)
        assert rot.status_code == 200, rot.text
        assert sync_once(synced, db)
        wait_until(lambda: not accepted(creds["mqtt_username"], creds["mqtt_password"]), 10, interval=0.3,
                   message="old password refused after the reload")
        assert accepted(creds["mqtt_username"], rot.json()["mqtt_password"])
        assert proc.poll() is None  # the same broker process throughout
    finally:
        _shut_down(clients, proc)
