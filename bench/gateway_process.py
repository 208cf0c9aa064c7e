"""A stand-alone gateway process (MQTT listener + batch writer, wired by `civicair.runtime`)
for the ingest benchmark and for tests that kill and restart a gateway:

    python -m civicair.bench.gateway_process [--client-id ID] [--shared-group G] [--latency-file PATH]

Settings come from the environment (CIVICAIR_*). SIGTERM/SIGINT stop it cleanly; it prints one
JSON line when started and one with its writer statistics on exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from civicair.core.db import libpq_url
from civicair.core.settings import load_settings

from civicair.runtime import start_pipeline


class LatencyRecorder:
    """Commit time minus the message's own `time` (set to its publish time by the benchmark),
    for every `every`-th message."""

    def __init__(self, every: int = 20) -> None:
        self.every = every
        self.count = 0
        self.latencies: list[tuple[float, float]] = []  # (message time, latency s)

    def __call__(self, items: list[Any], committed_at: float) -> None:
        for it in items:
            self.count += 1
            if self.count % self.every == 0 and it.uplink is not None and it.uplink.time is not None:
                t = it.uplink.time.timestamp()
                self.latencies.append((t, committed_at - t))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civicair.bench.gateway_process")
    parser.add_argument("--client-id")
    parser.add_argument("--shared-group")
    parser.add_argument("--latency-file", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.database_url is None or settings.mqtt_url is None:
        print("CIVICAIR_DATABASE_URL and CIVICAIR_MQTT_URL are required for a stand-alone gateway process",
              file=sys.stderr)
        return 2
    recorder = LatencyRecorder() if args.latency_file else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pipeline = start_pipeline(settings, libpq_url(settings.database_url.get_secret_value()), settings.mqtt_url,
                              client_id=args.client_id, shared_group=args.shared_group, on_commit=recorder)
    print(json.dumps({"event": "started", "connected": pipeline.listener.connected.is_set()}), flush=True)
    while not stop.wait(0.5):
        pass
    pipeline.stop()  # drains the queue and acks while still connected
    if recorder is not None and args.latency_file:
        args.latency_file.write_text(json.dumps(recorder.latencies))
    s = pipeline.writer.stats
    print(json.dumps({"event": "stopped", "messages": s.messages, "readings_written": s.readings_written,
                      "readings_duplicate": s.readings_duplicate, "uplinks_duplicate": s.uplinks_duplicate,
                      "batches": s.batches,
                      "spooled": s.spooled_batches, "at": datetime.now().isoformat()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
