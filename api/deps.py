"""Request dependencies: settings, database sessions, and the two auth primitives
(partner API keys with scopes, device tokens)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import sqlalchemy as sa
from civicair.api.sessions import read_session
from civicair.calibration.repository import partner_key
from civicair.core import tables
from civicair.core.db import libpq_url
from civicair.core.errors import Forbidden, Unauthorized
from civicair.core.security import hash_secret
from civicair.core.settings import Settings
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def read_conn(request: Request) -> Iterator[Connection]:
    """A read-only connection (the replica in production)."""
    with request.app.state.db.read_engine.connect() as conn:
        yield conn


@contextmanager
def read_autocommit(request: Request) -> Iterator[Connection]:
    """A read connection without a transaction (each statement is its own): for a handful of
    reads that need no common snapshot, two round trips fewer than `read_conn`."""
    with request.app.state.db.read_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


async def read_pool(request: Request) -> AsyncConnectionPool:
    """The process's async pool of autocommit read connections (the replica in production), for
    the endpoints that query from the event loop with no thread hop. Opened on first use in the
    serving event loop, closed by `close_read_pool` at shutdown. No ping before each use: a
    query that finds its connection broken is retried (`zone_series._fetch_async`)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    pool: AsyncConnectionPool | None = getattr(state, "read_pool", None)
    if pool is not None and state.read_pool_loop is loop:
        return pool
    async with state.read_pool_lock:
        if getattr(state, "read_pool", None) is None or state.read_pool_loop is not loop:
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(libpq_url(state.db.read_url), min_size=1, max_size=state.settings.api_read_pool_size,
                                       kwargs={"autocommit": True}, timeout=state.settings.api_db_timeout_s,
                                       name="api-read", open=False)
            await pool.open(wait=False)
            state.read_pool, state.read_pool_loop = pool, loop
    return state.read_pool


async def close_read_pool(state: Any) -> None:
    pool: AsyncConnectionPool | None = getattr(state, "read_pool", None)
    if pool is not None and state.read_pool_loop is asyncio.get_running_loop():
        state.read_pool = None
        await pool.close()


def sync_reader(request: Request) -> Callable[[Callable[[Connection], T]], Awaitable[T]]:
    """run(fn) → fn(an autocommit read connection), in a worker thread: the SQLAlchemy part of
    an endpoint that otherwise queries from the event loop."""

    async def run(fn: Callable[[Connection], T]) -> T:
        def call() -> T:
            with read_autocommit(request) as conn:
                return fn(conn)

        return await run_in_threadpool(call)

    return run


def write_conn(request: Request) -> Iterator[Connection]:
    """One transaction per request: committed when the endpoint returns, rolled back on error."""
    with request.app.state.db.engine.begin() as conn:
        yield conn


ReadConn = Annotated[Connection, Depends(read_conn)]
WriteConn = Annotated[Connection, Depends(write_conn, scope="function")]  # commit before the response is sent
SettingsDep = Annotated[Settings, Depends(get_settings)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Partner API key")


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    scopes: frozenset[str]
    via: str = "key"  # key (X-API-Key header) | session (signed-in browser)


PARTNER_SESSION = "partner"


def _partner_row(conn: Connection, *, key: str | None = None, key_id: int | None = None) -> Any:
    return partner_key(conn, key_hash=hash_secret(key) if key is not None else None, key_id=key_id)


def partner_from_key(conn: Connection, key: str) -> Partner | None:
    row = _partner_row(conn, key=key)
    return None if row is None else Partner(id=row.id, name=row.name, scopes=frozenset(row.scopes))


def authenticate_partner(request: Request, conn: Connection, key: str | None) -> Partner | None:
    """The partner behind the X-API-Key header, else behind the signed-in session (whose key must
    still be valid: revoking a key ends its sessions)."""
    if key:
        partner = partner_from_key(conn, key)
        if partner is None:
            raise Unauthorized("unknown or revoked API key")
        return partner
    session = read_session(request, request.app.state.settings, PARTNER_SESSION)
    if session is None:
        return None
    try:
        key_id = int(session.subject)
    except ValueError:
        return None
    row = _partner_row(conn, key_id=key_id)
    return None if row is None else Partner(id=row.id, name=row.name, scopes=frozenset(row.scopes), via="session")


def has_scope(partner: Partner, scope: str) -> bool:
    return scope in partner.scopes or "*" in partner.scopes


def require_partner(scope: str | None) -> Callable[..., Partner]:
    """Dependency: a valid, unrevoked partner API key (header or signed-in session) holding
    `scope` (any scope when None)."""

    def dependency(request: Request, conn: ReadConn,
                   key: Annotated[str | None, Depends(api_key_header)] = None) -> Partner:
        partner = authenticate_partner(request, conn, key)
        if partner is None:
            raise Unauthorized("missing X-API-Key header (or sign in at /partner/sign-in)")
        if scope is not None and not has_scope(partner, scope):
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return partner

    return dependency


def partner_page(scope: str) -> Callable[..., Partner | None]:
    """Dependency of HTML pages: the partner, or None when nobody is signed in (the page then
    redirects to the sign-in form); a key without the scope is still refused."""

    def dependency(request: Request, conn: ReadConn,
                   key: Annotated[str | None, Depends(api_key_header)] = None) -> Partner | None:
        partner = authenticate_partner(request, conn, key)
        if partner is not None and not has_scope(partner, scope):
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return partner

    return dependency


@dataclass(frozen=True)
class AuthenticatedDevice:
    id: int
    uid: str
    pseudonym: str


def device_token_from_request(request: Request) -> str | None:
    """Bearer token, or Basic auth (user = device uid or anything, password = token), as the
    airrohr firmware's "send to own API" option sends it."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("malformed Basic authorization header") from None
        _, _, password = decoded.partition(":")
        return password or None
    return None


def require_device(request: Request, conn: ReadConn) -> AuthenticatedDevice:
    """Dependency: the device owning the presented token."""
    token = device_token_from_request(request)
    if not token:
        raise Unauthorized("missing device token (Authorization: Bearer <token>)")
    row = conn.execute(
        sa.select(tables.devices.c.id, tables.devices.c.uid, tables.devices.c.pseudonym)
        .where(tables.devices.c.token_hash == hash_secret(token))
    ).first()
    if row is None:
        raise Unauthorized("unknown device token")
    return AuthenticatedDevice(id=row.id, uid=row.uid, pseudonym=row.pseudonym)


DeviceDep = Annotated[AuthenticatedDevice, Depends(require_device)]
