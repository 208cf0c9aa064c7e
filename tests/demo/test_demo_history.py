"""Issue 19 item 16: the demo's four days of bike history produce mobile cells (15-minute backfill
steps were longer than the 10-minute trip gap, so every point was a one-point trip that the end
buffers removed), and item 6: the demo's device credentials are random, not `cat_demo_<uid>`.
The backfill's own messages go through the real decoders and writer, then the mobile rollup and
the public read model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from civicair.core import tables
from civicair.core.security import hash_secret
from civicair.demo.simulator import Simulator
from civicair.gateway.routing import TopicRouter
from civicair.ingest.writer import Inbound, store_batch
from civicair.readmodel import mobile
from civicair.readmodel.params import TimeRange

from tests.seed import refresh_mobile

pytestmark = pytest.mark.db


class Capture:
    """Stands in for the paho client: keeps what the simulator publishes."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> Any:
        self.messages.append((topic, payload))


def test_the_demo_bike_history_produces_k_anonymous_mobile_cells(db, settings) -> None:
    sim = Simulator(settings, db, "mqtt://127.0.0.1:1", backfill_hours=96)
    sim.register()
    capture = Capture()
    sim._client = capture  # type: ignore[assignment]
    sim.backfill()
    bikes = [s.uid for s in sim.sensors if s.kind == "mobile"]
    bike_messages = [m for m in capture.messages if any(f"/{uid}/" in m[0] for uid in bikes)]
    assert len(bike_messages) > 10_000  # 6 bikes × 18 rides a day × 4 days × 40 points

    router = TopicRouter.from_settings(settings)
    now = datetime.now(UTC)
    raw = db.engine.raw_connection()
    try:
        for i in range(0, len(capture.messages), 2000):
            batch = [Inbound("mqtt", t, p, now, router.decoder_for(t)) for t, p in capture.messages[i:i + 2000]]
            result = store_batch(raw.driver_connection, batch)  # type: ignore[arg-type]
            assert result.dead_letters == 0 and result.quarantined == 0
    finally:
        raw.close()
    with db.engine.begin() as conn:
        run = refresh_mobile(conn, settings)
    assert run.trips >= 6 * 18 * 3  # whole rides, not one-point trips
    with db.engine.connect() as conn:
        span = TimeRange(datetime_from=now - timedelta(hours=97), datetime_to=now)
        cells = mobile.mobile_cells(conn, settings, "pm25", span)
        secrets = dict(conn.execute(sa.select(tables.devices.c.uid, tables.devices.c.token_hash)).all())
    assert len({c["period"]["datetime_from"] for c in cells}) >= 50  # most riding hours of the four days
    assert all(c["n_devices"] >= settings.k_anonymity for c in cells)
    # the tokens are random (the probe erased a demo device with `cat_demo_<uid>`)
    assert all(secrets[uid] != hash_secret(f"cat_demo_{uid}") for uid in secrets)
    assert all(secrets[uid] == hash_secret(sim.tokens[uid]) for uid in secrets)
    again = Simulator(settings, db, "mqtt://127.0.0.1:1")
    again.register()  # a restart issues new ones
    assert all(again.tokens[uid] != sim.tokens[uid] for uid in secrets)
