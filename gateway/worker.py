"""Scheduled jobs of the gateway package (collected by civicair.runtime): `gateway.mosquitto_sync`
keeps Mosquitto's password and ACL files in step with the devices table, so that credentials a
volunteer just registered (or rotated, or revoked) take effect within
`CIVICAIR_MOSQUITTO_SYNC_INTERVAL_S`, and reloads the broker when they changed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from civicair.core.db import Database
from civicair.core.jobs import Job
from civicair.core.settings import Settings

log = logging.getLogger(__name__)


def sync_arguments(settings: Settings, gateway_user: str | None = None, gateway_password: str | None = None,
                   chirpstack_user: str | None = None, chirpstack_password: str | None = None) -> dict[str, Any]:
    """The service users and topic prefixes of `gateway.service.sync_mosquitto_files`: the
    gateway's user from `CIVICAIR_MQTT_URL` unless given, ChirpStack's from the settings."""
    if settings.mqtt_url and gateway_user is None:
        parts = urlsplit(settings.mqtt_url)
        gateway_user, gateway_password = parts.username, gateway_password or parts.password
    secret = settings.mosquitto_chirpstack_password
    return {"gateway_user": gateway_user, "gateway_password": gateway_password,
            "direct_prefix": settings.direct_topic_prefix,
            "chirpstack_user": chirpstack_user or settings.mosquitto_chirpstack_user,
            "chirpstack_password": chirpstack_password or (secret.get_secret_value() if secret else None),
            "chirpstack_prefix": settings.chirpstack_topic_prefix}


def sync_once(settings: Settings, db: Database) -> bool:
    """One run of the job; True when the files changed (and the broker was told to reload)."""
    from civicair.gateway.service import reload_mosquitto, sync_mosquitto_files

    assert settings.mosquitto_password_file and settings.mosquitto_acl_file
    result = sync_mosquitto_files(db, Path(settings.mosquitto_password_file), Path(settings.mosquitto_acl_file),
                                  **sync_arguments(settings))
    for uid in result.skipped:
        log.warning("mosquitto sync: device %s skipped (MQTT username or password hash not usable)", uid)
    if not result.changed:
        return False
    if settings.mosquitto_pid_file:
        try:
            pid = reload_mosquitto(Path(settings.mosquitto_pid_file))
        except (OSError, ValueError) as exc:
            log.error("mosquitto sync: files rewritten (%d devices) but the broker was not reloaded: %s",
                      result.devices, exc)
            return True
        log.info("mosquitto sync: files rewritten (%d devices), broker (pid %d) reloaded", result.devices, pid)
    else:
        log.info("mosquitto sync: files rewritten (%d devices); reload the broker (no CIVICAIR_MOSQUITTO_PID_FILE)",
                 result.devices)
    return True


def jobs(settings: Settings, db: Database) -> list[Job]:
    if not (settings.mosquitto_password_file and settings.mosquitto_acl_file):
        return []
    return [Job("gateway.mosquitto_sync", settings.mosquitto_sync_interval_s, lambda: sync_once(settings, db),
                first_delay_s=1.0)]
