"""Volunteer onboarding rules: register a device, show its status, rotate its credentials, erase it.

Every function takes an open connection inside the caller's transaction (the CLI and the API own
it) and the settings. Secrets are returned once and only their hashes are stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
from civicair.core.domain import DeviceKind, Transport
from civicair.core.errors import (
    DeviceNotFound,
    DuplicateDevEUI,
    DuplicateDevice,
    InvalidInput,
    RateLimited,
    SettingsError,
)
from civicair.core.security import (
    hash_secret,
    new_device_token,
    new_device_uid,
    pseudonym,
    ref_hash,
)
from civicair.core.settings import Settings, device_broker_url
from civicair.firmware_tools import credentials, identifiers, repository
from civicair.firmware_tools.schemas import (
    BatteryStatus,
    Credentials,
    DeviceStatus,
    LoRaWANKeys,
    PrivacyZoneIn,
    RegistrationRequest,
    RegistrationResult,
)
from civicair.gateway.mosquitto_auth import hash_mosquitto_password
from civicair.readmodel import mobile_rollup
from sqlalchemy.engine import Row


def public_url(settings: Settings, pseudo: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/sensors/{pseudo}"  # the sensor's page (civicair.web)


def mqtt_topic(settings: Settings, uid: str) -> str:
    return f"{settings.direct_topic_prefix}/{uid}/up"


def _secret(settings: Settings) -> str:
    return settings.pseudonym_secret.get_secret_value()


def check_registration_rate(conn: Any, settings: Settings, client_address: str, now: datetime | None = None) -> None:
    """Count a registration from `client_address` (in the caller's transaction: a registration
    that fails is not counted), or raise RateLimited (429) when its network already made
    `registration_limit` in the last `registration_window_s` (docs/privacy.md#registration)."""
    if settings.registration_limit == 0:
        return
    now = now or datetime.now(UTC)
    window = timedelta(seconds=settings.registration_window_s)
    key = credentials.client_key(_secret(settings), client_address)
    n, oldest = repository.registrations_since(conn, key, now - window)
    if n >= settings.registration_limit:
        retry = max(1, int(((oldest or now) + window - now).total_seconds()) + 1)
        raise RateLimited(f"at most {settings.registration_limit} registrations per {settings.registration_window_s} s "
                          f"from one network; retry in {retry} s", retry_after=retry)
    repository.record_registration(conn, key, now, prune_before=now - window)


def register_device(conn: Any, settings: Settings, req: RegistrationRequest) -> RegistrationResult:
    """Create the device and return its credentials (shown once). Raises DuplicateDevEUI /
    DuplicateDevice (409) when the DevEUI or chip id already belongs to a device. The device is
    `pending`: public once past its QA window (docs/privacy.md#publication)."""
    if req.dev_eui and repository.uid_with_dev_eui(conn, req.dev_eui):
        raise DuplicateDevEUI(f"DevEUI {req.dev_eui} is already registered to another device",
                              parameter="dev_eui")
    if req.chip_id and repository.uid_with_chip_id(conn, req.chip_id):
        raise DuplicateDevice(f"chip id {req.chip_id} is already registered to another device",
                              parameter="chip_id")
    uid = new_device_uid()
    pseudo = pseudonym(_secret(settings), uid)
    cell = h3.latlng_to_cell(req.lat, req.lon, settings.h3_resolution) if req.kind is DeviceKind.FIXED else None
    token = new_device_token()
    creds = Credentials(device_token=token)
    values: dict[str, Any] = {
        "uid": uid, "pseudonym": pseudo, "name": req.name, "kind": req.kind.value,
        "sensor_models": req.sensors, "transport": req.transport.value, "chip_id": req.chip_id,
        "lat": req.lat, "lon": req.lon, "h3_cell": cell, "owner_email": str(req.email),
        "owner_name": req.owner_name, "consent_public": req.consent_public,
        "token_hash": hash_secret(token),
    }
    if req.transport is Transport.MQTT:
        password = credentials.new_mqtt_password()
        values.update(mqtt_username=uid, mqtt_password_hash=hash_mosquitto_password(password))
        creds.mqtt_username, creds.mqtt_password, creds.mqtt_topic = uid, password, mqtt_topic(settings, uid)
    elif req.transport is Transport.LORAWAN:
        dev_eui = req.dev_eui or _fresh_dev_eui(conn)
        keys = LoRaWANKeys(dev_eui=dev_eui, join_eui=settings.lorawan_join_eui, app_key=credentials.new_app_key())
        values.update(dev_eui=dev_eui, join_eui=keys.join_eui)
        creds.lorawan = keys
    repository.insert_device(conn, values)
    ids = identifiers.device_identifiers(uid=uid, dev_eui=values.get("dev_eui"), chip_id=req.chip_id)
    repository.unblock(conn, [ref_hash(_secret(settings), scheme, value) for scheme, value in ids.blocked])
    outcome = None
    if creds.lorawan is not None and settings.chirpstack_url:
        outcome = provision_chirpstack(settings, uid=uid, keys=creds.lorawan)
    return RegistrationResult(uid=uid, pseudonym=pseudo, h3_cell=cell, public_url=public_url(settings, pseudo),
                              transport=req.transport, credentials=creds, chirpstack=outcome)


def provision_chirpstack(settings: Settings, *, uid: str, keys: LoRaWANKeys) -> str:
    """Create the device and its OTAA keys in ChirpStack (idempotent); the one-line outcome."""
    from civicair.firmware_tools.chirpstack import provision_device

    target = _chirpstack_target(settings)
    assert keys.app_key is not None
    done = provision_device(target, dev_eui=keys.dev_eui, join_eui=keys.join_eui, app_key=keys.app_key,
                            name=uid, description="civicair volunteer sensor", tags={"civicair_uid": uid})
    return done.summary()


def _chirpstack_target(settings: Settings) -> Any:
    from civicair.firmware_tools.chirpstack import ChirpStackTarget

    missing = [name for name in ("chirpstack_api_key", "chirpstack_application_id", "chirpstack_device_profile_id")
               if not getattr(settings, name)]
    if missing:
        raise SettingsError(f"CIVICAIR_CHIRPSTACK_URL is set but {', '.join('CIVICAIR_' + m.upper() for m in missing)}"
                            " is empty")
    assert settings.chirpstack_url and settings.chirpstack_api_key  # for the type checker
    return ChirpStackTarget(url=settings.chirpstack_url, api_key=settings.chirpstack_api_key.get_secret_value(),
                            application_id=str(settings.chirpstack_application_id),
                            device_profile_id=str(settings.chirpstack_device_profile_id))


def _fresh_dev_eui(conn: Any) -> str:
    while True:
        eui = credentials.new_dev_eui()
        if repository.uid_with_dev_eui(conn, eui) is None:
            return eui


def _device(conn: Any, device_id: int) -> Any:
    row = repository.device_by_id(conn, device_id)
    if row is None:
        raise DeviceNotFound("this device no longer exists")
    return row


def device_by_uid(conn: Any, uid: str) -> Any:
    row = repository.device_by_uid(conn, uid)
    if row is None:
        raise DeviceNotFound(f"no device with id {uid!r}")
    return row


def device_status(conn: Any, settings: Settings, device_id: int) -> DeviceStatus:
    row = _device(conn, device_id)
    since = datetime.now(UTC) - timedelta(hours=24)
    return DeviceStatus(
        uid=row.uid, pseudonym=row.pseudonym, name=row.name, kind=row.kind, transport=row.transport,
        sensors=list(row.sensor_models), h3_cell=row.h3_cell, public_url=public_url(settings, row.pseudonym),
        consent_public=row.consent_public, status=row.status, stars=row.stars,
        first_seen=row.first_seen, last_seen=row.last_seen,
        readings_last_24h=repository.readings_count_since(conn, device_id, since),
        flags=[dict(r._mapping) for r in repository.recent_flags(conn, device_id)],
        calibration=[dict(r._mapping) for r in repository.active_calibrations(conn, device_id)],
        battery=(BatteryStatus(at=b.time, level_pct=b.level_pct, external_power=b.external_power,
                               margin_db=b.margin_db)
                 if (b := repository.latest_battery(conn, device_id)) is not None else None),
    )


def rotate_credentials(conn: Any, settings: Settings, device_id: int) -> Credentials:
    """A new device token (and MQTT password for MQTT devices); the old ones stop working at once.
    LoRaWAN keys live in the network server and are not rotated here."""
    row = _device(conn, device_id)
    token = new_device_token()
    values: dict[str, Any] = {"token_hash": hash_secret(token)}
    creds = Credentials(device_token=token)
    if row.transport == Transport.MQTT.value:
        password = credentials.new_mqtt_password()
        values["mqtt_password_hash"] = hash_mosquitto_password(password)
        creds.mqtt_username, creds.mqtt_password = row.mqtt_username, password
        creds.mqtt_topic = mqtt_topic(settings, row.uid)
    repository.update_device(conn, device_id, values)
    return creds


def privacy_zones(conn: Any, device_id: int) -> list[PrivacyZoneIn]:
    row = _device(conn, device_id)
    return [PrivacyZoneIn.model_validate(z) for z in row.privacy_zones or ()]


def set_privacy_zones(conn: Any, device_id: int, zones: list[PrivacyZoneIn]) -> list[PrivacyZoneIn]:
    """Replace a mobile device's privacy zones (docs/privacy.md#privacy-zones). Its points leave
    every public cell at once and come back, filtered by the new zones, with the next run of the
    mobile rollup (which recomputes its whole history)."""
    row = _device(conn, device_id)
    if row.kind != DeviceKind.MOBILE.value:
        raise InvalidInput("privacy zones are for mobile devices: a fixed device's position is never published",
                           parameter="zones")
    repository.update_device(conn, device_id, {"privacy_zones": [z.model_dump() for z in zones]})
    mobile_rollup.invalidate_device(conn, device_id)
    return zones


def erase_code(settings: Settings, uid: str, now: int | None = None) -> tuple[str, int]:
    """The confirmation code of an erase request and its expiry (unix seconds)."""
    expires = int(now if now is not None else time.time()) + settings.erase_confirm_ttl_s
    return credentials.erase_confirmation(_secret(settings), uid, expires), expires


def erase_device(conn: Any, settings: Settings, device_id: int, confirm: str,
                 erase_files: Callable[[str], dict[str, int]]) -> dict[str, Any]:
    """Erase everything about the device (docs/privacy.md#erasure), in the caller's transaction:
    every row of it in every table, every quarantined or dead-lettered message naming it by any
    identifier, and, through `erase_files(pseudonym)` (the open-data export's eraser, called
    before the commit so a failure leaves nothing half done), its rows in every published file;
    its hardware ids are blocked so quarantine stops filling from them, and a LoRaWAN device is
    deleted from ChirpStack when provisioning is configured. Requires the code from `erase_code`."""
    row = _device(conn, device_id)
    reason = credentials.check_erase_confirmation(_secret(settings), row.uid, confirm, int(time.time()))
    if reason is not None:
        raise InvalidInput(reason, parameter="confirm")
    ids = identifiers.device_identifiers(uid=row.uid, mqtt_username=row.mqtt_username, dev_eui=row.dev_eui,
                                         tts_device_id=row.tts_device_id, chip_id=row.chip_id)
    blocked = [(ref_hash(_secret(settings), scheme, value), scheme, "erased") for scheme, value in ids.blocked]
    counts: dict[str, Any] = dict(repository.erase_device(conn, device_id, ids, blocked))
    counts["files"] = erase_files(row.pseudonym)
    if row.dev_eui and settings.chirpstack_url:
        counts["chirpstack"] = deprovision_chirpstack(settings, row.dev_eui)
    return counts


def deprovision_chirpstack(settings: Settings, dev_eui: str) -> str:
    """Delete the device from ChirpStack (idempotent); the one-line outcome. A failure is
    reported, not raised: the erasure itself must not wait on the network server (the DevEUI is
    blocked here anyway)."""
    from civicair.firmware_tools.chirpstack import ProvisioningError, delete_device

    try:
        return delete_device(_chirpstack_target(settings), dev_eui)
    except (ProvisioningError, SettingsError) as exc:
        return f"ChirpStack: not deleted ({exc.detail}); delete {dev_eui} there by hand"


def stored_credentials(settings: Settings, row: Row[Any]) -> Credentials:
    """What can be told again later: usernames, topic, EUIs. Secrets (token, passwords, AppKey) are
    stored only as hashes or in the network server, so they are None (placeholders in bundles)."""
    creds = Credentials()
    if row.transport == Transport.MQTT.value:
        creds.mqtt_username, creds.mqtt_topic = row.mqtt_username, mqtt_topic(settings, row.uid)
    if row.transport == Transport.LORAWAN.value and row.dev_eui:
        creds.lorawan = LoRaWANKeys(dev_eui=row.dev_eui, join_eui=row.join_eui or settings.lorawan_join_eui)
    return creds


def bundle_files(settings: Settings, row: Row[Any], creds: Credentials | None = None) -> dict[str, bytes]:
    """The flash bundle of a device; without `creds` the secrets are placeholders."""
    from civicair.firmware_tools.bundle import BundleInput, build_bundle

    creds = creds if creds is not None else stored_credentials(settings, row)
    broker = device_broker_url(settings)
    if row.transport == Transport.MQTT.value and broker is None:
        # the embedded broker's port is only known to the process that runs it
        raise SettingsError("the broker devices connect to is unknown here: set CIVICAIR_DEVICE_MQTT_URL "
                            "(or CIVICAIR_MQTT_URL, or CIVICAIR_EMBEDDED_BROKER_PORT)")

    return build_bundle(BundleInput(
        uid=row.uid, pseudonym=row.pseudonym, kind=row.kind, transport=row.transport,
        sensors=tuple(row.sensor_models), public_url=public_url(settings, row.pseudonym),
        api_base_url=settings.public_base_url, mqtt_url=broker,
        interval_s=settings.device_interval_s, credentials=creds,
    ))


# --- "my sensor" (issue 17s): the volunteer's signed-in pages (web/mysensor.py) --------------------
def device_by_token(conn: Any, token: str) -> Any:
    """The device a (current) device token belongs to, or None."""
    return repository.device_by_token_hash(conn, hash_secret(token)) if token else None


def latest_readings(conn: Any, device_id: int, since: datetime | None = None, limit: int = 20) -> list[Any]:
    """The device's own latest stored readings (its owner sees them before any publication rule:
    they are not public data), newest received first."""
    since = since or datetime.now(UTC) - timedelta(days=7)
    return repository.latest_readings(conn, device_id, since, limit=limit)
