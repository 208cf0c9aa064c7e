"""The operator console (docs/storage.md#operator-console): an operator signs in with a partner
key holding the `operator` scope and works on what the pipeline could not settle alone.

`/operator/` summary · `/operator/dead-letters` list (filters), `/{id}` inspect, `POST /{id}/replay`
(gateway/dead_letters.py) · `/operator/quarantine` list, `/{id}` inspect, `POST /{id}/attach` to a
registered device, `POST /operator/quarantine/replay` (gateway/service.py) · `/operator/devices`
devices awaiting publication, `POST /{uid}/approve | withhold | pending`
(firmware_tools/publication.py) · `/operator/health` gateways, spool, jobs (gateway/health.py).
Every form carries the session's CSRF token; the handlers call the same functions as the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

from civicair.api.sessions import check_form
from civicair.core.db import Database
from civicair.core.errors import CivicairError, NotFound
from civicair.core.settings import Settings
from civicair.firmware_tools.publication import FILTERS, list_publication, set_publication
from civicair.gateway import dead_letters
from civicair.gateway.health import operations_health
from civicair.gateway.routing import TopicRouter
from civicair.gateway.service import (
    attach_quarantined,
    get_quarantined,
    list_quarantine,
    replay_quarantined,
)
from civicair.web import signin
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Connection

router = APIRouter(prefix="/operator", include_in_schema=False)
AREA = signin.Area(kind="operator", scope="operator", prefix="/operator")
SOURCES = ("chirpstack", "tts", "mqtt", "http", "sensor_community")
VERBS = {"approve": "approved", "withhold": "withheld", "pending": "pending"}
UID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PAGE = 100
Token = Annotated[str, Form(max_length=400)]


@contextmanager
def _read(request: Request) -> Iterator[Connection]:
    with request.app.state.db.read_engine.connect() as conn:
        yield conn


def _user(request: Request) -> signin.SignedIn | None:
    with _read(request) as conn:
        return signin.signed_in(request, conn, AREA)


def _check(request: Request, user: signin.SignedIn, token: str) -> None:
    check_form(request, request.app.state.settings, token, user.session)


def _db(request: Request) -> Database:
    return request.app.state.db


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return signin.sign_in_page(request, AREA, next=next)


@router.post("/sign-in")
def sign_in(request: Request, api_key: Annotated[str, Form(max_length=200)] = "", csrf_token: Token = "",
            next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    with _read(request) as conn:
        return signin.sign_in(request, conn, AREA, api_key=api_key, csrf_token=csrf_token, next=next)


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Token = "") -> Response:
    return signin.sign_out(request, AREA, csrf_token)


def _health(request: Request) -> Any:
    state = request.app.state
    return operations_health(state.db, state.settings, broker=state.broker_status(), scheduler=state.scheduler)


@router.get("/")
def home(request: Request) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    with _read(request) as conn:
        awaiting = len(list_publication(conn, request.app.state.settings, "awaiting", limit=1000))
    return signin.signed_page(request, user, "operator/home.html", health=_health(request), awaiting=awaiting)


@router.get("/health")
def health(request: Request) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    return signin.signed_page(request, user, "operator/health.html", health=_health(request))


# --- dead letters ------------------------------------------------------------------------------
@router.get("/dead-letters")
def dead_letter_list(request: Request, source: str | None = None, device: str | None = None,
                     error: str | None = None, all: str | None = None, before: int | None = None) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    picked_source = source if source in SOURCES else None
    picked_device = (device or "").strip()[:64] or None
    picked_error = (error or "").strip()[:200] or None
    replayed_too = all == "1"
    rows = dead_letters.list_dead_letters(_db(request), include_replayed=replayed_too, source=picked_source,
                                          device_uid=picked_device, error_contains=picked_error,
                                          before_id=before, limit=PAGE)
    chosen = {"source": picked_source, "device": picked_device, "error": picked_error, "all": replayed_too}
    more = None
    if len(rows) == PAGE:
        more = "?" + urlencode({**{k: v for k, v in chosen.items() if v and k != "all"},
                                **({"all": "1"} if replayed_too else {}), "before": rows[-1].id})
    return signin.signed_page(request, user, "operator/dead_letters.html", rows=rows, chosen=chosen,
                              sources=SOURCES, more=more, overflow=dead_letters.overflow(_db(request)))


def _dead_letter_page(request: Request, user: signin.SignedIn, entry_id: int, *, outcome: Any = None,
                      status: int = 200) -> Response:
    try:
        entry = dead_letters.get_dead_letter(_db(request), entry_id)
    except NotFound:
        return signin.signed_page(request, user, "operator/missing.html", status=404, what=f"#{entry_id}")
    text = dead_letters.payload_text(entry.payload)
    return signin.signed_page(request, user, "operator/dead_letter.html", status=status, entry=entry.summary,
                              text=text, dump=None if text is not None else dead_letters.hex_dump(entry.payload),
                              outcome=outcome)


@router.get("/dead-letters/{entry_id}")
def dead_letter(request: Request, entry_id: int) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    return _dead_letter_page(request, user, entry_id)


@router.post("/dead-letters/{entry_id}/replay")
def dead_letter_replay(request: Request, entry_id: int, csrf_token: Token = "") -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    _check(request, user, csrf_token)
    settings: Settings = request.app.state.settings
    (outcome,) = dead_letters.replay_dead_letters(_db(request), TopicRouter.from_settings(settings), [entry_id])
    return _dead_letter_page(request, user, entry_id, outcome=outcome, status=200 if outcome.replayed else 409)


# --- quarantine --------------------------------------------------------------------------------
@router.get("/quarantine")
def quarantine_list(request: Request, all: str | None = None) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    rows = list_quarantine(_db(request), include_replayed=all == "1", limit=PAGE)
    return signin.signed_page(request, user, "operator/quarantine.html", rows=rows, all=all == "1", result=None)


def _quarantine_page(request: Request, user: signin.SignedIn, row_id: int, *, note: str | None = None,
                     error: str | None = None, uid: str = "", status: int = 200) -> Response:
    try:
        entry = get_quarantined(_db(request), row_id)
    except NotFound:
        return signin.signed_page(request, user, "operator/missing.html", status=404, what=f"#{row_id}")
    payload = entry.payload or b""
    text = dead_letters.payload_text(payload)
    return signin.signed_page(request, user, "operator/quarantine_entry.html", status=status, entry=entry,
                              text=text, dump=None if text is not None else dead_letters.hex_dump(payload),
                              note=note, error=error, uid=uid)


@router.get("/quarantine/{row_id}")
def quarantined(request: Request, row_id: int) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    return _quarantine_page(request, user, row_id)


@router.post("/quarantine/{row_id}/attach")
def quarantine_attach(request: Request, row_id: int, device_uid: Annotated[str, Form(max_length=200)] = "",
                      remember: Annotated[str, Form(max_length=10)] = "", csrf_token: Token = "") -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    _check(request, user, csrf_token)
    uid = device_uid.strip()
    if not UID.match(uid):
        return _quarantine_page(request, user, row_id, error="op.q.bad_uid", uid=uid[:64], status=422)
    try:
        note = attach_quarantined(_db(request), row_id, uid, remember=remember == "1")
    except NotFound as exc:  # the entry or the device
        return _quarantine_page(request, user, row_id, error=exc.detail, uid=uid, status=404)
    except CivicairError as exc:  # a reference already set to another value, or another device's
        return _quarantine_page(request, user, row_id, error=exc.detail, uid=uid, status=exc.status)
    return _quarantine_page(request, user, row_id, note=note)


@router.post("/quarantine/replay")
def quarantine_replay(request: Request, csrf_token: Token = "") -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    _check(request, user, csrf_token)
    settings: Settings = request.app.state.settings
    result = replay_quarantined(_db(request), TopicRouter.from_settings(settings))
    rows = list_quarantine(_db(request), limit=PAGE)
    return signin.signed_page(request, user, "operator/quarantine.html", rows=rows, all=False, result=result)


# --- publication -------------------------------------------------------------------------------
@router.get("/devices")
def devices(request: Request, state: str = "awaiting", after: str | None = None, changed: str | None = None) -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    state = state if state in FILTERS else "awaiting"
    after = after if after and UID.match(after) else None
    with _read(request) as conn:
        rows = list_publication(conn, request.app.state.settings, state, after=after, limit=PAGE)
    more = f"?{urlencode({'state': state, 'after': rows[-1].uid})}" if len(rows) == PAGE else None
    return signin.signed_page(request, user, "operator/devices.html", rows=rows, state=state, filters=FILTERS,
                              more=more, changed=changed if changed and UID.match(changed) else None)


@router.post("/devices/{uid}/{verb}")
def device_publication(request: Request, uid: str, verb: str, csrf_token: Token = "",
                       note: Annotated[str, Form(max_length=500)] = "",
                       back: Annotated[str, Form(max_length=40)] = "awaiting") -> Response:
    if (user := _user(request)) is None:
        return signin.to_sign_in(request, AREA)
    _check(request, user, csrf_token)
    if verb not in VERBS or not UID.match(uid):
        return signin.signed_page(request, user, "operator/missing.html", status=404, what=uid[:64])
    try:
        with _db(request).engine.begin() as conn:
            set_publication(conn, request.app.state.settings, uid, VERBS[verb], note=note.strip() or None,
                            by=f"console:{user.partner.name}")
    except NotFound:
        return signin.signed_page(request, user, "operator/missing.html", status=404, what=uid)
    back = back if back in FILTERS else "awaiting"
    return RedirectResponse(f"/operator/devices?{urlencode({'state': back, 'changed': uid})}", status_code=303)
