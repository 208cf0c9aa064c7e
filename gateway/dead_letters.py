"""Operator rules for dead letters (docs/formats.md#dead-letters): list, inspect, replay. The
`civicair deadletters` command and the operator console call these functions.

A replay decodes the kept bytes again, with the code of today (a codec or an alias added since,
a bug fixed), from the same route: an MQTT topic through the topic router, an HTTP push as the
device whose token sent it. It stores through the normal writer (`ingest.store`), at the
message's original arrival time, in one transaction with marking the entry replayed, so a
replay repeated changes nothing. A message that fails again is not kept twice: the entry stays,
with the new error in `replay_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from civicair.core.db import Database, libpq_url
from civicair.core.domain import RefScheme, Uplink
from civicair.core.errors import CivicairError, Forbidden, InvalidPayload, NotFound
from civicair.gateway import repository
from civicair.gateway.formats.push import (
    CIVICAIR_PATH,
    SENSOR_COMMUNITY_PATH,
    decode_civicair_push,
    decode_sensor_community_push,
    push_request,
)
from civicair.gateway.routing import TopicRouter
from civicair.ingest.store import DecodedMessage, Outcome, store_decoded


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    id: int
    received_at: datetime
    source: str
    topic: str
    error: str
    size: int
    device: str | None  # "<scheme>:<value>" of the registered device it names
    replayed_at: datetime | None
    replay_error: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    summary: DeadLetterSummary
    payload: bytes


@dataclass(frozen=True, slots=True)
class Overflow:
    """Messages not kept because a device's quota was full."""

    table: str
    device: str | None
    refused: int
    refused_bytes: int
    first_at: datetime
    last_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    id: int
    replayed: bool
    messages: int = 0  # messages decoded from the entry (an HTTP push list holds several)
    readings_written: int = 0
    outcomes: tuple[str, ...] = ()
    error: str | None = None


def payload_text(payload: bytes) -> str | None:
    """The payload as text when it is printable UTF-8 (line breaks and tabs allowed), else None."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return None
    return text if all(c.isprintable() or c in "\r\n\t" for c in text) else None


def hex_dump(payload: bytes) -> list[str]:
    """Lines of offset, 16 bytes in hex, and their ASCII (dots for the others)."""
    return [f"{i:08x}  {payload[i:i + 16].hex(' '):<47}  "
            f"{''.join(chr(b) if 32 <= b < 127 else '.' for b in payload[i:i + 16])}" for i in range(0, len(payload), 16)]


def _device(scheme: str | None, value: str | None) -> str | None:
    return f"{scheme}:{value}" if scheme and value else None


def _summary(r) -> DeadLetterSummary:
    size = r.size if hasattr(r, "size") else len(r.payload)
    return DeadLetterSummary(r.id, r.received_at, r.source, r.topic, r.error, int(size or 0),
                             _device(r.ref_scheme, r.ref_value), r.replayed_at, r.replay_error)


def list_dead_letters(db: Database, *, include_replayed: bool = False, source: str | None = None,
                      device_uid: str | None = None, error_contains: str | None = None,
                      before_id: int | None = None, limit: int = 100) -> list[DeadLetterSummary]:
    """Newest first; `before_id` (the last id of a page) gives the next page."""
    with db.engine.connect() as conn:
        rows = repository.dead_letter_list(conn, include_replayed=include_replayed, source=source,
                                           ref_value=device_uid, error_contains=error_contains,
                                           before_id=before_id, limit=limit)
    return [_summary(r) for r in rows]


def get_dead_letter(db: Database, entry_id: int) -> DeadLetter:
    with db.engine.connect() as conn:
        row = repository.dead_letter_row(conn, entry_id)
    if row is None:
        raise NotFound(f"no dead letter {entry_id}")
    return DeadLetter(_summary(row), bytes(row.payload))


def overflow(db: Database) -> list[Overflow]:
    with db.engine.connect() as conn:
        return [Overflow(r.kind, _device(r.ref_scheme or None, r.ref_value or None), r.refused, r.refused_bytes,
                         r.first_at, r.last_at, r.last_error) for r in repository.overflow_rows(conn)]


def _uplinks(db: Database, router: TopicRouter, row) -> list[Uplink]:
    """Decode a dead letter again, as its route would today; raises InvalidPayload (or Forbidden)."""
    payload = bytes(row.payload)
    if row.source in ("http", "sensor_community"):
        if row.ref_scheme != RefScheme.CIVICAIR.value or not row.ref_value:
            raise InvalidPayload("an HTTP push kept without the device of its token cannot be replayed")
        path, headers = push_request(row.topic)
        if path == CIVICAIR_PATH:
            return decode_civicair_push(row.ref_value, payload)
        if path == SENSOR_COMMUNITY_PATH:
            up, chip = decode_sensor_community_push(row.ref_value, payload, headers)
            if chip is not None:
                with db.engine.connect() as conn:
                    owner = repository.device_id_by_chip(conn, chip)
                    me = repository.device_by_uid(conn, row.ref_value)
                if owner is not None and (me is None or owner != me.id):
                    raise Forbidden(f"{chip} belongs to another device than the one that pushed it")
            return [up]
        raise InvalidPayload(f"no push endpoint {path!r}")
    return [router.decode(row.topic, payload)]


def replay_dead_letters(db: Database, router: TopicRouter, entry_ids: list[int]) -> list[ReplayOutcome]:
    """Replay the given entries (already replayed ones are skipped: the result says so)."""
    results: list[ReplayOutcome] = []
    with psycopg.connect(libpq_url(db.url)) as pconn:
        for entry_id in entry_ids:
            with db.engine.connect() as conn:
                row = repository.dead_letter_row(conn, entry_id)
            if row is None:
                results.append(ReplayOutcome(entry_id, False, error="no such dead letter"))
                continue
            if row.replayed_at is not None:
                results.append(ReplayOutcome(entry_id, False, error=f"already replayed at {row.replayed_at:%Y-%m-%dT%H:%M:%SZ}"))
                continue
            results.append(_replay_one(pconn, db, router, row))
    return results


def _replay_one(pconn: psycopg.Connection, db: Database, router: TopicRouter, row) -> ReplayOutcome:
    try:
        uplinks = _uplinks(db, router, row)
    except CivicairError as exc:
        error = exc.detail
    except Exception as exc:  # noqa: BLE001 - a decoder bug: the entry stays, with the reason
        error = f"decoder error: {type(exc).__name__}: {exc}"
    else:
        items = [DecodedMessage(row.source, row.topic, bytes(row.payload), row.received_at, up) for up in uplinks]
        with pconn.transaction():  # the store and the mark: one transaction
            result = store_decoded(pconn, items, keep_dead_letters=False)
            failed = [result.errors[i] for i, o in enumerate(result.outcomes) if o is Outcome.DEAD_LETTER]
            if failed:
                pconn.execute(repository.MARK_REPLAY_FAILED, (failed[0][:2000], row.id))
            else:
                pconn.execute(repository.MARK_REPLAYED, (row.id,))
        return ReplayOutcome(row.id, not failed, len(items), result.readings_written,
                             tuple(str(o) for o in result.outcomes), failed[0] if failed else None)
    with pconn.transaction():
        pconn.execute(repository.MARK_REPLAY_FAILED, (error[:2000], row.id))
    return ReplayOutcome(row.id, False, error=error)
