"""Sign-up by e-mail (docs/onboarding.md#sign-up-by-e-mail): a registration request waits, with the
hash of a random token, until its owner opens the link mailed to the address it gives; only then
is the device created and its credentials shown, once.

Anti-abuse: the per-network limit of registrations (`service.check_registration_rate`, 429: it
tells the caller about its own network only) and a per-address limit of mails: beyond it the
sign-up gets the very same answer and no mail goes out, so no answer says whether an address was
used (no enumeration). Every sign-up is answered before its mail is sent (a background task), so
the time to answer says nothing either.

Without `CIVICAIR_SMTP_URL` no address can be checked: registration is immediate (development).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from civicair.core.errors import NotFound
from civicair.core.security import hash_secret
from civicair.core.settings import Settings
from civicair.firmware_tools import mail, repository, service
from civicair.firmware_tools.schemas import RegistrationRequest, RegistrationResult

log = logging.getLogger(__name__)
CONFIRM_PATH = "/volunteer/confirm"
LIST_FIELDS = ("sensors",)
OPTIONAL_FIELDS = ("owner_name", "dev_eui", "chip_id")


@dataclass(frozen=True)
class ConfirmationMail:
    to: str
    link: str
    sensor_name: str


def registration_fields(items: Iterable[tuple[str, Any]], ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """A posted HTML form (its (name, value) pairs) as the fields of a RegistrationRequest (pure):
    `sensors` repeats (checkboxes) or is comma-separated, an empty optional field is absent, an
    unchecked consent box is not sent at all (False)."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key in ignore:
            continue
        text = value if isinstance(value, str) else str(value)
        if key in LIST_FIELDS:
            out.setdefault(key, []).extend(v for v in (p.strip() for p in text.split(",")) if v)
        elif key in OPTIONAL_FIELDS and not text.strip():
            continue
        else:
            out[key] = text
    out.setdefault("consent_public", False)
    return out


def email_key(settings: Settings, email: str) -> str:
    """The per-address limit counts under an HMAC of the address, never the address itself."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    return hmac.new(secret, f"signup:{email.strip().lower()}".encode(), hashlib.sha256).hexdigest()[:32]


def confirm_link(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}{CONFIRM_PATH}?token={token}"


def start_signup(conn: Any, settings: Settings, req: RegistrationRequest, client_address: str,
                 now: datetime | None = None) -> ConfirmationMail | None:
    """Count the sign-up against its network (RateLimited beyond), store it and return the mail to
    send, or None when this address already got `signup_email_limit` mails in the window."""
    now = now or datetime.now(UTC)
    service.check_registration_rate(conn, settings, client_address, now)
    repository.prune_signups(conn, now)
    key = email_key(settings, str(req.email))
    window = now - timedelta(seconds=settings.signup_email_window_s)
    if settings.signup_email_limit and repository.signups_for_email_since(conn, key, window) >= settings.signup_email_limit:
        log.info("sign-up: the per-address mail limit is reached; answered as usual, no mail sent")
        return None
    token = secrets.token_urlsafe(32)
    repository.insert_signup(conn, {
        "token_hash": hash_secret(token), "email_key": key, "request": req.model_dump(mode="json"),
        "created_at": now, "expires_at": now + timedelta(seconds=settings.signup_ttl_s)})
    return ConfirmationMail(to=str(req.email), link=confirm_link(settings, token), sensor_name=req.name)


def send_confirmation(settings: Settings, message: ConfirmationMail) -> None:
    """Deliver the confirmation mail (after the answer went out: errors are logged, not raised)."""
    assert settings.smtp_url is not None
    msg = mail.confirmation_message(sender=settings.mail_from, to=message.to, link=message.link,
                                    sensor_name=message.sensor_name, valid_hours=settings.signup_ttl_s / 3600)
    try:
        mail.send(settings.smtp_url.get_secret_value(), msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("sign-up: the confirmation mail could not be sent: %s", exc)


def pending(conn: Any, token: str, now: datetime | None = None) -> RegistrationRequest:
    """The request a valid, unused confirmation link stands for (for the page that confirms it)."""
    row = repository.pending_signup(conn, hash_secret(token or ""), now or datetime.now(UTC))
    if row is None:
        raise LinkInvalid()
    return RegistrationRequest.model_validate(row.request)


class LinkInvalid(NotFound):
    def __init__(self) -> None:
        super().__init__("this confirmation link is unknown, expired or already used: sign up again if needed")


def confirm(conn: Any, settings: Settings, token: str, now: datetime | None = None) -> tuple[int, RegistrationResult]:
    """Create the device of a confirmed sign-up (its request leaves the sign-up row) and return
    (sign-up id, credentials). The link works once; a duplicate chip id or DevEUI (409) leaves it
    unused."""
    now = now or datetime.now(UTC)
    row = repository.pending_signup(conn, hash_secret(token or ""), now, lock=True)
    if row is None:
        raise LinkInvalid()
    result = service.register_device(conn, settings, RegistrationRequest.model_validate(row.request))
    repository.confirm_signup(conn, row.id, result.uid, now)
    return int(row.id), result


def register_now(conn: Any, settings: Settings, req: RegistrationRequest, client_address: str,
                 now: datetime | None = None) -> tuple[int, RegistrationResult]:
    """Without a mail server: create the device at once (counted against its network) and a
    confirmed sign-up row, so its credentials page is shown once like any other."""
    now = now or datetime.now(UTC)
    service.check_registration_rate(conn, settings, client_address, now)
    repository.prune_signups(conn, now)
    result = service.register_device(conn, settings, req)
    signup_id = repository.insert_signup(conn, {
        "token_hash": hash_secret(secrets.token_urlsafe(32)), "email_key": email_key(settings, str(req.email)),
        "request": None, "created_at": now, "expires_at": now + timedelta(seconds=settings.signup_ttl_s),
        "confirmed_at": now, "device_uid": result.uid})
    return signup_id, result


def mark_shown(conn: Any, signup_id: int, now: datetime | None = None) -> bool:
    return repository.mark_credentials_shown(conn, signup_id, now or datetime.now(UTC))
