"""The volunteer's sign-up pages (docs/onboarding.md): the form (posted form-encoded, the same
fields `POST /v1/volunteer/devices` takes), "check your mail", the confirmation link's page, the
credentials shown once, the bundle with those credentials filled in, and the flashing guide.

Every form carries a CSRF token bound to the browser (`api.sessions.form_csrf`); a post without
one is refused (403) with the form re-rendered, nothing lost. The credentials travel from the
confirmation to their page in a short-lived signed cookie scoped to that page, and the sign-up
row records that they were shown: a reload shows them no more.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from civicair.api.deps import SettingsDep
from civicair.api.sessions import (
    check_form,
    cookie_secure,
    form_csrf,
    remember_form_nonce,
    session_keys,
)
from civicair.api.volunteer.endpoints import client_address
from civicair.core import sessions
from civicair.core.errors import CivicairError, Forbidden, RateLimited
from civicair.core.security import hash_secret
from civicair.core.settings import Settings
from civicair.firmware_tools import repository, service, signup
from civicair.firmware_tools.bundle import bundle_zip
from civicair.firmware_tools.schemas import (
    SENSOR_MODELS,
    Credentials,
    RegistrationRequest,
    RegistrationResult,
)
from civicair.gateway.mosquitto_auth import verify_mosquitto_password
from civicair.web.i18n import message as translated
from civicair.web.render import language, page
from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

router = APIRouter(prefix="/volunteer", include_in_schema=False)
CREDENTIALS_COOKIE = "civicair_credentials"
CREDENTIALS_PATH = "/volunteer/credentials"
CREDENTIALS_TTL_S = 300
PM_CHOICES = ("SDS011", "PMS5003", "PMS7003", "SPS30", "SEN5X")
CLIMATE_CHOICES = ("BME280", "BMP280", "SHT3X", "DHT22")
OTHER_CHOICES = tuple(m for m in SENSOR_MODELS if m not in PM_CHOICES + CLIMATE_CHOICES + ("SHT31",))  # = SHT3X
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def field_errors(exc: ValidationError, values: dict[str, Any], lang: str) -> dict[str, str]:
    """The first error of each field: "required" in the page's language for an empty one, the
    validator's own (English) sentence otherwise."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else "form"
        empty = values.get(name) in (None, "", [])
        errors.setdefault(name, translated(lang, "vol.err.required") if empty else e["msg"])
    return errors


def _form_page(request: Request, settings: Settings, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, error: str | None = None, status: int = 200) -> HTMLResponse:
    token, nonce = form_csrf(request, settings)
    response = page(request, "volunteer/sign_up.html", status=status, csrf_token=token, values=values or {},
                    errors=errors or {}, error=error, pm_choices=PM_CHOICES, climate_choices=CLIMATE_CHOICES,
                    other_choices=OTHER_CHOICES, mail=settings.smtp_url is not None)
    remember_form_nonce(response, settings, nonce)
    return response


def _credentials_page(request: Request, settings: Settings, result: RegistrationResult) -> Response:
    token, nonce = form_csrf(request, settings)
    response = page(request, "volunteer/credentials.html", result=result, creds=result.credentials,
                    csrf_token=token)
    remember_form_nonce(response, settings, nonce)
    return _no_store(response)


@router.get("/sign-up", response_class=HTMLResponse)
def sign_up_form(request: Request, settings: SettingsDep) -> Response:
    return _form_page(request, settings)


@router.post("/sign-up", response_class=HTMLResponse)
async def sign_up(request: Request, settings: SettingsDep, tasks: BackgroundTasks) -> Response:
    form = await request.form()
    values = signup.registration_fields(form.multi_items(), ignore=("csrf_token",))
    # the database work and the password hashing run in the thread pool, off the event loop
    return await run_in_threadpool(_sign_up, request, settings, tasks, values, str(form.get("csrf_token") or ""))


def _sign_up(request: Request, settings: Settings, tasks: BackgroundTasks, values: dict[str, Any],
             csrf_token: str) -> Response:
    try:
        check_form(request, settings, csrf_token)
    except Forbidden as exc:
        return _form_page(request, settings, values, error=exc.detail, status=403)
    try:
        req = RegistrationRequest.model_validate(values)
    except ValidationError as exc:
        errors = field_errors(exc, values, language(request))
        return _form_page(request, settings, values, errors=errors, status=422)
    try:
        with request.app.state.db.engine.begin() as conn:  # committed before the mail goes out
            if settings.smtp_url is None:
                return _to_credentials(settings, *signup.register_now(conn, settings, req, client_address(request)))
            message = signup.start_signup(conn, settings, req, client_address(request))
    except RateLimited as exc:
        return _form_page(request, settings, values, error=exc.detail, status=429)
    except CivicairError as exc:  # a chip id or DevEUI already registered
        return _form_page(request, settings, values, error=exc.detail, status=exc.status)
    if message is not None:
        tasks.add_task(signup.send_confirmation, settings, message)
    return page(request, "volunteer/check_mail.html")


