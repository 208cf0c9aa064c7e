"""Which format a message is, from its MQTT topic (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.domain import Uplink
from core.errors import InvalidPayload
from gateway.formats.direct import decode_direct_json


@dataclass(frozen=True)
class TopicRouter:
    direct_prefix: str = "civicair/v1/devices"

    def subscriptions(self, shared_group: str | None = None) -> list[str]:
        subs = [f"{self.direct_prefix}/+/up"]
        if shared_group:
            subs = [f"$share/{shared_group}/{s}" for s in subs]
        return subs

    def decoder_for(self, topic: str) -> Callable[[bytes], Uplink]:
        prefix = self.direct_prefix + "/"
        if topic.startswith(prefix) and topic.endswith("/up"):
            uid = topic[len(prefix):-3]
            if uid and "/" not in uid:
                return lambda payload: decode_direct_json(uid, payload, topic=topic)
        raise InvalidPayload(f"no format for topic {topic!r}")

    def decode(self, topic: str, payload: bytes) -> Uplink:
        return self.decoder_for(topic)(payload)
