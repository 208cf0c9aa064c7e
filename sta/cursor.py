"""`$skiptoken`: the opaque keyset cursor of `@iot.nextLink` (docs/sensorthings.md#paging). It
holds the last key of the page and a digest of the path and the options that define the order,
so a token replayed with another `$filter` or `$orderby` is refused. Pure; nothing private."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any

import orjson
from civicair.core.errors import BadQuery

VERSION = 1


def digest(path: str, filter_text: str, orderby_text: str) -> str:
    return hashlib.blake2s(f"{path}\n{filter_text}\n{orderby_text}".encode(), digest_size=6).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dict | list):
        return {"j": value}
    if hasattr(value, "is_finite"):  # Decimal
        return float(value)
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        return value["j"]
    return value


def encode(key: str, state: dict[str, Any]) -> str:
    body = {"v": VERSION, "d": key, **{k: [_plain(x) for x in v] if k == "k" else v for k, v in state.items()}}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode(token: str, key: str) -> dict[str, Any]:
    """The state of a token made by `encode` with the same key; BadQuery otherwise."""
    if len(token) > 2000:
        raise BadQuery("$skiptoken is not a token of this service")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadQuery("$skiptoken is not a token of this service") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise BadQuery("$skiptoken is not a token of this service")
    if body.get("d") != key:
        raise BadQuery("$skiptoken belongs to another request: follow @iot.nextLink as it is")
    if "k" in body:
        if not isinstance(body["k"], list):
            raise BadQuery("$skiptoken is not a token of this service")
        try:
            body["k"] = [_typed(x) for x in body["k"]]
        except (KeyError, TypeError, ValueError):
            raise BadQuery("$skiptoken is not a token of this service") from None
    return body
