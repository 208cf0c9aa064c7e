"""Service settings: one `Settings` object built at start-up and passed down.

Every value comes from an environment variable prefixed ``CIVICAIR_`` (or a ``.env`` file).
Nothing below this module reads ``os.environ``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO_PSEUDONYM_SECRET = "change-me-civicair-pseudonym-secret"  # noqa: S105 - the demo's, refused elsewhere


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVICAIR_", env_file=".env", extra="ignore")

    # --- core -------------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db). Empty: embedded PostgreSQL.",
    )
    read_database_url: SecretStr | None = Field(
        default=None, description="Optional read replica for the API. Empty: same as database_url."
    )
    mqtt_url: str | None = Field(
        default=None,
        description="MQTT broker URL (mqtt://user:pass@host:1883). Empty: embedded amqtt broker.",
    )
    data_dir: Path = Field(default=Path("./.civicair"), description="Embedded database, spool, exports.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_reuse_port: bool = Field(default=False, description=(
        "Bind the API with SO_REUSEPORT so several `civicair api` processes share the port (one per core)."))
    pseudonym_secret: SecretStr = Field(
        default=SecretStr(DEMO_PSEUDONYM_SECRET),
        description="HMAC key for public device pseudonyms and blocked ids; the default is refused outside --demo.",
    )
    portal_base_url: str = "https://data.example-metropole.fr/datasets"
    public_base_url: str = Field(
        default="", description="Public base URL of the API (catalogue, downloads, links, QR codes). Empty: derived "
        "from where the API listens, http://API_HOST:API_PORT (see `derive_public_base_url`).")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- open data ----------------------------------------------------------------------------
    # the title and URL of Etalab's licence exactly as the portals' licence registers know them
    # (udata `lov2`; a CKAN register entry): docs/open-data.md#licence-and-attribution
    licence_name: str = "Licence Ouverte / Open Licence version 2.0"
    licence_url: str = "https://www.etalab.gouv.fr/licence-ouverte-open-licence"
    attribution: str = "civicair contributors and volunteers"
    h3_resolution: int = Field(default=9, ge=0, le=15)
    k_anonymity: int = Field(default=3, ge=1, description="Minimum distinct devices per published cell/zone-hour.")
    cors_origins: list[str] = Field(default_factory=list)

    # --- gateway ------------------------------------------------------------------------------
    mqtt_client_id: str | None = Field(default=None, description=(
        "Fixed per gateway process (its persistent session). Empty: derived from the database's "
        "installation id and the host name (gateway/lease.py)."))
    mqtt_shared_group: str | None = Field(default=None, description="Shared subscription group ($share/<group>/...).")
    mqtt_receive_maximum: int = 65535
    mqtt_session_expiry_s: int = 3600
    mosquitto_password_file: Path | None = Field(default=None, description="Mosquitto password_file kept in sync "
                                                 "with the devices table by the scheduled job (with the ACL file).")
    mosquitto_acl_file: Path | None = Field(default=None, description="Mosquitto acl_file kept in sync (see above).")
    mosquitto_pid_file: Path | None = Field(default=None, description="Mosquitto's pid_file: the broker is sent "
                                            "SIGHUP (reload) after the files change.")
    mosquitto_sync_interval_s: float = Field(default=15.0, gt=0, description="How often the files are checked.")
    mosquitto_chirpstack_user: str | None = Field(default=None, description="ChirpStack's MQTT integration user "
                                                  "in the synced files (allowed under its topic prefix).")
    mosquitto_chirpstack_password: SecretStr | None = None
    chirpstack_enabled: bool = True
    chirpstack_topic_prefix: str = "application"
    chirpstack_marshaler: Literal["json", "protobuf", "auto"] = "auto"
    tts_enabled: bool = True
    tts_topic_prefix: str = "v3"
    direct_enabled: bool = True
    direct_topic_prefix: str = "civicair/v1/devices"
    queue_max: int = Field(default=50_000, ge=1, description="Bounded in-memory queue (messages).")
    http_max_body_bytes: int = 64 * 1024

    # --- ingest -------------------------------------------------------------------------------
    batch_max_rows: int = 5000
    batch_max_age_ms: int = 250
    clock_future_s: int = 300
    clock_past_s: int = 7 * 24 * 3600
    raw_retention_days: int = 730
    ingest_retry_max_s: float = Field(default=30.0, gt=0, description="Cap of the writer's retry backoff (database down).")
    ingest_spool_dir: Path | None = Field(default=None, description="On-disk spool for batches the database refused. Empty: DATA_DIR/spool.")

    # --- calibration --------------------------------------------------------------------------
    colocation_distance_m: float = 50.0
    calibration_window_days: int = 14
    calibration_min_pairs: int = 72
    coverage_min: float = 0.75
    calibration_crosscheck_distance_m: float = Field(
        default=10_000.0, description="Nearest station within this distance is used to cross-check non-co-located devices.")
    calibration_neighbour_distance_m: float = Field(
        default=3_000.0, description="Devices of the same sensor type within this distance are neighbours.")
    calibration_interval_s: int = Field(default=3600, ge=60, description="Scheduled calibration run interval.")
    e2_fetch_enabled: bool = Field(default=False, description="Fetch daily E2 reference files on a schedule.")
    e2_url_template: str = Field(
        default="https://files.data.gouv.fr/lcsqa/concentrations-de-polluants-atmospheriques-reglementes/temps-reel/{year}/FR_E2_{date}.csv",
        description="E2 file URL; {date} (YYYY-MM-DD) and {year} are substituted.")
    e2_fetch_days: int = Field(default=2, ge=1, description="Fetch today's and this many previous days' files.")

    # --- API ------------------------------------------------------------------------------------
    max_range_days: int = 400
    rate_limit_per_minute: int = 600
    api_cache_ttl_s: float = Field(default=10.0, ge=0, description="Public response cache / Cache-Control max-age (s).")
    api_cache_mb: int = Field(default=64, ge=0, description="Response cache size per API process (MiB of bodies).")
    api_db_timeout_s: float = Field(default=10.0, gt=0, description="A request waits at most this for a database "
                                    "connection of the async read pool, then gets 503.")
    api_read_pool_size: int = Field(default=8, ge=1, le=100, description="Async read connections per API process "
                                    "(zone series), besides the SQLAlchemy pool of the other endpoints.")
    zone_rollup_interval_s: float = Field(
        default=300.0, ge=10, description="How often the materialised zone series are brought up to date.")
    zone_rollup_lag_hours: int = Field(
        default=2, ge=0, le=48, description="Hours behind now that zone series stay live (not materialised).")

    # --- ChirpStack provisioning ---------------------------------------------------------------
    chirpstack_url: str | None = None
    chirpstack_api_key: SecretStr | None = None
    chirpstack_application_id: str | None = None
    chirpstack_device_profile_id: str | None = None

    # --- open_export ------------------------------------------------------------------------
    export_dir: Path | None = Field(default=None, description="Export files. Empty: DATA_DIR/exports.")
    export_datasets: list[str] = Field(
        default_factory=list, description="Dataset ids to export and catalogue. Empty: all defaults."
    )
    publisher_name: str = "Civicair"
    contact_name: str = "Civicair open data team"
    contact_email: str = "opendata@example-metropole.fr"
    export_bbox: tuple[float, float, float, float] = Field(
        default=(7.62, 48.45, 7.98, 48.68),
        description="Spatial coverage (west, south, east, north, WGS84) announced in the catalogue.",
    )

    # --- firmware_tools -----------------------------------------------------------------------
    lorawan_join_eui: str = Field(default="0000000000000000", description="JoinEUI (AppEUI) given to new OTAA devices.")
    device_mqtt_url: str | None = Field(
        default=None, description="Broker URL as devices reach it (bundles). Empty: CIVICAIR_MQTT_URL.")
    device_interval_s: int = Field(default=150, ge=10, description="Measurement interval written into bundles.")
    erase_confirm_ttl_s: int = Field(default=900, ge=30, description="Validity of an erase confirmation token.")

    # --- trust (issue 19a: docs/privacy.md) ----------------------------------------------------
    publication_qa_days: float = Field(default=7.0, ge=0, description=(
        "A new device's data become public this many days after its first stored reading, unless it is "
        "unreliable then (an operator may approve it sooner, or withhold it)."))
    publication_requires_approval: bool = Field(default=False, description=(
        "Publish only devices an operator approved (no automatic publication after the QA window)."))
    registration_limit: int = Field(default=5, ge=0, description=(
        "Registrations one client network (IPv4 address, IPv6 /64) may make per window; 0: no limit."))
    registration_window_s: int = Field(default=3600, ge=1, description="The window of the registration limit.")
    mobile_max_speed_kmh: float = Field(default=45.0, gt=0, description=(
        "Mobile points implying a faster move from the previous kept point are dropped as implausible."))
    mobile_max_cells_per_hour: int = Field(default=120, ge=1, description=(
        "A mobile device whose kept points of one hour lie in more H3 cells is left out of that hour."))
    mobile_rollup_interval_s: float = Field(default=120.0, ge=5, description=(
        "How often the mobile rollup takes in the trips closed since (mobile cells appear then)."))
    # --- web (public pages, map) -----------------------------------------------------------------
    map_tiles_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Base-map tiles (XYZ URL template) the map's browser loads. Empty: no base map.")
    map_tiles_attribution: str = Field(
        default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        description="Attribution of the base-map tiles (HTML), shown on the map.")
    map_refresh_interval_s: float = Field(
        default=60.0, ge=5, description="How often the map's latest values are rendered (readmodel.map job).")

    # --- portal harvesting, public URLs, embedded broker (issue 15) ----------------------------------
    portal_slugs: dict[str, str] = Field(default_factory=dict, description=(
        "Dataset id → the slug the portal gave the harvested dataset (its page is PORTAL_BASE_URL/<slug>). "
        "Datasets without one link to civicair's own dataset page."))
    reference_licence_name: str = Field(default="Open Data Commons Open Database License (ODbL)", description=(
        "Licence of the reference-station network's data (stations without a licence of their own)."))
    reference_licence_url: str = "https://opendatacommons.org/licenses/odbl/1-0/"
    embedded_broker_host: str = Field(default="127.0.0.1", description="Where the embedded amqtt broker listens.")
    embedded_broker_port: int | None = Field(default=None, ge=0, le=65535, description=(
        "Port of the embedded broker. Empty: 1883, or the next free port (the one really used is logged and "
        "written into bundles)."))

    publisher_type: str = Field(default="LocalAuthority", description=(
        "The publisher's ADMS type (http://purl.org/adms/publishertype/<code>): LocalAuthority, "
        "RegionalAuthority, NationalAuthority, NonProfitOrganisation, ..."))

    # --- SensorThings API (sta/) ---------------------------------------------------------------
    sta_default_top: int = Field(default=100, ge=1, le=1000, description="SensorThings page size without $top.")
    sta_max_top: int = Field(default=1000, ge=1, le=10000, description=(
        "Largest SensorThings page: a larger $top is served in pages of this size, with @iot.nextLink."))
    # --- nothing dropped, operations (issue 19b) --------------------------------------------------
    dead_letter_retention_days: int = Field(default=30, ge=1, description="Dead letters older than this are deleted by the daily job.")
    quarantine_retention_days: int = Field(default=30, ge=1, description="Quarantine entries older than this are deleted by the daily job.")
    dead_letter_quota_rows: int = Field(default=1000, ge=1, description="Most dead letters kept per device (and for all messages naming no registered device together).")
    dead_letter_quota_bytes: int = Field(default=4 << 20, ge=1024, description="Most dead-letter payload bytes kept per device.")
    quarantine_quota_rows: int = Field(default=1000, ge=1, description="Most quarantine entries kept per unknown device reference.")
    quarantine_quota_bytes: int = Field(default=4 << 20, ge=1024, description="Most quarantine payload bytes kept per unknown device reference.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list, description=(
        "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto "
        "headers are believed. Empty: none, the TCP peer is the client (rate limits key on it)."))
    database_wait_s: float = Field(default=120.0, ge=0, description=(
        "How long `civicair up|gateway|api` keep retrying a configured database that is down at start."))

    # --- calibration and signed-in sessions (issue 14) --------------------------------------------
    calibration_network_min_donors: int = Field(
        default=2, ge=1, description="Published co-located devices of a sensor type needed for its network model.")
    session_secret: SecretStr | None = Field(
        default=None, description="Key signing browser session cookies. Empty: derived from CIVICAIR_PSEUDONYM_SECRET.")
    session_previous_secrets: list[SecretStr] = Field(
        default_factory=list, description="Earlier session keys still accepted (key rotation), newest first.")
    session_ttl_s: int = Field(default=8 * 3600, ge=60, description="Lifetime of a signed-in browser session.")

    # --- volunteer sign-up by e-mail (issue 17v: docs/onboarding.md) ------------------------------
    smtp_url: SecretStr | None = Field(default=None, description=(
        "SMTP server of the sign-up confirmation mails: smtp://[user:pass@]host[:port] (STARTTLS when the server "
        "offers it), smtps://… (TLS). Empty: registrations are not confirmed by e-mail (development, --demo)."))
    mail_from: str = Field(default="civicair <no-reply@civicair.invalid>", description="From: of the mails.")
    signup_ttl_s: int = Field(default=24 * 3600, ge=60, description="Validity of a sign-up confirmation link.")
    signup_email_limit: int = Field(default=3, ge=0, description=(
        "Confirmation mails sent to one address per window (more sign-ups get the same answer, and no mail); "
        "0: no limit."))
    signup_email_window_s: int = Field(default=3600, ge=1, description="The window of the per-e-mail limit.")

    _public_base_derived: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _derive_public_base(self) -> Settings:
        if not self.public_base_url.strip():
            self.public_base_url = derive_public_base_url(self.api_host, self.api_port)
            self._public_base_derived = True
        self.public_base_url = self.public_base_url.strip().rstrip("/")
        return self

    @property
    def public_base_derived(self) -> bool:
        """True when CIVICAIR_PUBLIC_BASE_URL was not set (the URL follows API_HOST/API_PORT)."""
        return self._public_base_derived

    @field_validator("database_url", "read_database_url", mode="before")
    @classmethod
    def _check_db_url(cls, v: object) -> object:
        if v in (None, ""):
            return None
        s = v.get_secret_value() if isinstance(v, SecretStr) else str(v)
        parts = urlsplit(s)
        if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
            raise ValueError(f"must be a postgresql:// URL, got scheme {parts.scheme!r}")
        return s

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, v: object) -> object:
        """A JSON list, or addresses separated by commas."""
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                import json

                return json.loads(v)
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("mqtt_url", mode="before")
    @classmethod
    def _check_mqtt_url(cls, v: object) -> object:
        if v in (None, ""):
            return None
        parts = urlsplit(str(v))
        if parts.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"must be an mqtt:// URL, got scheme {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("has no host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"has a bad port: {exc}") from None
        return str(v)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard bind: name the machine instead
        host = socket.gethostname()
    return f"[{host}]" if ":" in host else host


def derive_public_base_url(host: str, port: int) -> str:
    """The API's URL as seen from where it listens: `http://host:port` (a wildcard host becomes the
    machine's name, an IPv6 address is bracketed). Behind a reverse proxy, set
    CIVICAIR_PUBLIC_BASE_URL instead."""
    return f"http://{_url_host(host)}:{port}"


def listening_at(settings: Settings, host: str, port: int) -> Settings:
    """The settings of a process whose API really listens on host:port (port 0 resolved by the
    kernel): the derived public URL follows it; a configured one is kept."""
    update: dict[str, object] = {"api_host": host, "api_port": port}
    if settings.public_base_derived:
        update["public_base_url"] = derive_public_base_url(host, port)
    return settings.model_copy(update=update)


def embedded_broker_url(settings: Settings) -> str | None:
    """The embedded broker's URL once its port is known (set, or resolved at start-up)."""
    if settings.embedded_broker_port is None:
        return None
    return f"mqtt://{_url_host(settings.embedded_broker_host)}:{settings.embedded_broker_port}"


def device_broker_url(settings: Settings) -> str | None:
    """The broker as devices reach it (bundles): CIVICAIR_DEVICE_MQTT_URL, else the configured
    broker, else the embedded one that runs."""
    return settings.device_mqtt_url or settings.mqtt_url or embedded_broker_url(settings)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and start-up lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_secrets(settings: Settings, *, demo: bool) -> None:
    """Refuse the demonstration pseudonym secret (or a `change-me…` placeholder of .env.example)
    outside the demo (docs/privacy.md#pseudonyms): anyone knowing it links public pseudonyms to
    device ids."""
    from civicair.core.errors import SettingsError

    secret = settings.pseudonym_secret.get_secret_value()
    if not demo and (secret == DEMO_PSEUDONYM_SECRET or secret.startswith("change-me")):
        raise SettingsError("CIVICAIR_PSEUDONYM_SECRET is the public demonstration value: set a secret of your own "
                            "(e.g. `openssl rand -hex 32`), the same in every civicair process, or run "
                            "`civicair up --demo`")


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; raises `core.errors.SettingsError` with one clear line."""
    from civicair.core.errors import SettingsError
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "CIVICAIR_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        raise SettingsError(f"{name}: {err['msg']}") from None
