"""Parse a message body that must be one JSON object (pure)."""

from __future__ import annotations

import json
from typing import Any

from civicair.core.errors import InvalidPayload


def json_object(payload: bytes, what: str) -> dict[str, Any]:
    """The JSON object in `payload`, or InvalidPayload naming `what` (the format or field)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidPayload(f"{what}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidPayload(f"{what}: must be a JSON object")
    return doc
