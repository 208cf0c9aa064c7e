"""Browser sessions over HTTP (docs/privacy.md#browser-sessions): the signed session cookie of
`core.sessions` (HttpOnly, SameSite=Lax, Secure when the public URL is https, expiring), and CSRF
tokens for forms. Any kind of signed-in user uses it: partners now, volunteers and operators next.

`optional_session(kind)` is the dependency; a page that needs a user redirects to its sign-in
when it returns None. Forms carry `csrf_token`; `check_form` refuses a post without a valid one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from civicair.core import sessions
from civicair.core.errors import Forbidden
from civicair.core.settings import Settings
from fastapi import Request, Response

SESSION_COOKIE = "civicair_session"
NONCE_COOKIE = "civicair_form_nonce"  # binds the CSRF token of forms shown before sign-in
NONCE_TTL_S = 3600


def session_keys(settings: Settings) -> list[bytes]:
    """Signing key first, then the earlier keys still accepted. Without a configured session
    secret the key is derived from the pseudonym secret (never that secret itself)."""
    current = (settings.session_secret or settings.pseudonym_secret).get_secret_value()
    return [sessions.derive_key(current, "session")] + [
        sessions.derive_key(s.get_secret_value(), "session") for s in settings.session_previous_secrets]


def cookie_secure(settings: Settings) -> bool:
    return settings.public_base_url.lower().startswith("https://")


def read_session(request: Request, settings: Settings, kind: str) -> sessions.Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return sessions.verify(token, session_keys(settings), time.time(), kind=kind)
    except sessions.InvalidSession:
        return None


def optional_session(kind: str) -> Callable[[Request], sessions.Session | None]:
    """Dependency: the signed-in session of this kind, or None."""

    def dependency(request: Request) -> sessions.Session | None:
        return read_session(request, request.app.state.settings, kind)

    return dependency


def start_session(response: Response, settings: Settings, subject: str, kind: str,
                  data: dict[str, object] | None = None) -> sessions.Session:
    session = sessions.new_session(subject, kind, session_id=secrets.token_urlsafe(16), now=time.time(),
                                   ttl_s=settings.session_ttl_s, data=data)
    response.set_cookie(SESSION_COOKIE, sessions.sign(session, session_keys(settings)[0]), max_age=settings.session_ttl_s,
                        path="/", httponly=True, samesite="lax", secure=cookie_secure(settings))
    return session


def end_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(settings))


def session_csrf(settings: Settings, session: sessions.Session) -> str:
    return sessions.csrf_token(session.session_id, session_keys(settings)[0])


def form_csrf(request: Request, settings: Settings) -> tuple[str, str | None]:
    """The CSRF token of a form shown before sign-in, and the new nonce to remember (with
    `remember_form_nonce`) when the browser has none yet."""
    nonce = request.cookies.get(NONCE_COOKIE)
    new = None
    if not nonce:
        nonce = new = secrets.token_urlsafe(16)
    return sessions.csrf_token(nonce, session_keys(settings)[0]), new


def remember_form_nonce(response: Response, settings: Settings, nonce: str | None) -> None:
    if nonce:
        response.set_cookie(NONCE_COOKIE, nonce, max_age=NONCE_TTL_S, path="/", httponly=True, samesite="lax",
                            secure=cookie_secure(settings))


def check_form(request: Request, settings: Settings, token: str | None,
               session: sessions.Session | None = None) -> None:
    """Refuse a posted form whose CSRF token does not belong to this browser (its session, or its
    pre-sign-in nonce)."""
    binding = session.session_id if session is not None else request.cookies.get(NONCE_COOKIE)
    if not sessions.check_csrf(token, binding, session_keys(settings)):
        raise Forbidden("missing or invalid CSRF token: reload the form and submit it again")
