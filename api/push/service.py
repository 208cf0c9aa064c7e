"""Rules of the push endpoints: decide which device a body may speak for, and store through the
same path as MQTT (`ingest.store`: normalise, dedup, dead letters, quotas), one group commit
shared by the concurrent requests of the process (`ingest.group_commit`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from civicair.api.deps import AuthenticatedDevice
from civicair.core.domain import DeviceRef, RefScheme, Uplink
from civicair.core.errors import CivicairError, InvalidPayload
from civicair.ingest.group_commit import GroupCommitter
from civicair.ingest.store import BatchResult, DecodedMessage

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)
T = TypeVar("T")


async def fetch(pool: AsyncConnectionPool, statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one statement on the async read pool; once more on a fresh connection when the
    pooled one turns out broken (the database restarted since it was last used)."""
    for attempt in (1, 2):
        async with pool.connection() as conn:
            try:
                cur = await conn.execute(statement, params)
                return await cur.fetchall()
            except psycopg.OperationalError:
                if attempt == 2 or not conn.broken:
                    raise
        await pool.check()
    raise AssertionError("unreachable")


def decode_or_error(decode: Callable[[], list[T]]) -> tuple[list[T] | None, str | None]:
    """(uplinks, None), or (None, why) when the body cannot be decoded. Domain refusals other
    than an invalid body (403: another device's chip id or uid) propagate: nothing is kept."""
    try:
        return decode(), None
    except InvalidPayload as exc:
        return None, exc.detail
    except CivicairError:
        raise
    except Exception as exc:  # noqa: BLE001 - a decoder bug: keep the body, answer 422
        log.exception("push decoder error")
        return None, f"decoder error: {type(exc).__name__}: {exc}"


async def store(committer: GroupCommitter, device: AuthenticatedDevice, source: str, topic: str,
                body: bytes, uplinks: list[Uplink] | None, error: str | None) -> BatchResult:
    """Store the decoded uplinks, or the body as a dead letter of the token's device when
    `error` is set; returns after the commit (ServiceUnavailable when the database is down)."""
    now = datetime.now(UTC)
    ref = DeviceRef(RefScheme.CIVICAIR, device.uid)
    if uplinks is None:
        items = [DecodedMessage(source, topic, body, now, None, error, ref=ref)]
    else:
        items = [DecodedMessage(source, topic, body, now, u, ref=ref) for u in uplinks]
    return await asyncio.wrap_future(committer.submit(items))
