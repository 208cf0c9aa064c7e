"""Settings and start-up errors: one clear line naming the setting, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from civicair.core.errors import SettingsError
from civicair.core.settings import Settings, load_settings, redact_url

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CIVICAIR_")}
    return subprocess.run([sys.executable, "-m", "civicair.cli", *args], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_settings_from_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICAIR_API_PORT", "8123")
    monkeypatch.setenv("CIVICAIR_K_ANONYMITY", "5")
    s = load_settings(_env_file=None)
    assert (s.api_port, s.k_anonymity) == (8123, 5)
    assert s.database_url is None and s.mqtt_url is None  # embedded defaults


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("CIVICAIR_DATABASE_URL", "mysql://root@localhost/x", "CIVICAIR_DATABASE_URL"),
        ("CIVICAIR_MQTT_URL", "http://broker:1883", "CIVICAIR_MQTT_URL"),
        ("CIVICAIR_MQTT_URL", "mqtt://broker:notaport", "CIVICAIR_MQTT_URL"),
        ("CIVICAIR_API_PORT", "99999", "CIVICAIR_API_PORT"),
    ],
)
def test_bad_setting_raises_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                               needle: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_password_is_hidden_in_urls() -> None:
    assert redact_url("postgresql://u:s3cret@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert "s3cret" not in repr(Settings(database_url="postgresql://u:s3cret@db/x", _env_file=None))


def test_cli_help_lists_commands() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("migrate", "up", "gateway", "api", "bench"):
        assert command in out.stdout


def test_cli_bad_url_is_one_clear_line() -> None:
    out = run_cli("migrate", env={"CIVICAIR_DATABASE_URL": "mysql://x@y/z"})
    assert out.returncode == 2
    assert "CIVICAIR_DATABASE_URL" in out.stderr and "Traceback" not in out.stderr


def test_cli_unreachable_database_is_one_clear_line() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_cli("migrate", env={"CIVICAIR_DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{port}/x"})
    assert out.returncode == 1
    assert "CIVICAIR_DATABASE_URL" in out.stderr and "Traceback" not in out.stderr
    assert "pw@" not in out.stderr


def test_cli_port_taken_is_one_clear_line(database_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run_cli("api", env={"CIVICAIR_DATABASE_URL": database_url, "CIVICAIR_API_PORT": str(port),
                                  "CIVICAIR_PSEUDONYM_SECRET": "test-secret"})
    assert out.returncode == 2
    assert "CIVICAIR_API_PORT" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", [("api",), ("gateway",), ("up",),
                                     ("device", "register", "--name", "n", "--kind", "fixed", "--sensor", "SDS011",
                                      "--transport", "http", "--lat", "48.5", "--lon", "7.7", "--email", "a@b.org")])
def test_the_default_pseudonym_secret_is_refused_outside_the_demo(database_url: str, command: tuple[str, ...]) -> None:
    # issue 19 item 6: with the public default, 28 of 32 demo pseudonyms were linkable to their uid
    out = run_cli(*command, env={"CIVICAIR_DATABASE_URL": database_url, "CIVICAIR_MQTT_URL": "mqtt://127.0.0.1:1"})
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "CIVICAIR_PSEUDONYM_SECRET" in lines[0] and "--demo" in lines[0], out.stderr
    placeholder = run_cli(*command, env={"CIVICAIR_DATABASE_URL": database_url, "CIVICAIR_MQTT_URL": "mqtt://127.0.0.1:1",
                                         "CIVICAIR_PSEUDONYM_SECRET": "change-me-long-random"})  # .env.example's
    assert placeholder.returncode == 2 and "CIVICAIR_PSEUDONYM_SECRET" in placeholder.stderr
    if command[0] == "device":
        import sqlalchemy as sa
        from civicair.core.db import create_engine

        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:  # nothing registered with the public secret
                assert conn.execute(sa.text("select count(*) from devices where name = 'n'")).scalar() == 0
        finally:
            engine.dispose()


@pytest.mark.db
def test_cli_migrate_is_idempotent(database_url: str) -> None:
    first = run_cli("migrate", env={"CIVICAIR_DATABASE_URL": database_url})
    second = run_cli("migrate", env={"CIVICAIR_DATABASE_URL": database_url})
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "already up to date" in second.stderr
