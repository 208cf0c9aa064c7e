"""Long-running parts of ingest: the scheduled jobs (`jobs(settings, db)`, collected by
core.runtime) and a stand-alone gateway process (MQTT listener + batch writer), used by the
benchmark and by tests that kill and restart a gateway:

    python -m ingest.worker [--client-id ID] [--shared-group G] [--latency-file PATH]

Settings come from the environment (CIVICAIR_*). SIGTERM/SIGINT stop it cleanly; on exit it
prints one JSON line with its writer statistics.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from core.jobs import Job
from core.settings import Settings

log = logging.getLogger(__name__)


def jobs(settings: Settings, db: Any) -> list[Job]:
    """Retention of raw readings, daily (idempotent: several processes may run it)."""
    from ingest.retention import apply_retention

    return [
        Job("ingest-retention", 24 * 3600,
            lambda: apply_retention(db.engine, settings.raw_retention_days), first_delay_s=60.0),
    ]


def make_router(settings: Settings) -> Any:
    from gateway.routing import TopicRouter

    from_settings = getattr(TopicRouter, "from_settings", None)
    if from_settings is not None:
        return from_settings(settings)
    return TopicRouter(direct_prefix=settings.direct_topic_prefix)


def start_gateway(
    settings: Settings,
    conninfo: str,
    *,
    client_id: str | None = None,
    shared_group: str | None = None,
    router: Any = None,
    on_commit: Callable[[list, float], None] | None = None,
) -> tuple[Any, Any]:
    """Start a batch writer and an MQTT listener feeding it; returns (listener, writer).
    The caller stops the listener first, then the writer."""
    from gateway.listener import MqttListener
    from ingest.writer import BatchWriter

    if not settings.mqtt_url:
        raise ValueError("CIVICAIR_MQTT_URL is required for a stand-alone gateway process")
    inbox: queue.Queue = queue.Queue(maxsize=settings.queue_max)
    writer = BatchWriter.from_settings(settings, conninfo, inbox, on_commit=on_commit)
    writer.replay_spool()
    writer.start()
    listener = MqttListener(
        settings.mqtt_url, inbox,
        client_id=client_id or settings.mqtt_client_id,
        router=router or make_router(settings),
        shared_group=shared_group if shared_group is not None else settings.mqtt_shared_group,
        receive_maximum=settings.mqtt_receive_maximum,
        session_expiry_s=settings.mqtt_session_expiry_s,
    )
    listener.start()
    return listener, writer


class LatencyRecorder:
    """Benchmark instrumentation: commit time minus the message's own `time` (set to its
    publish time by the benchmark), for every `every`-th message."""

    def __init__(self, every: int = 20) -> None:
        self.every = every
        self.count = 0
        self.latencies: list[tuple[float, float]] = []  # (message time, latency s)

    def __call__(self, items: list, committed_at: float) -> None:
        for it in items:
            self.count += 1
            if self.count % self.every == 0 and it.uplink is not None and it.uplink.time is not None:
                t = it.uplink.time.timestamp()
                self.latencies.append((t, committed_at - t))


def main(argv: list[str] | None = None) -> int:
    from core.db import libpq_url
    from core.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m ingest.worker")
    parser.add_argument("--client-id")
    parser.add_argument("--shared-group")
    parser.add_argument("--latency-file", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.database_url is None:
        print("CIVICAIR_DATABASE_URL is required for a stand-alone gateway process", file=sys.stderr)
        return 2
    recorder = LatencyRecorder() if args.latency_file else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    listener, writer = start_gateway(settings, libpq_url(settings.database_url.get_secret_value()),
                                     client_id=args.client_id, shared_group=args.shared_group,
                                     on_commit=recorder)
    print(json.dumps({"event": "started", "connected": listener.connected.is_set()}), flush=True)
    while not stop.wait(0.5):
        pass
    listener.pause()
    writer.stop()  # drains the queue and acks while still connected
    listener.stop()
    if recorder is not None and args.latency_file:
        args.latency_file.write_text(json.dumps(recorder.latencies))
    s = writer.stats
    print(json.dumps({"event": "stopped", "messages": s.messages, "readings_written": s.readings_written,
                      "readings_duplicate": s.readings_duplicate, "uplinks_duplicate": s.uplinks_duplicate,
                      "batches": s.batches,
                      "spooled": s.spooled_batches, "at": datetime.now().isoformat()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
