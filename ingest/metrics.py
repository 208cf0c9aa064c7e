"""Prometheus metrics of the ingest path (prometheus-client, default registry).

The listener and the writer update them; `GET /metrics` (api/app.py) renders the registry of
the process it runs in (`civicair up` runs everything in one process).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

MESSAGES_RECEIVED = Counter(
    "civicair_messages_received_total",
    "Messages stored (readings, dead letter or quarantine), by route; counted at commit", ["route"]
)
READINGS_WRITTEN = Counter("civicair_readings_written_total", "New readings committed")
READINGS_DUPLICATE = Counter(
    "civicair_readings_duplicate_total", "Readings already stored (re-delivery), not written twice"
)
UPLINKS_DUPLICATE = Counter(
    "civicair_uplinks_duplicate_total", "LoRaWAN duplicate uplinks (deduplication id or fCnt)"
)
DEAD_LETTERS = Counter("civicair_dead_letters_total", "Unparseable messages stored as dead letters")
QUARANTINED = Counter("civicair_quarantined_total", "Messages of unknown devices kept in quarantine")
KEPT_REFUSED = Counter(
    "civicair_kept_refused_total",
    "Messages not kept because their device's dead-letter or quarantine quota was full", ["table"]
)
BATCHES = Counter("civicair_batches_total", "Committed batches", ["outcome"])
BATCH_SIZE = Histogram(
    "civicair_batch_messages", "Messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
COMMIT_SECONDS = Histogram(
    "civicair_batch_commit_seconds", "Time to store and commit one batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("civicair_ingest_queue_depth", "Messages waiting in the writer queue")
SPOOL_BATCHES = Gauge("civicair_spool_batches", "Batches waiting in the on-disk spool")
SPOOL_BYTES = Gauge("civicair_spool_bytes", "Bytes waiting in the on-disk spool")
LAST_COMMIT = Gauge("civicair_last_commit_timestamp_seconds", "Unix time of the last committed batch")
WRITE_ERRORS = Counter("civicair_write_errors_total", "Failed batch commits", ["kind"])
MQTT_CONNECTED = Gauge("civicair_mqtt_connected", "1 while the MQTT listener is connected")
MQTT_TAKEOVERS = Counter("civicair_mqtt_session_takeovers_total",
                         "Times another client took this gateway's MQTT session over (same client id)")


def render() -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text exposition."""
    return generate_latest(), CONTENT_TYPE_LATEST
