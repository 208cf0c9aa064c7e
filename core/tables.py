"""All tables (SQLAlchemy Core). The schema itself is created by the alembic migrations in
migrations/; these definitions are what queries are written against and must match them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, UUID

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)

quantities = sa.Table(
    "quantities",
    metadata,
    sa.Column("code", sa.SmallInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("uid", sa.Text, nullable=False, unique=True),  # owner-facing id, used in topics
    sa.Column("pseudonym", sa.Text, nullable=False, unique=True),  # the only public id
    sa.Column("name", sa.Text, nullable=False),  # private
    sa.Column("kind", sa.Text, nullable=False),  # fixed | mobile
    sa.Column("sensor_models", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("transport", sa.Text, nullable=False),  # lorawan | mqtt | http
    sa.Column("dev_eui", sa.Text, unique=True),  # lowercase hex
    sa.Column("join_eui", sa.Text),
    sa.Column("tts_device_id", sa.Text, unique=True),
    sa.Column("chip_id", sa.Text, unique=True),  # sensor.community "esp8266-123456"
    sa.Column("lat", sa.Float),  # exact location: private, calibration only
    sa.Column("lon", sa.Float),
    sa.Column("h3_cell", sa.Text),  # public location
    sa.Column("owner_email", sa.Text),  # private
    sa.Column("owner_name", sa.Text),  # private
    sa.Column("consent_public", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("token_hash", sa.Text, unique=True),  # device token (HTTP push, volunteer API)
    sa.Column("mqtt_username", sa.Text, unique=True),
    sa.Column("mqtt_password_hash", sa.Text),  # Mosquitto PBKDF2 format
    sa.Column("payload_profile", JSONB),  # e.g. CayenneLPP channel → quantity mapping
    sa.Column("privacy_zones", JSONB),  # mobile: [{lat, lon, radius_m}]
    sa.Column("status", sa.Text, nullable=False, server_default="insufficient_data"),
    sa.Column("stars", sa.SmallInteger),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("first_seen", TZ),
    sa.Column("last_seen", TZ),
    # publication workflow (migration 0010, docs/privacy.md#publication): pending | approved | withheld
    sa.Column("publication", sa.Text, nullable=False, server_default="pending"),
    sa.Column("publication_changed_at", TZ),
    sa.Column("publication_note", sa.Text),  # the operator's reason, private
    sa.Column("publication_by", sa.Text),  # which operator (CLI user, partner key name)
    sa.Column("first_received_at", TZ),  # server time of the first stored reading: the QA window starts
    sa.CheckConstraint("kind in ('fixed','mobile')", name="devices_kind"),
    sa.CheckConstraint("transport in ('lorawan','mqtt','http')", name="devices_transport"),
)

# One row per (device, time, quantity). No FK to devices: the ingest hot path writes only
# resolved ids, and erasure deletes explicitly.
readings = sa.Table(
    "readings",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("time", TZ, primary_key=True),
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),  # normalised to the canonical unit
    sa.Column("flags", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("lat", sa.Float),  # mobile only
    sa.Column("lon", sa.Float),
    sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
)

uplinks = sa.Table(
    "uplinks",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("time", TZ, primary_key=True),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("received_at", TZ, nullable=False),
    sa.Column("f_cnt", sa.BigInteger),
    sa.Column("f_port", sa.SmallInteger),
    sa.Column("rssi", sa.Float),
    sa.Column("snr", sa.Float),
    sa.Column("gateway_count", sa.SmallInteger),
    sa.Column("ns_time", TZ),
    sa.Column("dedup_id", sa.Text),
    sa.Column("battery_v", sa.Float),
    sa.Column("payload", BYTEA),
)

hourly = sa.Table(
    "hourly",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("hour", TZ, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),  # unflagged readings in the hour
    sa.Column("sum", sa.Float, nullable=False),
    sa.Column("sum_sq", sa.Float, nullable=False),
    sa.Column("min", sa.Float),
    sa.Column("max", sa.Float),
    sa.Column("mean", sa.Float),
    sa.Column("n_flagged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("flags_any", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("calibrated_mean", sa.Float),
    sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("source", sa.Text, nullable=False),  # Route value
    sa.Column("topic", sa.Text, nullable=False, server_default=""),  # MQTT topic or HTTP path
    sa.Column("payload", BYTEA, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("replayed_at", TZ),
    sa.Column("device_id", sa.Integer),  # the authenticated device (token-authenticated HTTP pushes)
    # the device the message names as far as known (its topic, or the token of an HTTP push):
    # quotas, replay and erasure (migration 0011)
    sa.Column("ref_scheme", sa.Text),
    sa.Column("ref_value", sa.Text),
    sa.Column("replay_error", sa.Text),  # why the last replay failed (the entry stays)
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("received_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False, server_default=""),
    sa.Column("ref_scheme", sa.Text, nullable=False),
    sa.Column("ref_value", sa.Text, nullable=False),
    sa.Column("payload", BYTEA, nullable=False),
    sa.Column("device_id", sa.Integer),  # set when an operator attaches it
    sa.Column("replayed_at", TZ),
)

reference_stations = sa.Table(
    "reference_stations",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),  # e.g. FR01011
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("network", sa.Text),  # e.g. ATMO GRAND EST
    sa.Column("lat", sa.Float),
    sa.Column("lon", sa.Float),
    sa.Column("station_type", sa.Text),  # urban / suburban / rural, traffic / background / industrial
    sa.Column("pollutants", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("licence", sa.Text),
    sa.Column("attribution", sa.Text),
)

reference_readings = sa.Table(
    "reference_readings",
    metadata,
    sa.Column("station_code", sa.Text, primary_key=True),
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("time", TZ, primary_key=True),  # hour start, UTC
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("validity", sa.SmallInteger),
    sa.Column("source", sa.Text),  # e2 | eea | demo
)

calibrations = sa.Table(
    "calibrations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("device_id", sa.Integer, nullable=False, index=True),
    sa.Column("quantity", sa.SmallInteger, nullable=False),
    sa.Column("fitted_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("window_start", TZ),
    sa.Column("window_end", TZ),
    # identity | network | epa | ols | huber | ols_rh | huber_rh | kohler | none (nothing published)
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("a", sa.Float),  # null when nothing is published
    sa.Column("b", sa.Float),
    sa.Column("c", sa.Float, nullable=False, server_default="0"),
    sa.Column("n_pairs", sa.Integer),
    sa.Column("station_code", sa.Text),
    sa.Column("metrics", JSONB),  # kind, model, cross-validation, out-of-fold metrics, daily stars
    sa.Column("uncertainty_pct", sa.Float),
    sa.Column("sensor_class", sa.SmallInteger),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
    sa.Column("kappa", sa.Float),  # κ of the Köhler model
    sa.Column("status", sa.Text),  # of this quantity
    sa.Column("stars", sa.SmallInteger),
    sa.Column("reasons", JSONB, nullable=False, server_default="[]"),
)
sa.Index("calibrations_one_active", calibrations.c.device_id, calibrations.c.quantity, unique=True,
         postgresql_where=calibrations.c.active)

device_flags = sa.Table(
    "device_flags",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("device_id", sa.Integer, nullable=False, index=True),
    sa.Column("quantity", sa.SmallInteger),
    sa.Column("flag", sa.Text, nullable=False),  # stuck | spike | gap | drift | ...
    sa.Column("period_start", TZ, nullable=False),
    sa.Column("period_end", TZ, nullable=False),
    sa.Column("evidence", JSONB, nullable=False, server_default="{}"),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("scope", sa.Text, nullable=False, server_default="hours"),  # hours | window
)
sa.Index("device_flags_device_quantity_end", device_flags.c.device_id, device_flags.c.quantity,
         device_flags.c.period_end)

device_status_history = sa.Table(
    "device_status_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("device_id", sa.Integer, nullable=False, index=True),
    sa.Column("changed_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("stars", sa.SmallInteger),
    sa.Column("reasons", JSONB, nullable=False, server_default="[]"),
)

partner_api_keys = sa.Table(
    "partner_api_keys",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),  # sha256 hex of the key
    sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", TZ),
    sa.Column("last_used_at", TZ),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # e.g. INSEE code, or h3 cell
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, server_default="admin"),  # admin | h3
    sa.Column("geometry", JSONB),  # GeoJSON geometry
    sa.Column("properties", JSONB, nullable=False, server_default="{}"),
)

sa.Index("uplinks_dedup_id", uplinks.c.dedup_id, unique=True,
         postgresql_where=uplinks.c.dedup_id.isnot(None))
# frame-counter duplicates are judged on network-server time (migration 0011)
sa.Index("uplinks_fcnt_ns", uplinks.c.device_id, uplinks.c.f_cnt,
         sa.func.coalesce(uplinks.c.ns_time, uplinks.c.time))
sa.Index("hourly_hour", hourly.c.hour)
sa.Index("reference_readings_time", reference_readings.c.time)

# --- api ----------------------------------------------------------------------------------------
# Which administrative zone each fixed device lies in (from its exact position; refreshed by
# `civicair zones import` and the api worker). H3 zones need no table: devices.h3_cell.
device_zones = sa.Table(
    "device_zones",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("zone_id", sa.Text, primary_key=True),
)
sa.Index("device_zones_zone", device_zones.c.zone_id)
sa.Index("hourly_series", hourly.c.device_id, hourly.c.quantity, hourly.c.hour,
         postgresql_include=["n", "sum", "sum_sq", "min", "max", "mean", "n_flagged", "flags_any",
                             "calibrated_mean"])

# Materialised zone series (migration 0008; maintained by readmodel/zone_rollup.py). One row per chunk
# (a UTC day of hourly rows, an ISO week of daily rows): `docs` the published rows' JSON joined by
# commas, `idx` each row's position in the chunk, `ends` each row's end offset in `docs`,
# `suppressed` the suppressed zone-hours per position.
zone_rollup = sa.Table(
    "zone_rollup",
    metadata,
    sa.Column("zone_id", sa.Text, primary_key=True),
    sa.Column("device_ids", ARRAY(sa.Integer), nullable=False),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("watermark", TZ, nullable=False),
    sa.Column("refreshed_at", TZ, nullable=False, server_default=sa.func.now()),
)
zone_series = sa.Table(
    "zone_series",
    metadata,
    sa.Column("zone_id", sa.Text, primary_key=True),
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("interval", sa.Text, primary_key=True),
    sa.Column("chunk", TZ, primary_key=True),
    sa.Column("n", sa.SmallInteger, nullable=False),  # rows in docs
    sa.Column("n_suppressed", sa.Integer, nullable=False),  # sum of suppressed
    sa.Column("idx", ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("ends", ARRAY(sa.Integer), nullable=False),
    sa.Column("suppressed", ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("docs", BYTEA, nullable=False),  # LZ4 block of the rows' JSON (api.stored.pack_docs)
    sa.Column("raw_size", sa.Integer),  # its length uncompressed
)
# (quantity, hour) pairs written to `hourly` since the last refresh (statement triggers).
zone_invalidations = sa.Table(
    "zone_invalidations",
    metadata,
    sa.Column("quantity", sa.SmallInteger, nullable=False),
    sa.Column("hour", TZ, nullable=False),
)
sa.Index("zone_invalidations_hour", zone_invalidations.c.quantity, zone_invalidations.c.hour)

# --- trust (issue 19, migration 0010) -------------------------------------------------------------
# Hardware identifiers of erased devices (DevEUI in both byte orders, TTS id, chip id), as an HMAC
# keyed with the pseudonym secret: messages naming them are counted, not quarantined.
blocked_refs = sa.Table(
    "blocked_refs",
    metadata,
    sa.Column("ref_hash", sa.Text, primary_key=True),
    sa.Column("scheme", sa.Text, nullable=False),
    sa.Column("blocked_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("messages", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_message_at", TZ),
)
# Registrations per client network (HMAC of the address), for the registration rate limit.
registrations = sa.Table(
    "registrations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("client_key", sa.Text, nullable=False),
)
sa.Index("registrations_client", registrations.c.client_key, registrations.c.at)
sa.Index("dead_letters_device", dead_letters.c.device_id, postgresql_where=dead_letters.c.device_id.isnot(None))

# The mobile rollup (readmodel/mobile_rollup.py): per device and whole trip, the privacy-filtered
# points aggregated to (quantity, hour, H3 cell). Public cell-hours are aggregated from it in SQL.
mobile_cell_hours = sa.Table(
    "mobile_cell_hours",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("trip_start", TZ, primary_key=True),
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("hour", TZ, primary_key=True),
    sa.Column("cell", sa.BigInteger, primary_key=True),  # H3 index as a signed 64-bit integer
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("sum", sa.Float, nullable=False),
    sa.Column("min", sa.Float, nullable=False),
    sa.Column("max", sa.Float, nullable=False),
)
sa.Index("mobile_cell_hours_public", mobile_cell_hours.c.quantity, mobile_cell_hours.c.hour,
         mobile_cell_hours.c.cell, mobile_cell_hours.c.device_id, postgresql_include=["n", "sum", "min", "max"])
# (device, hour) of mobile devices written to `hourly` since the last rollup run (statement triggers).
mobile_invalidations = sa.Table(
    "mobile_invalidations",
    metadata,
    sa.Column("device_id", sa.Integer, nullable=False),
    sa.Column("hour", TZ, nullable=False),
)
mobile_rollup = sa.Table(
    "mobile_rollup",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("params", JSONB, nullable=False),  # what the rows were built with: rebuilt when it changes
    sa.Column("refreshed_at", TZ, nullable=False, server_default=sa.func.now()),
)

# Past UTC days whose published data changed after they finished (migration 0013: statement
# triggers on `hourly` and `reference_readings`); the export job rewrites their files, then
# deletes the rows it handled.
export_invalidations = sa.Table(
    "export_invalidations",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("logged_at", TZ, nullable=False, server_default=sa.func.now()),
)

# --- web (migration 0014) -------------------------------------------------------------------------
# The map's latest values (readmodel/map.py), rendered per (quantity, scale): `body` is the
# gzip-compressed JSON, `hour_end` the end of its last hour, `version` the renderer's.
map_snapshots = sa.Table(
    "map_snapshots",
    metadata,
    sa.Column("quantity", sa.SmallInteger, primary_key=True),
    sa.Column("scale", sa.Text, primary_key=True),
    sa.Column("hour_end", TZ, nullable=False),
    sa.Column("built_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("raw_size", sa.Integer, nullable=False),
    sa.Column("body", BYTEA, nullable=False),
)

# --- SensorThings (issue 18, migration 0016) ----------------------------------------------------
# The integer ids of the SensorThings entities: one row per public thing (kind device → pseudonym,
# zone → zone id, station → code) or sensor model (kind sensor → model name). Never deleted, so an
# id is never reused (readmodel/registry.py).
sta_ids = sa.Table(
    "sta_ids",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(always=True), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("kind", "key", name="sta_ids_kind_key"),
)
# --- issue 19b: nothing dropped, operations (migration 0011) ---------------------------------------
# ChirpStack event/status reports of known devices (docs/storage.md#battery-reports)
battery_reports = sa.Table(
    "battery_reports",
    metadata,
    sa.Column("device_id", sa.Integer, primary_key=True),
    sa.Column("time", TZ, primary_key=True),  # network-server time, else arrival
    sa.Column("received_at", TZ, nullable=False),
    sa.Column("level_pct", sa.Float),  # null: unavailable or external power
    sa.Column("external_power", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("margin_db", sa.SmallInteger),
)
sa.Index("dead_letters_ref", dead_letters.c.ref_scheme, dead_letters.c.ref_value)
sa.Index("dead_letters_received_at", dead_letters.c.received_at)
sa.Index("quarantine_ref", quarantine.c.ref_scheme, quarantine.c.ref_value)
sa.Index("quarantine_received_at", quarantine.c.received_at)
# Messages not kept because the device's dead-letter or quarantine quota was full: one row per
# (table, device), so an operator sees what was refused (docs/formats.md#quotas-and-retention).
kept_overflow = sa.Table(
    "kept_overflow",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),  # dead_letters | quarantine
    sa.Column("ref_scheme", sa.Text, primary_key=True),  # '' when the message names no device
    sa.Column("ref_value", sa.Text, primary_key=True),
    sa.Column("refused", sa.BigInteger, nullable=False),
    sa.Column("refused_bytes", sa.BigInteger, nullable=False),
    sa.Column("first_at", TZ, nullable=False),
    sa.Column("last_at", TZ, nullable=False),
    sa.Column("last_error", sa.Text),
)
# This installation's identity: the default MQTT client id is derived from it and the host.
installation = sa.Table(
    "installation",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
)
# Which live gateway holds an MQTT client id (gateway/lease.py): a second gateway with the same
# id refuses to start instead of taking over the first one's persistent session.
gateway_leases = sa.Table(
    "gateway_leases",
    metadata,
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", TZ, nullable=False),
    sa.Column("heartbeat_at", TZ, nullable=False),
)
# Volunteer sign-ups waiting for their e-mail confirmation (issue 17v, migration 0017): the
# registration request, the hash of the link's token, and the HMAC of the address that counts the
# per-e-mail limit. The request (e-mail, exact position) is erased once confirmed or expired.
signups = sa.Table(
    "signups",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("email_key", sa.Text, nullable=False),
    sa.Column("request", JSONB),
    sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", TZ, nullable=False),
    sa.Column("confirmed_at", TZ),
    sa.Column("device_uid", sa.Text),
    sa.Column("shown_at", TZ),  # the credentials page was shown (it is shown once)
)
sa.Index("signups_email", signups.c.email_key, signups.c.created_at)
