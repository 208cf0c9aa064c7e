"""`civicair device check`: wait for a device's first uplink and, when nothing arrives, name the
most likely reason. `diagnose` is pure (rows in, verdict out); `run_check` polls the database."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from civicair.core.domain import QUANTITY_BY_CODE
from civicair.core.settings import Settings
from civicair.firmware_tools import repository as repo
from rich.console import Console
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class DeviceIds:
    uid: str
    transport: str
    expected_topic: str
    dev_eui: str | None = None
    chip_id: str | None = None
    tts_device_id: str | None = None

    def values(self) -> list[str]:
        return [v for v in (self.uid, self.dev_eui, self.chip_id, self.tts_device_id) if v]


@dataclass(frozen=True)
class Seen:
    """A quarantined or dead-lettered message (pure view of the row)."""

    received_at: datetime
    source: str
    topic: str
    payload: bytes
    ref_value: str | None = None  # quarantine: the id the message named
    error: str | None = None  # dead letter: why it could not be parsed


@dataclass
class Report:
    arrived: bool
    verdict: str  # arrived | quarantined_other_id | dead_lettered | wrong_topic | nothing
    message: str
    details: list[str] = field(default_factory=list)

    def render(self) -> str:
        head = ("[bold green]OK[/] " if self.arrived else "[bold red]no data[/] ") + self.message
        return "\n".join([head, *("  " + d for d in self.details)])


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (ids are short)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _reversed_eui(eui: str) -> str:
    return bytes.fromhex(eui)[::-1].hex() if len(eui) == 16 else eui


def looks_like(ids: DeviceIds, other: str) -> str | None:
    """Why `other` is probably this device under a wrong id, or None."""
    o = other.strip().lower().replace(":", "").replace("-", "") if len(other) <= 24 else other.lower()
    if ids.dev_eui:
        if o == _reversed_eui(ids.dev_eui):
            return f"DevEUI {other} is yours with the bytes reversed (LSB/MSB order in the firmware)"
        if o == ids.dev_eui:
            return f"{other} is your DevEUI written differently"
        if len(o) == 16 and _distance(o, ids.dev_eui) <= 2:
            return f"DevEUI {other} differs from yours ({ids.dev_eui}) by a typo"
    if ids.chip_id:
        num = ids.chip_id.split("-", 1)[-1]
        if other.lower() != ids.chip_id and other.lower().split("-", 1)[-1] == num:
            return f"chip id {other} has your chip number with another prefix (registered {ids.chip_id})"
    if other != ids.uid and _distance(other.lower(), ids.uid) <= 2:
        return f"device id {other} differs from yours ({ids.uid}) by a typo"
    return None


def diagnose(ids: DeviceIds, readings: int, quarantined: list[Seen], dead: list[Seen]) -> Report:
    if readings:
        return Report(True, "arrived", f"{readings} readings arrived from {ids.uid}")
    for q in quarantined:
        why = looks_like(ids, q.ref_value or "")
        if why:
            return Report(False, "quarantined_other_id",
                          f"a message was quarantined under another id: {why}",
                          [f"at {q.received_at:%Y-%m-%d %H:%M:%S} via {q.source} on topic {q.topic!r}",
                           "fix the id in the device (or its network server) and send again"])
    mine = [x for x in dead if any(v in x.topic or v.encode() in x.payload for v in ids.values())]
    for x in mine:
        if x.error and "topic" in x.error and x.topic != ids.expected_topic:
            return Report(False, "wrong_topic",
                          f"your device published on the wrong topic {x.topic!r}",
                          [f"expected {ids.expected_topic!r}", f"gateway said: {x.error}"])
    if mine:
        x = mine[0]
        return Report(False, "dead_lettered", "your device's message arrived but could not be read",
                      [f"at {x.received_at:%Y-%m-%d %H:%M:%S} on {x.topic!r}: {x.error}",
                       f"first bytes: {x.payload[:48]!r}"])
    for q in quarantined:
        if ids.uid in q.topic and q.ref_value != ids.uid:
            return Report(False, "wrong_topic", f"a message on {q.topic!r} named id {q.ref_value!r}",
                          [f"expected topic {ids.expected_topic!r}"])
    hints = {
        "mqtt": f"check WiFi, the broker address and that the device publishes on {ids.expected_topic!r} "
                "with its MQTT username and password",
        "lorawan": "check the device joined (network server 'LoRaWAN frames' page), the keys, and that "
                   "the network server integration forwards to civicair",
        "http": "check WiFi and the 'send to own API' host/path/port and the device token",
    }
    details = [hints.get(ids.transport, "")]
    if quarantined:
        details.append(f"{len(quarantined)} message(s) from unknown ids arrived meanwhile: "
                       + ", ".join(sorted({q.ref_value or '?' for q in quarantined})[:5]))
    return Report(False, "nothing", "nothing arrived from this device", details)


def _gather(engine: Engine, device_id: int, since: datetime) -> tuple[int, list[Seen], list[Seen]]:
    with engine.connect() as conn:
        n = repo.readings_count_since(conn, device_id, since)
        q = [Seen(r.received_at, r.source, r.topic, bytes(r.payload), ref_value=r.ref_value)
             for r in repo.quarantined_since(conn, since)]
        dl = [Seen(r.received_at, r.source, r.topic, bytes(r.payload), error=r.error)
              for r in repo.dead_letters_since(conn, since)]
    return n, q, dl


def run_check(engine: Engine, settings: Settings, uid: str, *, wait_s: float, since_minutes: float = 60,
              console: Console | None = None, poll_s: float = 1.0) -> Report:
    from civicair.firmware_tools.service import device_by_uid, mqtt_topic

    with engine.connect() as conn:
        row = device_by_uid(conn, uid)
        since = datetime.now(UTC) - timedelta(minutes=since_minutes)
    ids = DeviceIds(uid=row.uid, transport=row.transport, expected_topic=mqtt_topic(settings, row.uid),
                    dev_eui=row.dev_eui, chip_id=row.chip_id, tts_device_id=row.tts_device_id)
    console = console or Console(stderr=True)
    deadline = time.monotonic() + wait_s
    with console.status(f"waiting for the first uplink of {uid} (up to {wait_s:.0f} s)…"):
        while True:
            n, q, dl = _gather(engine, row.id, since)
            report = diagnose(ids, n, q, dl)
            if report.arrived or time.monotonic() >= deadline:
                break
            time.sleep(poll_s)
    if report.arrived:
        with engine.connect() as conn:
            latest = repo.latest_readings(conn, row.id, since, limit=8)
        report.details = [
            f"{r.time:%Y-%m-%d %H:%M:%S} {QUANTITY_BY_CODE[r.quantity].name if r.quantity in QUANTITY_BY_CODE else r.quantity}"
            f" = {r.value:g}" + (f" (flags {r.flags})" if r.flags else "")
            for r in latest
        ]
    return report
