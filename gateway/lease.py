"""A gateway's MQTT client id and its lease (docs/storage.md#gateway-client-ids).

A persistent MQTT session belongs to a client id: a second client connecting with the same id
takes the session over, with the messages queued for it. So:

- the default client id is unique per installation and host: `civicair-<installation>-<host>`,
  the installation id being a random UUID made by the migrations (`installation` table);
- a gateway takes a lease on its client id in the database before it connects, renews it every
  `HEARTBEAT_S` and gives it back when it stops. A gateway whose client id is leased by another
  live gateway refuses to start. A lease is stale when its holder has not renewed it for
  `TTL_S`, or when it was held on this host by a process that no longer runs (or by this very
  process id: a restarted container).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from civicair.core.db import create_engine
from civicair.core.errors import Conflict, ServiceUnavailable
from civicair.core.files import write_atomic
from civicair.core.processes import process_alive
from civicair.gateway import repository

log = logging.getLogger(__name__)

TTL_S = 30.0
HEARTBEAT_S = 10.0
_HOST_CHARS = re.compile(r"[^A-Za-z0-9-]+")
_HELD_HERE: set[str] = set()  # holders of this process's live leases


def default_client_id(installation: str, host: str) -> str:
    """`civicair-<first 8 hex digits of the installation id>-<host>` (pure): stable across
    restarts (the persistent session survives them), different per installation and host."""
    short = installation.replace("-", "")[:8].lower()
    name = _HOST_CHARS.sub("-", host.split(".")[0]).strip("-")[:32] or "host"
    return f"civicair-{short}-{name}"


def derive_client_id(conninfo: str, host: str | None = None, cache: Path | None = None) -> str:
    """The default client id, from the database's installation id. It is written to `cache`
    (a file in the data dir) and read from there when the database is down at start, so that a
    gateway can start during an outage (its batches go to the spool)."""
    engine = create_engine(conninfo, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            client_id = default_client_id(repository.installation_id(conn), host or socket.gethostname())
    except sa.exc.OperationalError as exc:
        if cache is not None and cache.is_file() and (cached := cache.read_text().strip()):
            log.warning("database unavailable: MQTT client id %s read from %s", cached, cache)
            return cached
        raise ServiceUnavailable(
            "the default MQTT client id is derived from the database, which is unavailable: wait for it or set "
            f"CIVICAIR_MQTT_CLIENT_ID ({(str(exc.orig or exc).splitlines() or [''])[0]})") from None
    finally:
        engine.dispose()
    if cache is not None:
        try:
            write_atomic(cache, client_id.encode() + b"\n")
        except OSError as exc:
            log.warning("MQTT client id not cached in %s: %s", cache, exc)
    return client_id


class ClientIdLease:
    """Hold `client_id` for this process: `acquire()` (raises Conflict when a live gateway holds
    it), then a heartbeat thread, then `release()`."""

    def __init__(self, conninfo: str, client_id: str, *, ttl_s: float = TTL_S,
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.engine = create_engine(conninfo, poolclass=sa.pool.NullPool)
        self.client_id = client_id
        self.ttl = timedelta(seconds=ttl_s)
        self.heartbeat_s = heartbeat_s
        self.holder = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.lost = threading.Event()
        self.pending = False  # not taken yet: the database was unavailable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stale(self, row: sa.Row) -> bool:
        if row.age >= self.ttl:
            return True
        if row.holder in _HELD_HERE:
            return False
        # on this host: its process is gone, or it had our pid (a restarted container's pid 1)
        return row.host == self.host and (row.pid == self.pid or not process_alive(row.pid))

    def acquire(self) -> None:
        """Take the lease, or raise Conflict. With the database unreachable the gateway starts
        anyway (its batches go to the spool) and the heartbeat takes the lease later."""
        try:
            self._take()
        except sa.exc.OperationalError as exc:
            self.pending = True
            log.warning("MQTT client id %s: lease not checked, database unavailable (%s); taking it when the "
                        "database is back", self.client_id, (str(exc.orig or exc).splitlines() or [""])[0])
        self._thread = threading.Thread(target=self._beat, name="client-id-lease", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        for _ in range(3):  # another gateway may take or release it between our two statements
            with self.engine.begin() as conn:
                row = repository.lease_row(conn, self.client_id)
                if row is not None and not self._stale(row):
                    raise Conflict(
                        f"CIVICAIR_MQTT_CLIENT_ID: {self.client_id!r} is held by a live gateway (host "
                        f"{row.host}, pid {row.pid}, renewed {row.age.total_seconds():.0f} s ago); two gateways "
                        "with one client id take each other's MQTT session and queued messages. Give each "
                        "gateway its own id (or stop the other one)")
                if repository.take_lease(conn, self.client_id, self.holder, self.host, self.pid,
                                         row.holder if row is not None else None):
                    _HELD_HERE.add(self.holder)
                    if row is not None:
                        log.info("MQTT client id %s: took over the stale lease of %s pid %d", self.client_id,
                                 row.host, row.pid)
                    break
        else:
            raise Conflict(f"CIVICAIR_MQTT_CLIENT_ID: could not lease {self.client_id!r} (contended)")
        self.pending = False

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if self.pending:
                    self._take()
                    continue
                with self.engine.begin() as conn:
                    held = repository.renew_lease(conn, self.client_id, self.holder)
            except Conflict as exc:
                self.pending = False
                self.lost.set()
                log.error("%s (found once the database was back; this gateway started during the outage)", exc)
                continue
            except sa.exc.SQLAlchemyError as exc:
                log.warning("MQTT client id %s: lease not renewed (database: %s)", self.client_id,
                            (str(exc).splitlines() or [""])[0])
                continue
            if not held and not self.lost.is_set():
                self.lost.set()
                log.error("MQTT client id %s: another gateway took this gateway's lease (ours was not renewed "
                          "for %s s); its MQTT session is no longer ours", self.client_id, self.ttl.total_seconds())

    def release(self) -> None:
        _HELD_HERE.discard(self.holder)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            with self.engine.begin() as conn:
                repository.release_lease(conn, self.client_id, self.holder)
        except sa.exc.SQLAlchemyError:
            log.warning("MQTT client id %s: lease not released (it expires in %s s)", self.client_id,
                        self.ttl.total_seconds())
        self.engine.dispose()
