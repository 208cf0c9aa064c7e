"""Batch writer: decode → resolve → normalise → one transaction per batch → ack after commit.

The writer owns the transaction of each batch (STYLE: the outermost caller commits). Readings go
through COPY into a staging table, then `INSERT … ON CONFLICT DO NOTHING … RETURNING`, and only
the rows that were new are folded into the hourly rollup in the same statement: a re-delivered
message is stored once and counted once.

Failure handling (docs/storage.md#database-outage-and-spool):
- database unreachable while committing → the batch goes to the on-disk spool (fsync'd) and is
  acknowledged there: it is durable on disk, so the broker need not keep it. New batches join
  the spool, in order, until a replay (capped exponential backoff) drains it. Without a spool
  directory the writer retries the same batch and never acks it (the broker keeps it).
- deadlock / serialization failure → the batch is retried at once.
- any other database error (bad data) → the batch is stored message by message, and a message
  that still fails becomes a dead letter with the error: nothing is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import psycopg
from civicair.core.domain import Uplink
from civicair.core.errors import InvalidPayload
from civicair.ingest import metrics
from civicair.ingest import repository as repo
from civicair.ingest.normalise import readings_rows
from civicair.ingest.spool import Spool

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
    redelivered: bool = False  # MQTT DUP flag: the broker sent it before, unacknowledged
    device_id: int | None = None  # already authenticated (HTTP push with a device token)


class DecodedMessage(NamedTuple):
    """An `Inbound` after decoding: either an uplink or the decoding error. Picklable (spool).
    A NamedTuple: one is built per message on the hot path (a frozen dataclass costs more)."""

    source: str
    topic: str
    payload: bytes
    received_at: datetime
    uplink: Uplink | None
    error: str | None = None
    redelivered: bool = False
    device_id: int | None = None  # `Inbound.device_id`: kept with its dead letter, for erasure


@dataclass
class BatchResult:
    readings_written: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    readings_duplicate: int = 0
    uplinks_duplicate: int = 0
    blocked: int = 0  # messages naming an erased device's hardware id: counted, not kept


@dataclass
class WriterStats:
    batches: int = 0
    messages: int = 0
    readings_written: int = 0
    readings_duplicate: int = 0
    uplinks_duplicate: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    blocked: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0
    last_commit: float | None = None
    errors: list[str] = field(default_factory=list)


def decode_one(msg: Inbound) -> DecodedMessage:
    try:
        up = msg.decode(msg.payload)
        return DecodedMessage(msg.source, msg.topic, msg.payload, msg.received_at, up, None, msg.redelivered,
                              msg.device_id)
    except InvalidPayload as exc:
        error = exc.detail
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not lose the message
        error = f"decoder error: {type(exc).__name__}: {exc}"
    return DecodedMessage(msg.source, msg.topic, msg.payload, msg.received_at, None, error, msg.redelivered,
                          msg.device_id)


def store_batch(
    conn: psycopg.Connection,
    batch: list[Inbound],
    *,
    clock_future_s: int = 300,
    clock_past_s: int = 7 * 24 * 3600,
    now: datetime | None = None,
    redelivery_window_s: int = 3600,
    block_key: str | None = None,
) -> BatchResult:
    """Decode, resolve, normalise and store `batch` in ONE transaction on `conn` (committed here).
    Unparseable → dead_letters, unknown device → quarantine (unless `block_key` is given and the
    device's hardware id is blocked). Used by the MQTT writer thread and the HTTP push endpoints alike."""
    return store_decoded(conn, [decode_one(m) for m in batch], clock_future_s=clock_future_s,
                         clock_past_s=clock_past_s, now=now, redelivery_window_s=redelivery_window_s,
                         block_key=block_key)


def _float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _uplink_row_wanted(up: Uplink) -> bool:
    """Whether an `uplinks` row is kept: for radio metadata, battery, or keys that recognise a
    duplicate, and for a message without a time of its own (it takes its arrival time, so a
    re-delivery could not be told from a new reading but by comparing with this row)."""
    link = up.link
    return (link.f_cnt is not None or link.dedup_id is not None or link.rssi is not None
            or up.battery_v is not None or (up.time is None and link.ns_time is None))


def store_decoded(
    conn: psycopg.Connection,
    items: list[DecodedMessage],
    *,
    clock_future_s: int = 300,
    clock_past_s: int = 7 * 24 * 3600,
    now: datetime | None = None,
    redelivery_window_s: int = 3600,
    block_key: str | None = None,
) -> BatchResult:
    """Store decoded messages in one transaction (see `store_batch`). `block_key`: the secret of
    the blocked hardware ids (`core.security.ref_hash`, docs/privacy.md#erasure): a message of an
    unknown device whose id is blocked is counted on its block entry instead of being quarantined.

    A message re-delivered by the broker (DUP flag) that has no time of its own is a duplicate
    when the device's stored uplinks of the `redelivery_window_s` before it hold the same
    payload: its first delivery was stored but not acknowledged (a crash between the commit and
    the ack). One with a time of its own needs no such test: its readings' keys repeat."""
    result = BatchResult()
    now = now or datetime.now(UTC)
    dead: list[tuple] = []
    quarantined: list[tuple] = []
    reading_rows: list[tuple] = []
    uplink_rows: list[tuple] = []
    pending: dict[tuple[int, datetime], list[tuple]] = {}  # readings waiting on uplink dedup
    seen_ids: set[str] = set()
    seen_fcnt: set[tuple[int, int]] = set()
    seen: dict[int, tuple[datetime, datetime, datetime]] = {}  # device → first, last time, first arrival
    with conn.transaction():
        repo.ensure_staging(conn)
        ids = repo.resolve_devices(
            conn, {(it.uplink.device.scheme, it.uplink.device.value) for it in items if it.uplink})
        for it in items:
            up = it.uplink
            if up is None:
                dead.append((it.received_at, it.source, it.topic, it.payload, (it.error or "")[:2000], it.device_id))
                continue
            dev = ids.get((up.device.scheme, up.device.value))
            if dev is None:
                quarantined.append((it.received_at, it.source, it.topic, str(up.device.scheme),
                                    up.device.value, it.payload))
                continue
            device_id, mobile = dev
            received = up.received_at or it.received_at
            t = up.time or up.link.ns_time or received
            try:
                rows = readings_rows(up, device_id, time=t, now=now, received_at=it.received_at,
                                     mobile=mobile, future_s=clock_future_s, past_s=clock_past_s)
            except InvalidPayload as exc:
                dead.append((it.received_at, it.source, it.topic, it.payload, exc.detail[:2000], device_id))
                continue
            first, last, arrived = seen.get(device_id, (t, t, it.received_at))
            seen[device_id] = (min(first, t), max(last, t), min(arrived, it.received_at))
            if not _uplink_row_wanted(up):
                reading_rows.extend(rows)
                continue
            link = up.link
            key = (device_id, t)
            dup = key in pending or (link.dedup_id is not None and link.dedup_id in seen_ids) or (
                link.f_cnt is not None and (device_id, link.f_cnt) in seen_fcnt)
            if dup:
                result.uplinks_duplicate += 1
                continue
            pending[key] = rows
            if link.dedup_id is not None:
                seen_ids.add(link.dedup_id)
            if link.f_cnt is not None:
                seen_fcnt.add((device_id, link.f_cnt))
            gw = min(link.gateway_count, 32767) if link.gateway_count is not None else None
            recheck = it.redelivered and up.time is None and link.ns_time is None
            uplink_rows.append((device_id, t, str(up.route), received, link.f_cnt, link.f_port,
                                _float(link.rssi), _float(link.snr), gw, link.ns_time, link.dedup_id,
                                _float(up.battery_v), bytes(up.raw or it.payload), recheck))
        if uplink_rows:
            new = repo.insert_uplinks(conn, uplink_rows, redelivery_window_s)
            for key, rows in pending.items():
                if key in new:
                    reading_rows.extend(rows)
                else:
                    result.uplinks_duplicate += 1
        if reading_rows:
            result.readings_written = repo.insert_readings(conn, reading_rows)
            result.readings_duplicate = len(reading_rows) - result.readings_written
        repo.insert_dead_letters(conn, dead)
        if quarantined and block_key is not None:
            kept = repo.count_blocked(conn, quarantined, block_key)
            result.blocked = len(quarantined) - len(kept)
            quarantined = kept
        repo.insert_quarantine(conn, quarantined)
        repo.touch_devices(conn, seen)
    result.dead_letters = len(dead)
    result.quarantined = len(quarantined)
    per_route: dict[str, int] = {}
    for it in items:
        route = str(it.uplink.route) if it.uplink is not None else f"{it.source}:undecodable"
        per_route[route] = per_route.get(route, 0) + 1
    for route, n in per_route.items():
        metrics.MESSAGES_RECEIVED.labels(route).inc(n)
    return result


class BatchWriter:
    """The writer thread: drains `inbox`, commits one batch at a time, acks after commit."""

    def __init__(
        self,
        conninfo: str,
        inbox: queue.Queue[Inbound],
        *,
        batch_max_rows: int = 5000,
        batch_max_age_ms: int = 250,
        clock_future_s: int = 300,
        clock_past_s: int = 7 * 24 * 3600,
        redelivery_window_s: int = 3600,
        spool_dir: Path | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_commit: Callable[[list[DecodedMessage], float], None] | None = None,
        block_key: str | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.block_key = block_key
        self.inbox = inbox
        self.batch_max_rows = batch_max_rows
        self.batch_max_age = batch_max_age_ms / 1000
        self.clock_future_s = clock_future_s
        self.clock_past_s = clock_past_s
        self.redelivery_window_s = redelivery_window_s
        self.spool = Spool(spool_dir) if spool_dir is not None else None
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.on_commit = on_commit
        self.stats = WriterStats()
        self._backoff = backoff_initial_s
        self._next_retry = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    @classmethod
    def from_settings(cls, settings, conninfo: str, inbox: queue.Queue[Inbound], **kwargs) -> BatchWriter:
        return cls(conninfo, inbox, batch_max_rows=settings.batch_max_rows,
                   batch_max_age_ms=settings.batch_max_age_ms, clock_future_s=settings.clock_future_s,
                   clock_past_s=settings.clock_past_s,
                   redelivery_window_s=settings.mqtt_session_expiry_s + 600,
                   spool_dir=settings.ingest_spool_dir or Path(settings.data_dir) / "spool",
                   backoff_max_s=settings.ingest_retry_max_s,
                   block_key=settings.pseudonym_secret.get_secret_value(), **kwargs)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.spool is not None:
            metrics.SPOOL_BATCHES.set(len(self.spool))
        self._thread = threading.Thread(target=self.run, name="ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self._reset_connection()

    @property
    def spooled(self) -> int:
        return len(self.spool) if self.spool is not None else 0

    def run(self) -> None:
        while not self._stop.is_set() or not self.inbox.empty():
            items, acks = self._collect()
            metrics.QUEUE_DEPTH.set(self.inbox.qsize())
            if self.spool is not None and self.spool.pending():
                if items:
                    self._to_spool(items, acks)
                if time.monotonic() >= self._next_retry:
                    self._replay()
                continue
            if not items:
                continue
            while not self._write(items, acks):
                if self.spool is not None:
                    self._to_spool(items, acks)
                    break
                if self._stop.wait(self._pause()):
                    return  # not acked: the broker redelivers after restart

    def _collect(self) -> tuple[list[DecodedMessage], list[Callable[[], None]]]:
        items: list[DecodedMessage] = []
        acks: list[Callable[[], None]] = []
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return items, acks
        deadline = time.monotonic() + self.batch_max_age
        rows = 0
        msg: Inbound | None = first
        while msg is not None:
            d = decode_one(msg)
            items.append(d)
            if msg.ack is not None:
                acks.append(msg.ack)
            rows += len(d.uplink.values) if d.uplink is not None else 1
            if rows >= self.batch_max_rows:
                break
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    msg = self.inbox.get(timeout=remaining)
                except queue.Empty:
                    break
        return items, acks

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, connect_timeout=5)
        return self._conn

    def _reset_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _pause(self) -> float:
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max_s)
        self._next_retry = time.monotonic() + pause
        return pause

    # --- one batch ---------------------------------------------------------------------------
    def _store(self, items: list[DecodedMessage]) -> BatchResult:
        """Store with retries on deadlock; falls back to one message at a time on bad data."""
        for attempt in range(3):
            try:
                return store_decoded(self._connection(), items, clock_future_s=self.clock_future_s,
                                     clock_past_s=self.clock_past_s, redelivery_window_s=self.redelivery_window_s,
                                     block_key=self.block_key)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                metrics.WRITE_ERRORS.labels("deadlock").inc()
                if attempt == 2:
                    raise
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database is unreachable: spool, do not judge the data
            except Exception as exc:  # noqa: BLE001 - bad data (DataError, OverflowError, ...)
                metrics.WRITE_ERRORS.labels("data").inc()
                log.warning("ingest batch rejected by the database, storing one by one: %s",
                            str(exc).splitlines()[0])
                return self._store_one_by_one(items)
        raise AssertionError("unreachable")

    def _store_one_by_one(self, items: list[DecodedMessage]) -> BatchResult:
        total = BatchResult()
        for it in items:
            try:
                r = store_decoded(self._connection(), [it], clock_future_s=self.clock_future_s,
                                  clock_past_s=self.clock_past_s, redelivery_window_s=self.redelivery_window_s,
                                  block_key=self.block_key)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database is unreachable: spool, do not judge the data
            except Exception as exc:  # noqa: BLE001 - this message's data: keep it as a dead letter
                bad = DecodedMessage(it.source, it.topic, it.payload, it.received_at, None,
                                     f"database rejected: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}",
                                     device_id=it.device_id)
                r = store_decoded(self._connection(), [bad])
            for name in ("readings_written", "dead_letters", "quarantined", "readings_duplicate",
                         "uplinks_duplicate", "blocked"):
                setattr(total, name, getattr(total, name) + getattr(r, name))
        return total

    def _write(self, items: list[DecodedMessage], acks: list[Callable[[], None]]) -> bool:
        """Commit one batch and ack it; False when the database is unreachable."""
        t0 = time.perf_counter()
        try:
            result = self._store(items)
        except psycopg.Error as exc:
            self._failed(exc)
            return False
        self._committed(items, result, time.perf_counter() - t0)
        for ack in acks:
            ack()
        return True

    def _failed(self, exc: psycopg.Error) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        metrics.WRITE_ERRORS.labels("unavailable").inc()
        self.stats.errors.append(first)
        del self.stats.errors[:-20]
        log.warning("ingest batch commit failed: %s", first)
        self._reset_connection()

    def _committed(self, items: list[DecodedMessage], r: BatchResult, seconds: float) -> None:
        now = time.time()
        s = self.stats
        s.batches += 1
        s.messages += len(items)
        s.readings_written += r.readings_written
        s.readings_duplicate += r.readings_duplicate
        s.uplinks_duplicate += r.uplinks_duplicate
        s.dead_letters += r.dead_letters
        s.quarantined += r.quarantined
        s.blocked += r.blocked
        s.last_commit = now
        self._backoff = self.backoff_initial_s
        metrics.BATCHES.labels("committed").inc()
        metrics.BATCH_SIZE.observe(len(items))
        metrics.COMMIT_SECONDS.observe(seconds)
        metrics.READINGS_WRITTEN.inc(r.readings_written)
        metrics.READINGS_DUPLICATE.inc(r.readings_duplicate)
        metrics.UPLINKS_DUPLICATE.inc(r.uplinks_duplicate)
        metrics.DEAD_LETTERS.inc(r.dead_letters)
        metrics.QUARANTINED.inc(r.quarantined)
        metrics.LAST_COMMIT.set(now)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("ingest batch committed messages=%d readings_new=%d readings_dup=%d "
                      "uplinks_dup=%d dead=%d quarantined=%d commit_ms=%.1f queue=%d",
                      len(items), r.readings_written, r.readings_duplicate, r.uplinks_duplicate,
                      r.dead_letters, r.quarantined, seconds * 1000, self.inbox.qsize())
        if self.on_commit is not None:
            self.on_commit(items, now)

    # --- spool -------------------------------------------------------------------------------
    def _to_spool(self, items: list[DecodedMessage], acks: list[Callable[[], None]]) -> None:
        assert self.spool is not None
        while True:
            try:
                path = self.spool.append(items)
                break
            except OSError as exc:  # disk full: keep the batch, do not ack, try again
                metrics.WRITE_ERRORS.labels("spool").inc()
                log.warning("ingest spool write failed: %s", exc)
                if self._stop.wait(1.0):
                    return
        self.stats.spooled_batches += 1
        metrics.BATCHES.labels("spooled").inc()
        metrics.SPOOL_BATCHES.set(len(self.spool))
        log.warning("ingest batch spooled file=%s messages=%d", path.name, len(items))
        if self._next_retry <= time.monotonic():
            self._pause()
        for ack in acks:  # durable on disk: the broker may forget it
            ack()

    def _replay(self) -> None:
        """Replay spooled batches in order; stop at the first failure (backoff)."""
        assert self.spool is not None
        for path in self.spool.pending():
            items = self.spool.read(path)
            if items is None:
                continue
            t0 = time.perf_counter()
            try:
                result = self._store(items)
            except psycopg.Error as exc:
                self._failed(exc)
                self._pause()
                return
            self._committed(items, result, time.perf_counter() - t0)
            self.spool.remove(path)
            self.stats.replayed_batches += 1
            metrics.SPOOL_BATCHES.set(len(self.spool))
            log.info("ingest spool replayed file=%s messages=%d", path.name, len(items))
            if self._stop.is_set():
                return
        self._backoff = self.backoff_initial_s
        self._next_retry = 0.0

    def replay_spool(self) -> int:
        """Replay the spool now (used at start-up and by tests); returns batches left."""
        if self.spool is not None:
            self._replay()
        return self.spooled
