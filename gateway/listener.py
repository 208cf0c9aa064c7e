"""MQTT listener (paho-mqtt 2): subscribes, converts each message into an `Inbound` and hands it
to the bounded writer queue. Delivery (docs/storage.md#delivery-guarantees):

- QoS 1 subscriptions on a persistent session; the message is acknowledged (manual ack) only
  after its batch committed (or was spooled to disk). Acks are tied to the connection they came
  from: after a reconnect the broker re-sends what was not acked, and a stale ack is dropped
  rather than acking another message that happens to reuse the packet id.
- MQTT v5 with a large ReceiveMaximum and a SessionExpiryInterval, so thousands of messages
  can wait for their batch commit (with 3.1.1 Mosquitto allows only 20 in flight). Brokers that
  only speak 3.1.1, such as the embedded amqtt (which never answers a v5 CONNECT), get a 3.1.1
  connection with clean_session false after `v5_probe_s`.
- Reconnects with capped exponential backoff (paho's reconnect delay, `reconnect_min_s` doubling
  to `reconnect_max_s`).
- Back-pressure: the queue is bounded; when it is full the paho thread blocks, stops reading
  the socket, and the broker keeps the rest.
- `shared_group` subscribes through `$share/<group>/…`, so several gateway processes split the
  load of one subscription.
- Session takeover: another client connected with this client id. A broker that says so (MQTT
  v5 DISCONNECT 0x8E "Session taken over") gets an error log and no reconnect, so that two
  clients with one id do not take the session (and its queued messages) from each other in
  turn; `taken_over` is set; restart with another client id. A broker that only closes the
  socket (Mosquitto 2.0.11, MQTT 3.1.1): `QUICK_DROPS` drops within a minute, each less than
  `QUICK_S` after connecting, are logged as a probable takeover and reconnects slow down to the
  longest backoff until a connection lasts (docs/storage.md#gateway-client-ids).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from civicair.core.domain import DeviceRef
from civicair.core.errors import InvalidPayload
from civicair.gateway.routing import TopicRouter
from civicair.ingest import metrics
from civicair.ingest.writer import Inbound
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E  # MQTT v5 DISCONNECT reason code
QUICK_S = 10.0  # a drop this soon after connecting counts as quick
QUICK_DROPS = 3  # quick drops within a minute: a probable takeover


def _undecodable(error: str) -> Callable[[bytes], object]:
    def decode(_payload: bytes) -> object:
        raise InvalidPayload(error)

    return decode


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
        keepalive_s: int = 30,
        reconnect_min_s: float = 1,
        reconnect_max_s: float = 30,
        v5_probe_s: float = 3.0,
        max_inflight: int = 65535,
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
        self.keepalive_s = keepalive_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.v5_probe_s = v5_probe_s
        self.max_inflight = max_inflight
        self.connected = threading.Event()
        self.taken_over = threading.Event()
        self.takeover_suspected = threading.Event()
        self._connected_at = 0.0
        self._quick_drops: list[float] = []
        self.received = 0
        self._generation = 0  # incremented at every (re)connect; acks of older ones are dropped
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._connack = threading.Event()  # a CONNACK arrived (the broker speaks our protocol)
        self._tcp_failed = threading.Event()  # the broker was unreachable (not merely silent)
        self._client: mqtt.Client | None = None
        self._decoders: dict[str, tuple[Callable[[bytes], object], str, DeviceRef | None]] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        v5 = self.protocol == mqtt.MQTTv5
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTProtocolVersion.MQTTv5 if v5 else mqtt.MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
            clean_session=None if v5 else False,  # v5: clean_start=False is given at connect
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=self.reconnect_min_s,  # type: ignore[arg-type]
                                   max_delay=self.reconnect_max_s)  # type: ignore[arg-type]  # paho accepts floats
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = lambda *_: self._tcp_failed.set()
        client.on_message = self._on_message
        return client

    def _connect_async(self, client: mqtt.Client) -> None:
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
            client.connect_async(self.host, self.port, keepalive=self.keepalive_s,
                                 clean_start=False, properties=props)
        else:
            client.connect_async(self.host, self.port, keepalive=self.keepalive_s)

    def start(self, wait_s: float | None = None) -> None:
        """Connect in the background (paho keeps reconnecting with backoff). Waits up to
        `wait_s` (default: the v5 probe time) for the first connection; never raises for an
        unreachable broker."""
        self._stopping.clear()
        self._paused.clear()
        self._tcp_failed.clear()
        self._connack.clear()
        self._client = self._make_client()
        self._connect_async(self._client)
        self._client.loop_start()
        if self._connack.wait(self.v5_probe_s if wait_s is None else wait_s):
            self.connected.wait(self.v5_probe_s if wait_s is None else wait_s)
            return
        if self.protocol == mqtt.MQTTv5 and not self._tcp_failed.is_set():
            log.info("MQTT broker %s:%d did not answer a v5 CONNECT; using MQTT 3.1.1",
                     self.host, self.port)
            self._client.loop_stop()
            self._client.disconnect()
            self.protocol = mqtt.MQTTv311
            self._client = self._make_client()
            self._connect_async(self._client)
            self._client.loop_start()
            self.connected.wait(self.v5_probe_s if wait_s is None else wait_s)

    def pause(self) -> None:
        """Stop taking new messages (they stay un-acked at the broker and come back on the next
        session) while the connection stays up, so the writer can drain and ack what it has."""
        self._paused.set()

    def stop(self) -> None:
        self._paused.set()
        self._stopping.set()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)

    # --- paho callbacks (paho's network thread): convert and enqueue only --------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect refused by %s:%d: %s", self.host, self.port, reason_code)
            return
        self._generation += 1
        # v5: retained messages only for a subscription the session did not have yet (not again at
        # every reconnect); 3.1.1 brokers re-send them, and the writer recognises the copies.
        qos: int | SubscribeOptions = (SubscribeOptions(qos=1, retainHandling=1) if self.protocol == mqtt.MQTTv5
                                       else 1)
        subs = [(t, qos) for t in self.router.subscriptions(self.shared_group)]
        client.subscribe(subs)
        self._connack.set()
        self._connected_at = time.monotonic()
        if flags.session_present:  # the subscriptions exist already: ready now
            self.connected.set()
            metrics.MQTT_CONNECTED.set(1)
        # else `connected` is set on SUBACK, so nothing published after it is missed
        log.info("MQTT connected to %s:%d (%s, session present: %s), subscribed to %s",
                 self.host, self.port, "v5" if self.protocol == mqtt.MQTTv5 else "3.1.1",
                 flags.session_present, [t for t, _ in subs])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.warning("MQTT subscription refused by %s:%d: %s", self.host, self.port, failed)
        self.connected.set()
        metrics.MQTT_CONNECTED.set(1)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        metrics.MQTT_CONNECTED.set(0)
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER and not self._stopping.is_set():
            self.taken_over.set()
            metrics.MQTT_TAKEOVERS.inc()
            log.error("MQTT session of client id %r TAKEN OVER by another client on %s:%d: this gateway stops "
                      "receiving (it would take the session back and forth, and the other client gets the "
                      "messages queued for it). Give each gateway its own CIVICAIR_MQTT_CLIENT_ID and restart.",
                      self.client_id, self.host, self.port)
            client.disconnect()  # no reconnect: paho's loop ends
            return
        if not self._stopping.is_set() and self._connected_at:
            self._count_drop(client)
        if not self._stopping.is_set():
            log.warning("MQTT disconnected from %s:%d: %s; reconnecting with backoff",
                        self.host, self.port, reason_code)

    def _count_drop(self, client: mqtt.Client) -> None:
        now = time.monotonic()
        if now - self._connected_at >= 60:  # that connection lasted: whatever it was is over
            self._quick_drops.clear()
            if self.takeover_suspected.is_set():
                self.takeover_suspected.clear()
                client.reconnect_delay_set(min_delay=self.reconnect_min_s,  # type: ignore[arg-type]
                                           max_delay=self.reconnect_max_s)  # type: ignore[arg-type]
            return
        if now - self._connected_at < QUICK_S:
            self._quick_drops = [t for t in self._quick_drops if now - t < 60] + [now]
        if len(self._quick_drops) >= QUICK_DROPS and not self.takeover_suspected.is_set():
            self.takeover_suspected.set()
            metrics.MQTT_TAKEOVERS.inc()
            log.error("MQTT session of client id %r lost %d times within a minute right after connecting to "
                      "%s:%d: another client is PROBABLY USING THE SAME CLIENT ID (session takeover; it gets "
                      "the messages queued for this gateway). Reconnecting only every %.0f s; give each gateway "
                      "its own CIVICAIR_MQTT_CLIENT_ID.", self.client_id, len(self._quick_drops), self.host,
                      self.port, self.reconnect_max_s)
            client.reconnect_delay_set(min_delay=self.reconnect_max_s,  # type: ignore[arg-type]
                                       max_delay=self.reconnect_max_s)  # type: ignore[arg-type]

    def _decoder(self, topic: str) -> tuple[Callable[[bytes], object], str, DeviceRef | None]:
        """(decoder, source route, device the topic names) of a topic, cached per topic."""
        cached = self._decoders.get(topic)
        if cached is None:
            decode: Callable[[bytes], object]
            try:
                decode = self.router.decoder_for(topic)
            except InvalidPayload as exc:
                decode = _undecodable(exc.detail)
            cached = (decode, self.router.source_for(topic), self.router.ref_for(topic))
            if len(self._decoders) < 100_000:
                self._decoders[topic] = cached
        return cached

    def _on_message(self, client, userdata, message) -> None:
        if self._paused.is_set():
            return  # not acked: the broker sends it again on the next session
        self.received += 1
        topic = message.topic
        decode, source, ref = self._decoder(topic)
        mid, qos, generation = message.mid, message.qos, self._generation

        def ack() -> None:
            if qos > 0 and generation == self._generation:
                client.ack(mid, qos)

        item = Inbound(source=source, topic=topic, payload=message.payload, received_at=datetime.now(UTC),
                       decode=decode, ack=ack, redelivered=bool(message.dup),  # type: ignore[arg-type]
                       retained=bool(message.retain), ref=ref)
        while True:  # bounded queue: block (back-pressure onto the broker) but stay stoppable
            try:
                self.inbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._stopping.is_set():
                    return  # not acked: redelivered after restart
