"""Request dependencies: settings, database sessions, and the two auth primitives
(partner API keys with scopes, device tokens)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Connection

from core import tables
from core.errors import Forbidden, Unauthorized
from core.security import hash_secret
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


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


def require_partner(scope: str) -> Callable[..., Partner]:
    """Dependency: a valid, unrevoked partner API key holding `scope`."""

    def dependency(conn: ReadConn, key: Annotated[str | None, Depends(api_key_header)] = None) -> Partner:
        if not key:
            raise Unauthorized("missing X-API-Key header")
        row = conn.execute(
            sa.select(tables.partner_api_keys.c.id, tables.partner_api_keys.c.name,
                      tables.partner_api_keys.c.scopes)
            .where(tables.partner_api_keys.c.key_hash == hash_secret(key))
            .where(tables.partner_api_keys.c.revoked_at.is_(None))
        ).first()
        if row is None:
            raise Unauthorized("unknown or revoked API key")
        if scope not in row.scopes and "*" not in row.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return Partner(id=row.id, name=row.name, scopes=frozenset(row.scopes))

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
