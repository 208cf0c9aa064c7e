"""Batch writer thread of the MQTT path: drains the listener's queue into batches, stores each
in one transaction (`ingest/store.py`), and acks its messages after the commit.

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
from pathlib import Path

import psycopg
from civicair.ingest import metrics
from civicair.ingest.spool import Spool
from civicair.ingest.store import (  # noqa: F401 - the writer's message types, imported from here too
    BatchResult,
    DecodedMessage,
    Inbound,
    Outcome,
    Quota,
    WriterConnection,
    decode_one,
    store_batch,
    store_decoded,
    store_resilient,
)

log = logging.getLogger(__name__)


@dataclass
class WriterStats:
    batches: int = 0
    messages: int = 0
    readings_written: int = 0
    readings_duplicate: int = 0
    uplinks_duplicate: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    refused: int = 0  # over a device's dead-letter / quarantine quota
    battery_reports: int = 0
    blocked: int = 0  # naming an erased device's hardware id: counted, not kept
    spooled_batches: int = 0
    replayed_batches: int = 0
    last_commit: float | None = None
    errors: list[str] = field(default_factory=list)


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
        quota: Quota | None = None,
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
        self.quota = quota
        self.stats = WriterStats()
        self._backoff = backoff_initial_s
        self._next_retry = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection = WriterConnection(conninfo)

    @classmethod
    def from_settings(cls, settings, conninfo: str, inbox: queue.Queue[Inbound], **kwargs) -> BatchWriter:
        return cls(conninfo, inbox, batch_max_rows=settings.batch_max_rows,
                   batch_max_age_ms=settings.batch_max_age_ms, clock_future_s=settings.clock_future_s,
                   clock_past_s=settings.clock_past_s,
                   redelivery_window_s=settings.mqtt_session_expiry_s + 600,
                   spool_dir=settings.ingest_spool_dir or Path(settings.data_dir) / "spool",
                   backoff_max_s=settings.ingest_retry_max_s, quota=Quota.from_settings(settings),
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
        self._connection.reset()

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

    def _pause(self) -> float:
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max_s)
        self._next_retry = time.monotonic() + pause
        return pause

    # --- one batch ---------------------------------------------------------------------------
    def _store(self, items: list[DecodedMessage]) -> BatchResult:
        return store_resilient(self._connection, items, clock_future_s=self.clock_future_s,
                               clock_past_s=self.clock_past_s, redelivery_window_s=self.redelivery_window_s,
                               quota=self.quota, block_key=self.block_key)

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
        self._connection.reset()

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
        s.refused += r.refused
        s.blocked += r.blocked
        s.battery_reports += r.battery_reports
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
