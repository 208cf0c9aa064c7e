"""Secrets: pseudonyms, device tokens, partner API keys. Pure functions, no I/O.

Tokens and keys are 256-bit random values, so a single SHA-256 is a sufficient stored hash
(no password stretching needed); comparison is by hash lookup, never by the clear value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "cat_"  # civicair device token
API_KEY_PREFIX = "cak_"  # civicair partner API key


def pseudonym(secret: str, device_uid: str) -> str:
    """Public id of a device: first 12 hex chars of HMAC-SHA256(secret, device uid) (docs/privacy.md#pseudonyms)."""
    return hmac.new(secret.encode(), device_uid.encode(), hashlib.sha256).hexdigest()[:12]


def new_device_uid() -> str:
    return "ca-" + secrets.token_hex(6)


def new_device_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def ref_hash(secret: str, scheme: str, value: str) -> str:
    """The stored form of a blocked hardware id (docs/privacy.md#erasure): HMAC-SHA256 keyed with
    the pseudonym secret, so the block list names no device without that secret."""
    return hmac.new(secret.encode(), f"blocked:{scheme}:{value.lower()}".encode(), hashlib.sha256).hexdigest()
