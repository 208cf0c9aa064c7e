"""Signed session tokens for browser sign-in, and CSRF tokens (docs/privacy.md#browser-sessions).

A session is a small set of claims (who, what kind of user, a random session id, issue and
expiry times) serialised as JSON and signed with HMAC-SHA256: ``<payload>.<signature>``, both
base64url. Nothing is stored server-side; the API re-checks the subject (e.g. that a partner key
is not revoked) on every request. Keys rotate: tokens are signed with the first key and accepted
under any key of the list. CSRF tokens are an HMAC of the session id (or of a random nonce kept
in a cookie before sign-in), so a form posted from another site cannot carry a valid one.

Pure: the caller passes the keys, the current time and the random values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VERSION = 1


class InvalidSession(ValueError):
    """A token that is malformed, signed with an unknown key, or expired."""


@dataclass(frozen=True)
class Session:
    subject: str  # e.g. the partner key id
    kind: str  # partner | volunteer | operator
    session_id: str  # random; binds the CSRF token
    issued_at: int  # epoch seconds
    expires_at: int
    data: Mapping[str, Any] = field(default_factory=dict)  # small extra claims (JSON values)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose from a configured secret (key separation: the session key is never
    the pseudonym key itself)."""
    return hmac.new(secret.encode(), f"civicair:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def new_session(subject: str, kind: str, *, session_id: str, now: float, ttl_s: int,
                data: Mapping[str, Any] | None = None) -> Session:
    return Session(subject, kind, session_id, int(now), int(now) + int(ttl_s), dict(data or {}))


def sign(session: Session, key: bytes) -> str:
    claims = {"v": VERSION, "sub": session.subject, "kind": session.kind, "sid": session.session_id,
              "iat": session.issued_at, "exp": session.expires_at, "data": dict(session.data)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def verify(token: str, keys: Sequence[bytes], now: float, *, kind: str | None = None) -> Session:
    """The session a token carries, if one of `keys` signed it and it has not expired."""
    if not keys:
        raise InvalidSession("no session key configured")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise InvalidSession("malformed session token")
    try:
        given = _unb64(signature)
    except ValueError:
        raise InvalidSession("malformed session signature") from None
    if not any(hmac.compare_digest(given, _mac(k, payload)) for k in keys):
        raise InvalidSession("bad session signature")
    try:
        claims = json.loads(_unb64(payload))
        session = Session(str(claims["sub"]), str(claims["kind"]), str(claims["sid"]), int(claims["iat"]),
                          int(claims["exp"]), dict(claims.get("data") or {}))
    except (ValueError, KeyError, TypeError):
        raise InvalidSession("malformed session claims") from None
    if claims.get("v") != VERSION:
        raise InvalidSession("unknown session version")
    if session.expired(now):
        raise InvalidSession("session expired")
    if kind is not None and session.kind != kind:
        raise InvalidSession(f"not a {kind} session")
    return session


def csrf_token(binding: str, key: bytes) -> str:
    """The CSRF token of a session id (or of a pre-sign-in nonce)."""
    return _b64(_mac(key, f"csrf:{binding}"))


def check_csrf(token: str | None, binding: str | None, keys: Sequence[bytes]) -> bool:
    if not token or not binding:
        return False
    return any(hmac.compare_digest(token, csrf_token(binding, k)) for k in keys)
