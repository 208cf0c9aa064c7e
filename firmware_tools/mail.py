"""The sign-up confirmation mail: the message (pure, French and English in one mail, since the
page's language is not the reader's for sure) and its delivery to the SMTP server of
`CIVICAIR_SMTP_URL` (docs/onboarding.md#sign-up-by-e-mail)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from civicair.core.errors import SettingsError


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte; smtp: STARTTLS when the server offers it
    username: str | None
    password: str | None


def smtp_target(url: str) -> SmtpTarget:
    """smtp://[user:pass@]host[:port] (port 25 by default, 587 is usual with a password) or
    smtps://…[:465]."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError(f"CIVICAIR_SMTP_URL must look like smtp://user:pass@host:587, got scheme {parts.scheme!r}")
    tls = parts.scheme == "smtps"
    return SmtpTarget(host=parts.hostname, port=parts.port or (465 if tls else 25), tls=tls,
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None)


def confirmation_message(*, sender: str, to: str, link: str, sensor_name: str, valid_hours: float) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = "civicair : confirmez votre capteur / confirm your sensor"
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or "civicair.invalid")
    hours = f"{valid_hours:g}"
    msg.set_content(f"""Bonjour,

Quelqu'un (vous, sans doute) a inscrit le capteur « {sensor_name} » sur civicair avec cette adresse.
Pour confirmer et recevoir les identifiants du capteur, ouvrez ce lien (valable {hours} h) :

{link}

Si ce n'est pas vous, ignorez ce message : rien ne sera créé.

---

Hello,

Someone (you, most likely) registered the sensor "{sensor_name}" on civicair with this address.
To confirm it and receive the sensor's credentials, open this link (valid {hours} h):

{link}

If this was not you, ignore this message: nothing will be created.
""")
    return msg


def send(url: str, message: EmailMessage, timeout: float = 20.0) -> None:
    """Deliver `message` to the SMTP server (raises OSError / smtplib.SMTPException on failure)."""
    target = smtp_target(url)
    context = ssl.create_default_context()
    if target.tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    with client:
        client.ehlo()
        if not target.tls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
        client.send_message(message)
