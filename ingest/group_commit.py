"""Group commit for synchronous writers (the HTTP push endpoints, docs/storage.md#http-push-group-commit).

Each caller submits the decoded messages of one request and waits for their commit; one thread
stores whatever has been submitted meanwhile as ONE transaction (`store.store_resilient`: same
rules, duplicate checks, quotas and bad-data fallback as the MQTT writer), then hands each caller
the outcome of its own messages. A request is answered only after the transaction holding its
messages committed, exactly as when it had a transaction of its own; under concurrency the
per-transaction costs (round trips, COPY set-up, the WAL flush at commit) are shared.

The thread waits for nothing: it stores what is there as soon as the previous transaction
ended, so a lone request is not delayed.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

import psycopg
from civicair.core.errors import ServiceUnavailable
from civicair.ingest import metrics
from civicair.ingest.store import (
    BatchResult,
    DecodedMessage,
    Outcome,
    WriterConnection,
    store_resilient,
)

log = logging.getLogger(__name__)

_STOP = object()


def _part(result: BatchResult, start: int, end: int) -> BatchResult:
    """The result of messages start..end of a combined batch."""
    outcomes = result.outcomes[start:end]
    readings = result.item_readings[start:end]
    return BatchResult(
        readings_written=sum(readings),
        dead_letters=outcomes.count(Outcome.DEAD_LETTER),
        quarantined=outcomes.count(Outcome.QUARANTINED),
        uplinks_duplicate=outcomes.count(Outcome.DUPLICATE),
        refused=outcomes.count(Outcome.REFUSED),
        outcomes=outcomes,
        item_readings=readings,
        errors={i - start: e for i, e in result.errors.items() if start <= i < end},
    )


class GroupCommitter:
    def __init__(self, conninfo: str, *, max_messages: int = 2000, **store_options: Any) -> None:
        self.conninfo = conninfo
        self.max_messages = max_messages
        self.store_options = store_options
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._connection = WriterConnection(conninfo)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.transactions = 0
        self.messages = 0

    def submit(self, items: list[DecodedMessage]) -> Future[BatchResult]:
        """Queue one caller's messages; the future resolves to their result after the commit,
        or raises ServiceUnavailable when the database is unreachable (nothing kept)."""
        future: Future[BatchResult] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="push-group-commit", daemon=True)
                self._thread.start()
        self._queue.put((items, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        self._connection.reset()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is _STOP:
                return
            waiting = [entry]
            size = len(entry[0])
            stop = False
            while size < self.max_messages:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                waiting.append(more)
                size += len(more[0])
            self._commit(waiting)
            if stop:
                return

    def _store(self, items: list[DecodedMessage]) -> BatchResult:
        """Once more on a fresh connection when the kept one turns out broken (the database
        restarted since the last commit: nothing tells until it is used). A repeat is harmless:
        the writes are idempotent, and the messages keep their arrival times."""
        fresh = not self._connection.open
        try:
            return store_resilient(self._connection, items, **self.store_options)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if fresh:
                raise
            self._connection.reset()
            return store_resilient(self._connection, items, **self.store_options)

    def _commit(self, waiting: list[tuple[list[DecodedMessage], Future[BatchResult]]]) -> None:
        items = [m for batch, _ in waiting for m in batch]
        try:
            result = self._store(items)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._connection.reset()
            metrics.WRITE_ERRORS.labels("unavailable").inc()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("push commit failed, database unavailable: %s", first)
            for _, future in waiting:
                future.set_exception(ServiceUnavailable("database unavailable, retry later"))
            return
        except BaseException as exc:  # noqa: BLE001 - a bug: the callers must hear of it, not hang
            self._connection.reset()
            log.exception("push commit failed")
            for _, future in waiting:
                future.set_exception(exc)
            return
        self.transactions += 1
        self.messages += len(items)
        metrics.BATCHES.labels("committed").inc()
        metrics.BATCH_SIZE.observe(len(items))
        metrics.READINGS_WRITTEN.inc(result.readings_written)
        metrics.DEAD_LETTERS.inc(result.dead_letters)
        metrics.QUARANTINED.inc(result.quarantined)
        start = 0
        for batch, future in waiting:
            future.set_result(_part(result, start, start + len(batch)))
            start += len(batch)
