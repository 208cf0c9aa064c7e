"""The demo simulator speaks every ingest path in the real wire formats (decoded by the router)."""

from __future__ import annotations

from datetime import UTC, datetime

from civicair.core.domain import RefScheme
from civicair.demo.simulator import Simulator, dev_eui
from civicair.gateway.routing import TopicRouter


def test_simulated_lorawan_messages_decode(db, settings, mqtt_url) -> None:
    sim = Simulator(settings, db, mqtt_url)
    router = TopicRouter.from_settings(settings)
    by_path = {s.path: s for s in sim.sensors}
    assert set(by_path) == {"mqtt", "chirpstack", "tts", "sensor_community", "http"}
    t = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    cs = router.decode(*sim.lorawan_message(by_path["chirpstack"], t))
    assert cs.device.scheme is RefScheme.DEV_EUI and cs.device.value == dev_eui(by_path["chirpstack"].uid)
    assert cs.link.ns_time == t and {v.name for v in cs.values} == {"pm25", "pm10", "temperature", "humidity", "pressure"}
    tts = router.decode(*sim.lorawan_message(by_path["tts"], t))
    assert tts.device.scheme is RefScheme.TTS_ID and tts.link.ns_time == t and len(tts.values) == 5
