"""Store one batch of messages in one transaction: decode → resolve → normalise → write
(docs/storage.md#batching). Used by the MQTT writer thread, the HTTP push endpoints, and the
quarantine and dead-letter replays alike.

Every message ends in exactly one of the outcomes of `Outcome` (docs/formats.md#nothing-dropped):
stored (readings, an uplink row or a battery report), duplicate, quarantined, dead letter, or
refused when its device's dead-letter or quarantine quota is full (counted in `kept_overflow`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import psycopg
from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.errors import InvalidPayload
from civicair.ingest import metrics
from civicair.ingest import repository as repo
from civicair.ingest.normalise import canonical_name, readings_rows

log = logging.getLogger(__name__)

# Frame counters are compared on network-server time within this window (docs/formats.md#duplicates)
FCNT_WINDOW = timedelta(minutes=10)
# A retained message is compared with every stored uplink of its device (no window)
SINCE_EVER = datetime(1, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as it arrived, before decoding. `ack` is called after its batch commits.
    `ref` is the device the transport names (the topic's, or the token's of an HTTP push), kept
    with a dead letter when the message cannot be decoded."""

    source: str
    topic: str
    payload: bytes
    received_at: datetime
    decode: Callable[[bytes], Uplink]
    ack: Callable[[], None] | None = None
    redelivered: bool = False  # MQTT DUP flag: the broker sent it before, unacknowledged
    retained: bool = False  # MQTT retain flag: sent from the broker's retained store on subscribe
    ref: DeviceRef | None = None


class DecodedMessage(NamedTuple):
    """An `Inbound` after decoding: either an uplink or the decoding error. Picklable (spool;
    fields are only ever appended, with defaults, so older spool files still load).
    A NamedTuple: one is built per message on the hot path (a frozen dataclass costs more)."""

    source: str
    topic: str
    payload: bytes
    received_at: datetime
    uplink: Uplink | None
    error: str | None = None
    redelivered: bool = False
    retained: bool = False
    ref: DeviceRef | None = None


