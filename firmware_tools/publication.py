"""The publication workflow of devices (docs/privacy.md#publication), for operators: list the
devices awaiting publication, approve one (public now), withhold one (never public), or return
one to the automatic rule (public once past its QA window and not unreliable). The rule itself
is `readmodel.statements.established`; this module changes the state it reads.

Every function takes a connection inside the caller's transaction (the CLI and the operator API
own it). The operator console of issue 17 builds on these functions and their JSON API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from civicair.core import tables
from civicair.core.errors import DeviceNotFound, InvalidParameter
from civicair.core.settings import Settings
from civicair.firmware_tools.schemas import PublicationStatus
from civicair.readmodel import statements
from civicair.readmodel.publication import STATES, qa_cutoff, qa_ends_at
from sqlalchemy.engine import Connection

# what the operator lists: `awaiting` = pending and not public yet (the console's queue)
FILTERS = ("awaiting", "established", *STATES)


def _select(settings: Settings, now: datetime) -> sa.Select[Any]:
    d = tables.devices
    established = statements.established(qa_cutoff(settings, now))
    return sa.select(d.c.uid, d.c.pseudonym, d.c.name, d.c.kind, d.c.transport, d.c.status, d.c.consent_public,
                     d.c.publication, d.c.publication_changed_at, d.c.publication_note, d.c.publication_by,
                     d.c.first_received_at, d.c.last_seen, d.c.created_at, established.label("established"))


def _status(settings: Settings, r: Any) -> PublicationStatus:
    return PublicationStatus(
        uid=r.uid, pseudonym=r.pseudonym, name=r.name, kind=r.kind, transport=r.transport, status=r.status,
        consent_public=r.consent_public, publication=r.publication, changed_at=r.publication_changed_at,
        note=r.publication_note, changed_by=r.publication_by, created_at=r.created_at,
        first_received_at=r.first_received_at, last_seen=r.last_seen,
        qa_ends_at=qa_ends_at(settings, r.first_received_at) if r.publication == "pending" else None,
        established=bool(r.established), public=bool(r.established and r.consent_public))


def publication_status(conn: Connection, settings: Settings, uid: str, now: datetime | None = None) -> PublicationStatus:
    row = conn.execute(_select(settings, now or datetime.now(UTC)).where(tables.devices.c.uid == uid)).first()
    if row is None:
        raise DeviceNotFound(f"no device with id {uid[:40]!r}")
    return _status(settings, row)


def list_publication(conn: Connection, settings: Settings, state: str = "awaiting", *, after: str | None = None,
                     limit: int = 100, now: datetime | None = None) -> list[PublicationStatus]:
    """Devices in `state` (one of FILTERS), in uid order after the uid `after`."""
    if state not in FILTERS:
        raise InvalidParameter("state", f"one of {', '.join(FILTERS)}, got {state[:40]!r}")
    now = now or datetime.now(UTC)
    d = tables.devices
    stmt = _select(settings, now).order_by(d.c.uid).limit(limit)
    established = statements.established(qa_cutoff(settings, now))
    if state == "awaiting":
        stmt = stmt.where(d.c.publication == "pending", sa.not_(established))
    elif state == "established":
        stmt = stmt.where(established)
    else:
        stmt = stmt.where(d.c.publication == state)
    if after:
        stmt = stmt.where(d.c.uid > after)
    return [_status(settings, r) for r in conn.execute(stmt)]


def set_publication(conn: Connection, settings: Settings, uid: str, state: str, *, note: str | None = None,
                    by: str | None = None, now: datetime | None = None) -> PublicationStatus:
    """Approve (`approved`), withhold (`withheld`) or return to the automatic rule (`pending`)."""
    if state not in STATES:
        raise InvalidParameter("publication", f"one of {', '.join(STATES)}, got {state[:40]!r}")
    now = now or datetime.now(UTC)
    d = tables.devices
    done = conn.execute(sa.update(d).where(d.c.uid == uid).values(
        publication=state, publication_changed_at=now, publication_note=(note or None) and note[:500],
        publication_by=(by or None) and by[:120]).returning(d.c.id)).first()
    if done is None:
        raise DeviceNotFound(f"no device with id {uid[:40]!r}")
    return publication_status(conn, settings, uid, now)
