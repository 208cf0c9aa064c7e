"""End to end for an MQTT volunteer: register (CLI) → `civicair mosquitto sync` → a real Mosquitto
accepts the credentials shown at registration; after a rotation (API) + sync, the old password is refused."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import httpx
import pytest

from core.broker import free_port
from core.db import Database
from core.settings import Settings
from tests.conftest import wait_until
from tests.gateway.test_operator import _client, _shipped_conf, cli


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
        for c in clients:
            c.disconnect()
            c.loop_stop()
        proc.terminate()
        proc.wait(10)
