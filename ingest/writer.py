"""Batch writer: decode → resolve → normalise → one transaction per batch → ack after commit.

The writer owns the transaction of each batch (STYLE: the outermost caller commits). Readings go
through COPY into a temporary staging table, then `INSERT … ON CONFLICT DO NOTHING`, so a
re-delivered message is stored once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from core.domain import RefScheme, Uplink
from core.errors import InvalidPayload
from ingest.normalise import uplink_to_readings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as it arrived, before decoding. `ack` is called after its batch commits."""

    source: str
    topic: str
    payload: bytes
    received_at: datetime
    decode: Callable[[bytes], Uplink]
    ack: Callable[[], None] | None = None


@dataclass
class WriterStats:
    batches: int = 0
    messages: int = 0
    readings_written: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    last_commit: float | None = None
    errors: list[str] = field(default_factory=list)


REF_COLUMN = {
    RefScheme.CIVICAIR: "uid",
    RefScheme.DEV_EUI: "dev_eui",
    RefScheme.TTS_ID: "tts_device_id",
    RefScheme.CHIP_ID: "chip_id",
}


class BatchWriter:
    def __init__(
        self,
        conninfo: str,
        inbox: queue.Queue[Inbound],
        *,
        batch_max_rows: int = 5000,
        batch_max_age_ms: int = 250,
        clock_future_s: int = 300,
        clock_past_s: int = 7 * 24 * 3600,
    ) -> None:
        self.conninfo = conninfo
        self.inbox = inbox
        self.batch_max_rows = batch_max_rows
        self.batch_max_age = batch_max_age_ms / 1000
        self.clock_future_s = clock_future_s
        self.clock_past_s = clock_past_s
        self.stats = WriterStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()

    def run(self) -> None:
        while not self._stop.is_set() or not self.inbox.empty():
            batch = self._collect()
            if not batch:
                continue
            while True:
                try:
                    self.write_batch(batch)
                    break
                except psycopg.OperationalError as exc:
                    log.warning("batch commit failed, retrying: %s", str(exc).splitlines()[0])
                    self._reset_connection()
                    if self._stop.wait(1.0):
                        return  # not acked: the broker redelivers after restart

    def _collect(self) -> list[Inbound]:
        batch: list[Inbound] = []
        try:
            batch.append(self.inbox.get(timeout=0.2))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.batch_max_age
        while len(batch) < self.batch_max_rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo)
        return self._conn

    def _reset_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    # --- one batch ---------------------------------------------------------------------------
    def write_batch(self, batch: list[Inbound]) -> None:
        result = store_batch(self._connection(), batch, clock_future_s=self.clock_future_s,
                             clock_past_s=self.clock_past_s)
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.readings_written += result.readings_written
        self.stats.dead_letters += result.dead_letters
        self.stats.quarantined += result.quarantined
        self.stats.last_commit = time.time()
        for msg in batch:
            if msg.ack is not None:
                msg.ack()


@dataclass
class BatchResult:
    readings_written: int = 0
    dead_letters: int = 0
    quarantined: int = 0


def store_batch(
    conn: psycopg.Connection,
    batch: list[Inbound],
    *,
    clock_future_s: int = 300,
    clock_past_s: int = 7 * 24 * 3600,
) -> BatchResult:
    """Decode, resolve, normalise and store `batch` in ONE transaction on `conn` (committed here).
    Unparseable → dead_letters, unknown device → quarantine. Used by the MQTT writer thread and
    the HTTP push endpoints alike."""
    result = BatchResult()
    now = datetime.now(UTC)
    decoded: list[tuple[Inbound, Uplink]] = []
    dead: list[tuple[Inbound, str]] = []
    for msg in batch:
        try:
            decoded.append((msg, msg.decode(msg.payload)))
        except InvalidPayload as exc:
            dead.append((msg, exc.detail))
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not lose the message
            dead.append((msg, f"decoder error: {type(exc).__name__}: {exc}"))
    with conn.transaction():
        ids = _resolve(conn, [u for _, u in decoded])
        rows = []
        quarantined = []
        seen: dict[int, datetime] = {}
        for msg, up in decoded:
            device_id = ids.get((up.device.scheme, up.device.value))
            if device_id is None:
                quarantined.append((msg, up))
                continue
            up_time = up.time or msg.received_at
            for r in uplink_to_readings(
                up if up.received_at else _with_received(up, msg.received_at), device_id,
                now=now, future_s=clock_future_s, past_s=clock_past_s,
            ):
                rows.append((r.device_id, r.time, r.quantity, r.value, r.flags, r.lat, r.lon, msg.received_at))
            seen[device_id] = max(seen.get(device_id, up_time), up_time)
        with conn.cursor() as cur:
            if rows:
                cur.execute(
                    "create temp table if not exists readings_stage "
                    "(like readings including defaults) on commit delete rows"
                )
                with cur.copy(
                    "copy readings_stage (device_id, time, quantity, value, flags, lat, lon, received_at) from stdin"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(
                    "insert into readings select * from readings_stage on conflict do nothing"
                )
                result.readings_written += max(cur.rowcount, 0)
            for msg, error in dead:
                cur.execute(
                    "insert into dead_letters (received_at, source, topic, payload, error) values (%s,%s,%s,%s,%s)",
                    (msg.received_at, msg.source, msg.topic, msg.payload, error[:2000]),
                )
            for msg, up in quarantined:
                cur.execute(
                    "insert into quarantine (received_at, source, topic, ref_scheme, ref_value, payload) "
                    "values (%s,%s,%s,%s,%s,%s)",
                    (msg.received_at, msg.source, msg.topic, str(up.device.scheme), up.device.value, msg.payload),
                )
            for device_id, last in seen.items():
                cur.execute(
                    "update devices set last_seen = greatest(last_seen, %s), "
                    "first_seen = coalesce(first_seen, %s) where id = %s",
                    (last, last, device_id),
                )
    result.dead_letters = len(dead)
    result.quarantined = len(quarantined)
    log.debug("batch committed: %d messages, %d readings, %d dead, %d quarantined",
              len(batch), len(rows), len(dead), len(quarantined))
    return result


def _resolve(conn: psycopg.Connection, uplinks: list[Uplink]) -> dict[tuple[RefScheme, str], int]:
    wanted: dict[RefScheme, set[str]] = {}
    for up in uplinks:
        wanted.setdefault(up.device.scheme, set()).add(up.device.value)
    found: dict[tuple[RefScheme, str], int] = {}
    for scheme, values in wanted.items():
        column = REF_COLUMN[scheme]
        cur = conn.execute(
            f"select {column}, id from devices where {column} = any(%s)",  # column from a fixed map
            (list(values),),
        )
        for value, device_id in cur.fetchall():
            found[(scheme, value)] = device_id
    return found


def _with_received(up: Uplink, received_at: datetime) -> Uplink:
    from dataclasses import replace

    return replace(up, received_at=received_at)