@router.get("/confirm", response_class=HTMLResponse)
def confirm_page(request: Request, settings: SettingsDep, token: str = Query("", max_length=200)) -> Response:
    with request.app.state.db.engine.connect() as conn:  # the primary: the sign-up was just written
        try:
            req = signup.pending(conn, token)
        except signup.LinkInvalid as exc:
            return page(request, "volunteer/message.html", status=404, title_key="vol.link.title", text=exc.detail)
    csrf, nonce = form_csrf(request, settings)
    response = page(request, "volunteer/confirm.html", req=req, token=token, csrf_token=csrf)
    remember_form_nonce(response, settings, nonce)
    return _no_store(response)


@router.post("/confirm")
def confirm(request: Request, settings: SettingsDep, token: Annotated[str, Form(max_length=200)] = "",
            csrf_token: Annotated[str, Form()] = "") -> Response:
    try:
        check_form(request, settings, csrf_token)
        with request.app.state.db.engine.begin() as conn:
            signup_id, result = signup.confirm(conn, settings, token)
    except CivicairError as exc:
        return page(request, "volunteer/message.html", status=exc.status, title_key="vol.link.title", text=exc.detail)
    return _to_credentials(settings, signup_id, result)


def _to_credentials(settings: Settings, signup_id: int, result: RegistrationResult) -> Response:
    """Redirect (303: a reload never posts again) to the credentials page, which shows what the
    short-lived signed cookie carries, once."""
    claims = sessions.new_session(str(signup_id), "credentials", session_id=str(signup_id), now=time.time(),
                                  ttl_s=CREDENTIALS_TTL_S, data={"result": result.model_dump(mode="json")})
    response = RedirectResponse(CREDENTIALS_PATH, status_code=303)
    response.set_cookie(CREDENTIALS_COOKIE, sessions.sign(claims, session_keys(settings)[0]), max_age=CREDENTIALS_TTL_S,
                        path=CREDENTIALS_PATH, httponly=True, samesite="strict", secure=cookie_secure(settings))
    return response


@router.get("/credentials", response_class=HTMLResponse)
def credentials(request: Request, settings: SettingsDep) -> Response:
    """The credentials of the sign-up just confirmed, once."""
    shown = None
    try:
        claims = sessions.verify(request.cookies.get(CREDENTIALS_COOKIE, ""), session_keys(settings), time.time(),
                                 kind="credentials")
    except sessions.InvalidSession:
        claims = None
    if claims is not None:
        with request.app.state.db.engine.begin() as conn:
            if signup.mark_shown(conn, int(claims.subject)):
                shown = RegistrationResult.model_validate(claims.data["result"])
    response = (_credentials_page(request, settings, shown) if shown is not None else
                _no_store(page(request, "volunteer/message.html", status=410, title_key="vol.shown.title",
                               text=None)))
    response.delete_cookie(CREDENTIALS_COOKIE, path=CREDENTIALS_PATH, httponly=True, samesite="strict",
                           secure=cookie_secure(settings))
    return response


@router.post("/bundle")
def bundle(request: Request, settings: SettingsDep, csrf_token: Annotated[str, Form()] = "",
           device_token: Annotated[str, Form(max_length=200)] = "",
           mqtt_password: Annotated[str, Form(max_length=200)] = "",
           app_key: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The flash bundle with the secrets the credentials page holds (the device token proves the
    device; a secret that does not match stays a placeholder)."""
    check_form(request, settings, csrf_token)
    with request.app.state.db.engine.connect() as conn:  # the primary: the device was just created
        row = repository.device_by_token_hash(conn, hash_secret(device_token)) if device_token else None
        if row is None:
            return page(request, "volunteer/message.html", status=401, title_key="vol.bundle.title",
                        text=None, text_key="vol.bundle.unknown")
        creds: Credentials = service.stored_credentials(settings, row)
        creds.device_token = device_token
        if row.mqtt_password_hash and mqtt_password and verify_mosquitto_password(mqtt_password, row.mqtt_password_hash):
            creds.mqtt_password = mqtt_password
        if creds.lorawan is not None and HEX32.match(app_key.strip().lower()):
            creds.lorawan.app_key = app_key.strip().lower()
        files = service.bundle_files(settings, row, creds)
    name = f"civicair-{row.pseudonym}"
    return _no_store(Response(bundle_zip(files, name), media_type="application/zip",
                              headers={"Content-Disposition": f'attachment; filename="{name}.zip"'}))


@router.get("/flash", response_class=HTMLResponse)
def flash(request: Request) -> Response:
    return page(request, "volunteer/flash.html")
