"""Domain exceptions. Each carries the HTTP status the API renders it with (RFC 9457).

    CivicairError (500)
    ├── SettingsError (500)           bad configuration; the CLI prints one line and exits 2
    ├── ServiceUnavailable (503)      database / broker unreachable
    ├── NotFound (404)
    │   ├── DeviceNotFound
    │   └── StationNotFound
    ├── Conflict (409)
    │   ├── DuplicateDevEUI
    │   └── DuplicateDevice
    ├── InvalidInput (422)
    │   ├── InvalidPayload            a message that cannot be parsed (→ dead letters)
    │   └── InvalidParameter          a query parameter that is wrong
    ├── BadRange (400)                reversed or too large time range
    ├── BadQuery (400)                a SensorThings query option or path that is malformed or unsupported
    ├── Unauthorized (401)            missing / unknown credentials
    ├── Forbidden (403)               credentials valid but not for this resource or scope
    ├── PayloadTooLarge (413)
    └── RateLimited (429)
"""

from __future__ import annotations


class CivicairError(Exception):
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class SettingsError(CivicairError):
    title = "Invalid settings"


class ServiceUnavailable(CivicairError):
    status = 503
    title = "Service unavailable"


class NotFound(CivicairError):
    status = 404
    title = "Not found"


class DeviceNotFound(NotFound):
    title = "Device not found"


class StationNotFound(NotFound):
    title = "Station not found"


class Conflict(CivicairError):
    status = 409
    title = "Conflict"


class DuplicateDevEUI(Conflict):
    title = "DevEUI already registered"


class DuplicateDevice(Conflict):
    title = "Device already registered"


class InvalidInput(CivicairError):
    status = 422
    title = "Invalid input"


class InvalidPayload(InvalidInput):
    title = "Invalid payload"


class InvalidParameter(InvalidInput):
    title = "Invalid parameter"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}", parameter=parameter)
        self.parameter = parameter


class BadRange(CivicairError):
    status = 400
    title = "Bad time range"


class Unauthorized(CivicairError):
    status = 401
    title = "Unauthorized"


class Forbidden(CivicairError):
    status = 403
    title = "Forbidden"


class PayloadTooLarge(CivicairError):
    status = 413
    title = "Payload too large"


class RateLimited(CivicairError):
    status = 429
    title = "Too many requests"


class BadQuery(CivicairError):
    """A SensorThings request the standard calls a bad request: a malformed or unsupported
    query option or resource path (400, with a message naming the problem)."""

    status = 400
    title = "Bad request"
