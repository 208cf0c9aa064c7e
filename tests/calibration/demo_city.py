"""The demo's city in a test database, seeded the way `civicair up --demo` seeds it: the simulator
registers its sensors and stations and publishes its backfill over MQTT in the real wire formats
(direct JSON, ChirpStack, TTS), and the real ingest pipeline (listener → batch writer) stores it."""

from __future__ import annotations

from dataclasses import dataclass

from civicair.core.db import Database, libpq_url
from civicair.core.settings import Settings
from civicair.demo.simulator import Simulator

from civicair.runtime import start_pipeline
from tests.conftest import wait_until


@dataclass(frozen=True)
class DemoCity:
    settings: Settings  # with this test's topic prefixes
    simulator: Simulator
    published: int


def seed_demo_city(settings: Settings, db: Database, mqtt_url: str, unique: str, *,
                   backfill_hours: int = 96) -> DemoCity:
    """Register the demo sensors and stations, publish the backfill and wait until the writer has
    stored every message. Topics are private to this test (several test runs share a broker)."""
    settings = settings.model_copy(update={
        "direct_topic_prefix": f"test/{unique}/civicair/v1/devices",
        "chirpstack_topic_prefix": f"test/{unique}/application",
        "tts_topic_prefix": f"test/{unique}/v3",
        "mqtt_client_id": f"demo-city-{unique}",
    })
    pipeline = start_pipeline(settings, libpq_url(db.url), mqtt_url)
    sim = Simulator(settings, db, mqtt_url, backfill_hours=backfill_hours)
    try:
        assert pipeline.listener.connected.wait(10), "listener did not connect"
        sim.register()
        sim._client = sim._connect()  # no API running: the HTTP-push sensors fall back to MQTT
        sim.backfill()
        wait_until(lambda: pipeline.writer.stats.messages >= sim.published, 120, interval=0.2,
                   message=f"the writer stored the {sim.published} backfill messages")
    finally:
        sim.stop()
        pipeline.stop()
    return DemoCity(settings, sim, sim.published)
