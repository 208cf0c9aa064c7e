"""The registry of SensorThings integer ids (`sta_ids`, docs/sensorthings.md#identifiers): one id
per public thing (a fixed device by pseudonym, a zone, a reference station) and per sensor model,
assigned by `sync` (the `readmodel.sta_ids` job and `civicair sta ids`), never reused. The
read-only surfaces only look ids up."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from civicair.core import tables
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Connection

KINDS = ("device", "zone", "station", "sensor")


def sync(conn: Connection, keys: Iterable[tuple[str, str]]) -> int:
    """Give an id to every (kind, key) that has none (in (kind, key) order, so a fresh database
    numbers the same data the same way); returns how many were added. Idempotent."""
    wanted = sorted(set(keys))
    if not wanted:
        return 0
    t = tables.sta_ids
    rows = sa.select(sa.func.unnest(sa.literal([k for k, _ in wanted], ARRAY(sa.Text))).label("kind"),
                     sa.func.unnest(sa.literal([v for _, v in wanted], ARRAY(sa.Text))).label("key")).subquery()
    source = sa.select(rows.c.kind, rows.c.key).order_by(rows.c.kind, rows.c.key)
    stmt = insert(t).from_select(["kind", "key"], source).on_conflict_do_nothing(constraint="sta_ids_kind_key")
    return int(conn.execute(stmt.returning(t.c.id)).rowcount or 0)


def ids(conn: Connection) -> dict[tuple[str, str], int]:
    """(kind, key) → id of every registered entry."""
    t = tables.sta_ids
    return {(r.kind, r.key): int(r.id) for r in conn.execute(sa.select(t.c.id, t.c.kind, t.c.key))}


def entry(conn: Connection, entry_id: int) -> tuple[str, str] | None:
    t = tables.sta_ids
    row = conn.execute(sa.select(t.c.kind, t.c.key).where(t.c.id == entry_id)).first()
    return (row.kind, row.key) if row else None
