"""Parse a message body that must be JSON (pure)."""

from __future__ import annotations

import json
from typing import Any

from civicair.core.errors import InvalidPayload


def json_value(payload: bytes, what: str) -> Any:
    """The JSON document in `payload`, or InvalidPayload naming `what` (the format or field).
    Python refuses to convert integers of more than 4,300 digits (a plain ValueError, not a
    JSONDecodeError): such a body is invalid too, never a server error."""
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidPayload(f"{what}: not JSON: {str(exc)[:200]}") from None


def json_object(payload: bytes, what: str) -> dict[str, Any]:
    """The JSON object in `payload`, or InvalidPayload naming `what` (the format or field)."""
    doc = json_value(payload, what)
    if not isinstance(doc, dict):
        raise InvalidPayload(f"{what}: must be a JSON object")
    return doc