class Outcome(enum.StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    DEAD_LETTER = "dead_letter"
    REFUSED = "refused"  # the device's dead-letter or quarantine quota is full
    BLOCKED = "blocked"  # names an erased device's blocked hardware id: counted, not kept


@dataclass(frozen=True, slots=True)
class Quota:
    """Most dead letters and quarantine rows kept per device (docs/formats.md#quotas-and-retention)."""

    dead_letter_rows: int
    dead_letter_bytes: int
    quarantine_rows: int
    quarantine_bytes: int

    @classmethod
    def from_settings(cls, settings) -> Quota:
        return cls(settings.dead_letter_quota_rows, settings.dead_letter_quota_bytes,
                   settings.quarantine_quota_rows, settings.quarantine_quota_bytes)


@dataclass
class BatchResult:
    readings_written: int = 0
    dead_letters: int = 0
    quarantined: int = 0
    readings_duplicate: int = 0
    uplinks_duplicate: int = 0
    refused: int = 0
    battery_reports: int = 0
    blocked: int = 0  # messages naming an erased device's hardware id: counted, not kept
    outcomes: list[Outcome] = field(default_factory=list)  # one per message, in order
    item_readings: list[int] = field(default_factory=list)  # new readings per message
    errors: dict[int, str] = field(default_factory=dict)  # message index → why it is a dead letter

    def add(self, other: BatchResult) -> None:
        for name in ("readings_written", "dead_letters", "quarantined", "readings_duplicate",
                     "uplinks_duplicate", "refused", "battery_reports", "blocked"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update({len(self.outcomes) + i: e for i, e in other.errors.items()})
        self.outcomes += other.outcomes
        self.item_readings += other.item_readings


def decode_one(msg: Inbound) -> DecodedMessage:
    try:
        up = msg.decode(msg.payload)
        return DecodedMessage(msg.source, msg.topic, msg.payload, msg.received_at, up, None,
                              msg.redelivered, msg.retained, msg.ref)
    except InvalidPayload as exc:
        error = exc.detail
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not lose the message
        error = f"decoder error: {type(exc).__name__}: {exc}"
    return DecodedMessage(msg.source, msg.topic, msg.payload, msg.received_at, None, error,
                          msg.redelivered, msg.retained, msg.ref)


def store_batch(conn: psycopg.Connection, batch: list[Inbound], **kwargs) -> BatchResult:
    """Decode and store `batch` in ONE transaction on `conn` (committed here); see `store_decoded`."""
    return store_decoded(conn, [decode_one(m) for m in batch], **kwargs)


def _float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _uplink_row_wanted(up: Uplink) -> bool:
    """Whether an `uplinks` row is kept: for radio metadata, battery, or keys that recognise a
    duplicate, and for a message without a time of its own (it takes its arrival time, so a
    re-delivery could not be told from a new reading but by comparing with this row)."""
    link = up.link
    return (link.f_cnt is not None or link.dedup_id is not None or link.rssi is not None
            or up.battery_v is not None or (up.time is None and link.ns_time is None))


def _no_reading(up: Uplink) -> str:
    names = [v.name for v in up.values if canonical_name(v.name) is None]
    if names:
        shown = ", ".join(repr(n[:40]) for n in names[:10])
        return (f"no known quantity among the names {shown}{' …' if len(names) > 10 else ''} "
                "(docs/quantities.md#aliases); kept to be replayed once the name is known")
    return "no reading in the message (nothing decodable as a value)"


class _Dedup:
    """In-batch duplicate keys, by the rules of the database check (`repository._INSERT_UPLINKS`)."""

    def __init__(self) -> None:
        self.keys: set[tuple[int, datetime]] = set()
        self.ids: set[str] = set()
        self.fcnt: dict[tuple[int, int], list[datetime]] = {}

    def duplicate(self, device_id: int, t: datetime, up: Uplink) -> bool:
        link = up.link
        if (device_id, t) in self.keys:
            return True
        if link.dedup_id is not None:  # the network server's id decides (docs/formats.md#duplicates)
            return link.dedup_id in self.ids
        if link.f_cnt is not None:
            ns = link.ns_time or t
            return any(abs(ns - other) < FCNT_WINDOW for other in self.fcnt.get((device_id, link.f_cnt), ()))
        return False

    def add(self, device_id: int, t: datetime, up: Uplink) -> None:
        self.keys.add((device_id, t))
        if up.link.dedup_id is not None:
            self.ids.add(up.link.dedup_id)
        elif up.link.f_cnt is not None:
            self.fcnt.setdefault((device_id, up.link.f_cnt), []).append(up.link.ns_time or t)


def _ref_key(ref: DeviceRef | None) -> tuple[str, str]:
    return (str(ref.scheme), ref.value) if ref is not None else ("", "")


def store_decoded(
    conn: psycopg.Connection,
    items: list[DecodedMessage],
    *,
    clock_future_s: int = 300,
    clock_past_s: int = 7 * 24 * 3600,
    now: datetime | None = None,
    redelivery_window_s: int = 3600,
    quota: Quota | None = None,
    keep_dead_letters: bool = True,
    block_key: str | None = None,
) -> BatchResult:
    """Store decoded messages in one transaction. Unparseable → dead letter, unknown device →
    quarantine (both within `quota` per device, else refused and counted). A replay of dead
    letters passes `keep_dead_letters=False`: what fails again is reported (outcome and error),
    not stored as a second dead letter. `block_key`: the secret of the blocked hardware ids
    (`core.security.ref_hash`, docs/privacy.md#erasure): a message of an unknown device whose id
    is blocked is counted on its block entry instead of being quarantined.

    A message without a time of its own takes its arrival time; several such messages of one
    device arriving at the same instant (a pushed list) are kept one microsecond apart, in order.
    A broker re-delivery (DUP flag) without a time of its own is a duplicate when the device's
    stored uplinks of the `redelivery_window_s` before it hold the same payload (its first
    delivery was stored but not acknowledged); a retained message likewise, compared with all of
    the device's stored uplinks (the broker re-sends it at every subscription). One with a time
    of its own needs no such test: its readings' keys repeat."""
    result = BatchResult(outcomes=[Outcome.STORED] * len(items), item_readings=[0] * len(items))
    now = now or datetime.now(UTC)
    window = timedelta(seconds=redelivery_window_s)
    dead: list[tuple[int, tuple]] = []  # (item index, row)
    quarantined: list[tuple[int, tuple]] = []
    reading_rows: list[tuple] = []
    reading_owner: dict[tuple[int, datetime], int] = {}  # (device, time) → first item holding it
    uplink_rows: list[tuple] = []
    pending: dict[tuple[int, datetime], tuple[int, list[tuple]]] = {}  # readings waiting on uplink dedup
    battery_rows: list[tuple] = []
    dedup = _Dedup()
    seen: dict[int, tuple[datetime, datetime, datetime]] = {}  # device → first, last time, first arrival

    def note_seen(device_id: int, t: datetime, arrived: datetime) -> None:
        first, last, first_arrival = seen.get(device_id, (t, t, arrived))
        seen[device_id] = (min(first, t), max(last, t), min(first_arrival, arrived))

    with conn.transaction():
        set_up = repo.ensure_staging(conn)
        refs = {(it.uplink.device.scheme, it.uplink.device.value) for it in items if it.uplink}
        refs |= {(it.ref.scheme, it.ref.value) for it in items if it.uplink is None and it.ref is not None}
        ids = repo.resolve_devices(conn, refs)

        def dead_letter(i: int, it: DecodedMessage, error: str, ref: DeviceRef | None) -> None:
            # the device it names, when registered: quotas, replay, and its erasure finds it
            dev = ids.get((ref.scheme, ref.value)) if ref is not None else None
            dead.append((i, (it.received_at, it.source, it.topic, it.payload, error[:2000],
                             dev[0] if dev else None, str(ref.scheme) if dev and ref else None,
                             ref.value if dev and ref else None)))
            result.outcomes[i] = Outcome.DEAD_LETTER
            result.errors[i] = error[:2000]

        for i, it in enumerate(items):
            up = it.uplink
            if up is None:
                dead_letter(i, it, it.error or "", it.ref)
                continue
            dev = ids.get((up.device.scheme, up.device.value))
            if dev is None:
                quarantined.append((i, (it.received_at, it.source, it.topic, str(up.device.scheme),
                                        up.device.value, it.payload)))
                result.outcomes[i] = Outcome.QUARANTINED
                continue
            device_id, mobile = dev
            received = up.received_at or it.received_at
            own_time = up.time or up.link.ns_time
            t = own_time or received
            if up.status is not None:  # a status event: no readings, a battery report
                s = up.status
                battery_rows.append((device_id, t, received, s.battery_pct, s.external_power, s.margin_db))
                note_seen(device_id, t, it.received_at)
                continue
            if own_time is None:
                while (device_id, t) in pending:
                    t += ONE_US  # another message of this instant: keep both, in order
            try:
                rows = readings_rows(up, device_id, time=t, now=now, received_at=it.received_at,
                                     mobile=mobile, future_s=clock_future_s, past_s=clock_past_s)
            except InvalidPayload as exc:
                dead_letter(i, it, exc.detail, up.device)
                continue
            if not rows and (up.values or not _uplink_row_wanted(up)):
                dead_letter(i, it, _no_reading(up), up.device)  # never acknowledged into nowhere
                continue
            note_seen(device_id, t, it.received_at)
            if not _uplink_row_wanted(up):
                reading_owner.setdefault((device_id, t), i)
                reading_rows.extend(rows)
                continue
            link = up.link
            if dedup.duplicate(device_id, t, up):
                result.uplinks_duplicate += 1
                result.outcomes[i] = Outcome.DUPLICATE
                continue
            dedup.add(device_id, t, up)
            pending[(device_id, t)] = (i, rows)
            gw = min(link.gateway_count, 32767) if link.gateway_count is not None else None
            since = None
            if own_time is None and it.retained:
                since = SINCE_EVER
            elif own_time is None and it.redelivered:
                since = t - window
            uplink_rows.append((device_id, t, str(up.route), received, link.f_cnt, link.f_port,
                                _float(link.rssi), _float(link.snr), gw, link.ns_time, link.dedup_id,
                                _float(up.battery_v), bytes(up.raw or it.payload), since))
        if uplink_rows:
            new = repo.insert_uplinks(conn, uplink_rows)
            for key, (i, rows) in pending.items():
                if key in new:
                    reading_owner.setdefault(key, i)
                    reading_rows.extend(rows)
                else:
                    result.uplinks_duplicate += 1
                    result.outcomes[i] = Outcome.DUPLICATE
        if reading_rows:
            written = repo.insert_readings(conn, reading_rows)
            for key, n in written.items():
                result.item_readings[reading_owner[key]] += n
            result.readings_written = sum(written.values())
            result.readings_duplicate = len(reading_rows) - result.readings_written
        if battery_rows:
            result.battery_reports = repo.insert_battery_reports(conn, battery_rows)
        kept_dead = _within_quota(conn, "dead_letters", dead, quota, result, key=lambda r: (r[6] or "", r[7] or ""),
                                  payload=lambda r: r[3], error=lambda r: r[4]) if keep_dead_letters else []
        if quarantined and block_key is not None:
            kept_rows = {id(row) for row in repo.count_blocked(conn, [row for _, row in quarantined], block_key)}
            for i, row in quarantined:
                if id(row) not in kept_rows:
                    result.outcomes[i] = Outcome.BLOCKED
                    result.blocked += 1
            quarantined = [(i, row) for i, row in quarantined if id(row) in kept_rows]
        kept_q = _within_quota(conn, "quarantine", quarantined, quota, result, key=lambda r: (r[3], r[4]),
                               payload=lambda r: r[5], error=lambda r: "unknown device")
        repo.insert_dead_letters(conn, kept_dead)
        repo.insert_quarantine(conn, kept_q)
        repo.touch_devices(conn, seen)
    if set_up and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        repo.staged(conn)  # committed (not a savepoint of a caller's transaction that could roll back)
    result.dead_letters = len(kept_dead)
    result.quarantined = len(kept_q)
    per_route: dict[str, int] = {}
    for it in items:
        route = str(it.uplink.route) if it.uplink is not None else f"{it.source}:undecodable"
        per_route[route] = per_route.get(route, 0) + 1
    for route, n in per_route.items():
        metrics.MESSAGES_RECEIVED.labels(route).inc(n)
    return result


def _within_quota(conn: psycopg.Connection, table: str, entries: list[tuple[int, tuple]], quota: Quota | None,
                  result: BatchResult, *, key: Callable[[tuple], tuple[str, str]],
                  payload: Callable[[tuple], bytes], error: Callable[[tuple], str]) -> list[tuple]:
    """The rows of `entries` that fit their device's quota; the others are counted in
    `kept_overflow` and their messages marked refused."""
    if quota is None or not entries:
        return [row for _, row in entries]
    max_rows, max_bytes = ((quota.dead_letter_rows, quota.dead_letter_bytes) if table == "dead_letters"
                           else (quota.quarantine_rows, quota.quarantine_bytes))
    usage = repo.kept_usage(conn, table, {key(row) for _, row in entries})
    kept: list[tuple] = []
    refused: dict[tuple[str, str], list[tuple]] = {}
    for i, row in entries:
        k = key(row)
        n, size = usage.get(k, (0, 0))
        add = len(payload(row))
        if n + 1 > max_rows or size + add > max_bytes:
            refused.setdefault(k, []).append(row)
            result.outcomes[i] = Outcome.REFUSED
            continue
        usage[k] = (n + 1, size + add)
        kept.append(row)
    if refused:
        repo.count_overflow(conn, table, [
            (scheme, value, len(rows), sum(len(payload(r)) for r in rows), rows[0][0], rows[-1][0], error(rows[-1]))
            for (scheme, value), rows in refused.items()])
        n = sum(len(rows) for rows in refused.values())
        result.refused += n
        metrics.KEPT_REFUSED.labels(table).inc(n)
    return kept


def ref_for(scheme: str | None, value: str | None) -> DeviceRef | None:
    return DeviceRef(RefScheme(scheme), value) if scheme and value else None


class WriterConnection:
    """The one connection a writer (the MQTT writer thread, the push group commit) keeps: made
    on first use, made again after `reset()` (a failure)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection | None = None

    @property
    def open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def __call__(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, connect_timeout=5)
        return self._conn

    def reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


def store_resilient(connection: Callable[[], psycopg.Connection], items: list[DecodedMessage],
                    **options) -> BatchResult:
    """`store_decoded` on `connection()`, retried on deadlock (three attempts in all); on any
    other database error (bad data) the messages are stored one by one, and one that still
    fails becomes a dead letter `database rejected: …` (docs/storage.md#bad-data-in-a-batch).
    Raises psycopg.OperationalError / InterfaceError when the database is unreachable: the
    caller spools, answers 503 or retries, but never judges the data by it."""
    for attempt in range(3):
        try:
            return store_decoded(connection(), items, **options)
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            metrics.WRITE_ERRORS.labels("deadlock").inc()
            if attempt == 2:
                raise
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - bad data (DataError, OverflowError, ...)
            metrics.WRITE_ERRORS.labels("data").inc()
            log.warning("ingest batch rejected by the database, storing one by one: %s",
                        (str(exc).splitlines() or [""])[0])
            return _store_one_by_one(connection, items, options)
    raise AssertionError("unreachable")


def _store_one_by_one(connection: Callable[[], psycopg.Connection], items: list[DecodedMessage],
                      options: dict) -> BatchResult:
    total = BatchResult()
    for it in items:
        try:
            r = store_decoded(connection(), [it], **options)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - this message's data: keep it as a dead letter
            bad = it._replace(uplink=None, error=f"database rejected: {type(exc).__name__}: "
                                                 f"{(str(exc).splitlines() or [''])[0]}")
            r = store_decoded(connection(), [bad], **{k: v for k, v in options.items() if k == "quota"})
        total.add(r)
    return total
