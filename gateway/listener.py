"""MQTT listener (paho-mqtt 2): subscribes, converts each message into an `Inbound` and hands it
to the bounded writer queue. The message is acknowledged (manual ack) only after its batch
committed. Connects as MQTT v5 with a large ReceiveMaximum and a session expiry; falls back to
3.1.1 (clean_session false) for brokers that only speak 3.1.1, such as the embedded amqtt."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.errors import InvalidPayload
from gateway.routing import TopicRouter
from ingest.writer import Inbound

log = logging.getLogger(__name__)


class MqttListener:
    def __init__(
        self,
        mqtt_url: str,
        inbox: queue.Queue[Inbound],
        *,
        client_id: str,
        router: TopicRouter | None = None,
        shared_group: str | None = None,
        receive_maximum: int = 65535,
        session_expiry_s: int = 3600,
        protocol: int = mqtt.MQTTv5,
    ) -> None:
        parts = urlsplit(mqtt_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.username = parts.username
        self.password = parts.password
        self.tls = parts.scheme == "mqtts"
        self.inbox = inbox
        self.client_id = client_id
        self.router = router or TopicRouter()
        self.shared_group = shared_group
        self.receive_maximum = receive_maximum
        self.session_expiry_s = session_expiry_s
        self.protocol = protocol
        self.connected = threading.Event()
        self.received = 0
        self._client: mqtt.Client | None = None

    def _make_client(self) -> mqtt.Client:
        kwargs: dict[str, object] = {}
        if self.protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = False
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
            manual_ack=True,
            **kwargs,
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        self._client = self._make_client()
        try:
            self._connect(self._client)
        except (ConnectionRefusedError, OSError):
            raise
        self._client.loop_start()
        if not self.connected.wait(3) and self.protocol == mqtt.MQTTv5:
            log.info("no MQTT v5 session within 3 s; falling back to MQTT 3.1.1")
            self._client.disconnect()
            self._client.loop_stop()
            self.protocol = mqtt.MQTTv311
            self._client = self._make_client()
            self._connect(self._client)
            self._client.loop_start()
            self.connected.wait(5)

    def _connect(self, client: mqtt.Client) -> None:
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
            client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        else:
            client.connect(self.host, self.port, keepalive=30)

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    # --- paho callbacks (paho's network thread): convert and enqueue only --------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        subs = [(t, 1) for t in self.router.subscriptions(self.shared_group)]
        client.subscribe(subs)
        self.connected.set()
        log.info("MQTT connected to %s:%d, subscribed to %s", self.host, self.port, [t for t, _ in subs])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.connected.clear()
        log.info("MQTT disconnected: %s", reason_code)

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        self.received += 1
        topic = message.topic
        try:
            decode = self.router.decoder_for(topic)
        except InvalidPayload as exc:
            error = exc.detail

            def decode(_payload: bytes, error: str = error):  # type: ignore[no-untyped-def]
                raise InvalidPayload(error)

        mid, qos = message.mid, message.qos

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        self.inbox.put(  # blocks when full: back-pressure onto the broker
            Inbound(source="mqtt", topic=topic, payload=bytes(message.payload),
                    received_at=datetime.now(UTC), decode=decode, ack=ack)
        )
