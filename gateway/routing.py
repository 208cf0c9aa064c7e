"""Which format a message is, from its MQTT topic (pure).

    {chirpstack_prefix}/{application_id}/device/{dev_eui}/event/up      ChirpStack v4 uplink
    {chirpstack_prefix}/{application_id}/device/{dev_eui}/event/status  ChirpStack v4 battery
    {tts_prefix}/{app}@{tenant}/devices/{device_id}/up                  The Things Stack v3
    {direct_prefix}/{device_uid}/up                                     direct civicair JSON

A prefix of None disables that integration. `TopicRouter.from_settings` builds it from the
`*_enabled` / `*_topic_prefix` settings; the bare constructor enables only direct JSON (tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.errors import InvalidPayload
from civicair.gateway.formats.chirpstack import (
    Marshaler,
    decode_chirpstack_status,
    decode_chirpstack_uplink,
)
from civicair.gateway.formats.direct import decode_direct_json
from civicair.gateway.formats.tts import decode_tts_uplink

if TYPE_CHECKING:
    from civicair.core.settings import Settings


_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def _rest(topic: str, prefix: str | None) -> list[str] | None:
    if prefix is None or not topic.startswith(prefix + "/"):
        return None
    return topic[len(prefix) + 1:].split("/")


@dataclass(frozen=True)
class TopicRouter:
    direct_prefix: str | None = "civicair/v1/devices"
    chirpstack_prefix: str | None = None
    tts_prefix: str | None = None
    chirpstack_marshaler: Marshaler = "auto"

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicRouter:
        return cls(
            direct_prefix=settings.direct_topic_prefix if settings.direct_enabled else None,
            chirpstack_prefix=settings.chirpstack_topic_prefix if settings.chirpstack_enabled else None,
            tts_prefix=settings.tts_topic_prefix if settings.tts_enabled else None,
            chirpstack_marshaler=settings.chirpstack_marshaler,
        )

    def subscriptions(self, shared_group: str | None = None) -> list[str]:
        subs: list[str] = []
        if self.chirpstack_prefix is not None:
            subs += [f"{self.chirpstack_prefix}/+/device/+/event/up",
                     f"{self.chirpstack_prefix}/+/device/+/event/status"]
        if self.tts_prefix is not None:
            subs.append(f"{self.tts_prefix}/+/devices/+/up")
        if self.direct_prefix is not None:
            subs.append(f"{self.direct_prefix}/+/up")
        if shared_group:
            subs = [f"$share/{shared_group}/{s}" for s in subs]
        return subs

    def source_for(self, topic: str) -> str:
        """The `Route` value a topic comes from ("mqtt" when unknown)."""
        try:
            return self._match(topic)[0]
        except InvalidPayload:
            return "mqtt"

    def ref_for(self, topic: str) -> DeviceRef | None:
        """The device a topic names, as far as it does (kept with a dead letter from it)."""
        try:
            return self._match(topic)[2]
        except InvalidPayload:
            return None

    def _match(self, topic: str) -> tuple[str, Callable[[bytes], Uplink], DeviceRef | None]:
        parts = _rest(topic, self.chirpstack_prefix)
        if parts and len(parts) == 5 and parts[1] == "device" and parts[3] == "event" and all(parts):
            eui, kind, m = parts[2], parts[4], self.chirpstack_marshaler
            ref = DeviceRef(RefScheme.DEV_EUI, eui.lower()) if _HEX16.fullmatch(eui) else None
            if kind == "up":
                return "chirpstack", lambda p: decode_chirpstack_uplink(
                    p, topic=topic, topic_dev_eui=eui, marshaler=m), ref
            if kind == "status":
                return "chirpstack", lambda p: decode_chirpstack_status(
                    p, topic=topic, topic_dev_eui=eui, marshaler=m), ref
        parts = _rest(topic, self.tts_prefix)
        if parts and len(parts) == 4 and parts[1] == "devices" and parts[3] == "up" and all(parts):
            device_id = parts[2]
            return "tts", lambda p: decode_tts_uplink(p, topic=topic, topic_device_id=device_id), (
                DeviceRef(RefScheme.TTS_ID, device_id) if len(device_id) <= 64 else None)
        parts = _rest(topic, self.direct_prefix)
        if parts and len(parts) == 2 and parts[1] == "up" and parts[0]:
            uid = parts[0]
            return "mqtt", lambda p: decode_direct_json(uid, p, topic=topic), DeviceRef(RefScheme.CIVICAIR, uid)
        raise InvalidPayload(f"no format for topic {topic!r}")

    def decoder_for(self, topic: str) -> Callable[[bytes], Uplink]:
        return self._match(topic)[1]

    def decode(self, topic: str, payload: bytes) -> Uplink:
        return self.decoder_for(topic)(payload)
