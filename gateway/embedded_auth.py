"""Authentication and authorisation of the embedded MQTT broker (amqtt plugins), with the rules of
the Mosquitto files `civicair mosquitto sync` writes (`gateway/mosquitto_auth.py`,
docs/privacy.md#mqtt-access):

- anonymous clients are refused; a username must come with its password;
- a device logs in with its MQTT username and password, checked against the devices table's
  hash (Mosquitto's `$7$` PBKDF2), and may only publish to its own topic
  `{direct prefix}/{uid}/up`; it may subscribe to and receive nothing;
- service accounts (the gateway's own: read everything; a network server's, such as
  ChirpStack's MQTT integration: read and write under its topic prefix) are given at start-up.

A client's rights are looked up when it connects and again at most `recheck_s` later, so a
rotated password or an erased device stops publishing within that time, without a restart (as
the Mosquitto sync job's reload does for Mosquitto).

When the database cannot be reached, the directory answers from what it last read, as Mosquitto
answers from its last synced files: a connected device keeps its rights, and a device that logged
in before may log in again with the same password; a device never seen is refused until the
database is back. Nothing is lost either way: a refused device keeps its unacknowledged messages.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from civicair.core.db import Database
from civicair.gateway import repository
from civicair.gateway.mosquitto_auth import verify_mosquitto_password

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceAccount:
    username: str
    password: str  # in memory only: generated at start-up or from the settings
    read: tuple[str, ...] = ()  # topic filters it may subscribe to and receive
    write: tuple[str, ...] = ()  # topic filters it may publish to


@dataclass(frozen=True)
class Grant:
    read: tuple[str, ...]
    write: tuple[str, ...]
    password_hash: str | None  # a device's, to notice a rotation
    checked_at: float


def topic_matches(topic: str, pattern: str) -> bool:
    """MQTT matching of a topic (or a subscription's filter, taken level by level) by a filter
    pattern with `+` and `#` (a filter is allowed when the pattern covers all it can match)."""
    want, have = topic.split("/"), pattern.split("/")
    for i, level in enumerate(have):
        if level == "#":
            return True
        if i >= len(want):
            return False
        if level != "+" and level != want[i]:
            return False
        if level == "+" and want[i] == "#":
            return False
    return len(want) == len(have)


class DirectoryUnavailable(Exception):
    """The devices table could not be read (the database is down or unreachable)."""


class BrokerDirectory:
    """Who may connect to the embedded broker and what each may do."""

    def __init__(self, db: Database, direct_prefix: str, services: Sequence[ServiceAccount] = (),
                 *, recheck_s: float = 15.0) -> None:
        self.db = db
        self.direct_prefix = direct_prefix
        self.services = {s.username: s for s in services}
        self.recheck_s = recheck_s
        self._grants: dict[str, Grant] = {}  # logged-in clients' rights
        self._known: dict[str, Grant] = {}  # the devices' last rights read, for a database outage
        self._lock = threading.Lock()

    def _device_grant(self, username: str) -> tuple[Grant, str] | None:
        """The device's rights and password hash from the database (None: no such device).
        Raises `DirectoryUnavailable` when the database cannot be reached."""
        try:
            with self.db.engine.connect() as conn:
                row = repository.mqtt_account(conn, username)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise DirectoryUnavailable(str(exc).splitlines()[0][:200]) from None
        if row is None or not row.mqtt_password_hash:
            return None
        grant = Grant((), (f"{self.direct_prefix}/{row.uid}/up",), row.mqtt_password_hash, time.monotonic())
        return grant, row.mqtt_password_hash

    def _last_known(self, username: str) -> Grant | None:
        with self._lock:
            return self._known.get(username)

    def _remember(self, username: str, grant: Grant) -> None:
        with self._lock:
            self._grants[username] = grant
            if grant.password_hash is not None:
                self._known[username] = grant

    def authenticate(self, username: str | None, password: str | None) -> bool:
        """Blocking (a database lookup): call it from a worker thread."""
        if not username or password is None:
            return False
        service = self.services.get(username)
        if service is not None:
            ok = hmac.compare_digest(service.password.encode(), password.encode())
            grant = Grant(service.read, service.write, None, float("inf"))
        else:
            try:
                found = self._device_grant(username)
            except DirectoryUnavailable as exc:
                known = self._last_known(username)
                found = (known, known.password_hash) if known is not None and known.password_hash else None
                log.warning("embedded broker: database unavailable (%s); login of %r checked against %s", exc,
                            username[:64], "its last known password" if found else "nothing: refused")
            else:
                if found is None:
                    with self._lock:
                        self._known.pop(username, None)
            ok = found is not None and verify_mosquitto_password(password, found[1])
            grant = found[0] if found else Grant((), (), None, 0.0)
        if ok:
            self._remember(username, grant)
        else:
            log.info("embedded broker: refused login of %r", username[:64])
        return ok

    def grant(self, username: str | None) -> Grant | None:
        """The rights of a logged-in client, from memory (None: re-check needed)."""
        if username is None:
            return None
        with self._lock:
            grant = self._grants.get(username)
        if grant is None or time.monotonic() - grant.checked_at > self.recheck_s:
            return None
        return grant

    def recheck(self, username: str) -> Grant | None:
        """Blocking: look the device up again; its rights end when it is gone or its password
        hash changed since it logged in."""
        with self._lock:
            old = self._grants.get(username)
        try:
            found = self._device_grant(username)
        except DirectoryUnavailable as exc:
            if old is None:
                return None
            log.warning("embedded broker: database unavailable (%s); %r keeps its rights until the next check",
                        exc, username[:64])
            kept = Grant(old.read, old.write, old.password_hash, time.monotonic())
            with self._lock:
                self._grants[username] = kept
            return kept
        if old is None or found is None or found[1] != old.password_hash:
            with self._lock:
                self._grants.pop(username, None)
                if found is None or (old is not None and found[1] != old.password_hash):
                    self._known.pop(username, None)  # erased or rotated: its old password is no more
            return None
        self._remember(username, found[0])
        return found[0]

    def allowed(self, grant: Grant | None, topic: str, action: Action) -> bool:
        if grant is None:
            return False
        patterns = grant.write if action == Action.PUBLISH else grant.read
        return any(topic_matches(topic, p) for p in patterns)


class DeviceAuthPlugin(BaseAuthPlugin):
    """amqtt authentication against a `BrokerDirectory` (anonymous refused)."""

    @dataclass
    class Config:
        directory: Any = field(default=None)

    async def authenticate(self, *, session: Session) -> bool:
        directory: BrokerDirectory = self.config.directory
        return await asyncio.to_thread(directory.authenticate, session.username, session.password)


class DeviceTopicPlugin(BaseTopicPlugin):
    """amqtt publish / subscribe / receive checks against a `BrokerDirectory`."""

    @dataclass
    class Config:
        directory: Any = field(default=None)

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool:
        directory: BrokerDirectory = self.config.directory
        if session is None or topic is None or action is None or session.username is None:
            return False
        grant = directory.grant(session.username)
        if grant is None:
            grant = await asyncio.to_thread(directory.recheck, session.username)
        allowed = directory.allowed(grant, topic, action)
        if not allowed and action != Action.RECEIVE:
            log.info("embedded broker: %s of %r to %r refused", action.value, session.username[:64], topic[:200])
        return allowed


def broker_plugins(directory: BrokerDirectory) -> dict[str, dict[str, Any]]:
    """The embedded broker's `plugins` configuration for `core.broker.EmbeddedBroker`."""
    return {f"{__name__}.DeviceAuthPlugin": {"directory": directory},
            f"{__name__}.DeviceTopicPlugin": {"directory": directory}}
