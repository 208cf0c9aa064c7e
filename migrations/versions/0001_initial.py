"""Initial schema: devices, readings, rollup, dead letters, quarantine, reference data,
calibrations, flags, partner keys, zones.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

QUANTITY_ROWS = [
    (1, "pm1", "µg/m³", "Particulate matter < 1 µm"),
    (2, "pm25", "µg/m³", "Particulate matter < 2.5 µm"),
    (3, "pm10", "µg/m³", "Particulate matter < 10 µm"),
    (4, "no2", "µg/m³", "Nitrogen dioxide"),
    (5, "o3", "µg/m³", "Ozone"),
    (6, "temperature", "°C", "Air temperature"),
    (7, "humidity", "%", "Relative humidity"),
    (8, "pressure", "hPa", "Barometric pressure"),
]


TABLES = [
    "zones", "partner_api_keys", "device_status_history", "device_flags", "calibrations",
    "reference_readings", "reference_stations", "quarantine", "dead_letters", "hourly",
    "uplinks", "readings", "devices", "quantities",
]


def timescaledb_available(bind) -> bool:
    return bool(
        bind.execute(
            sa.text("select 1 from pg_available_extensions where name = 'timescaledb'")
        ).scalar()
    )


def upgrade() -> None:
    op.create_table('calibrations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=False),
    sa.Column('fitted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('a', sa.Float(), nullable=False),
    sa.Column('b', sa.Float(), nullable=False),
    sa.Column('c', sa.Float(), server_default='0', nullable=False),
    sa.Column('n_pairs', sa.Integer(), nullable=True),
    sa.Column('station_code', sa.Text(), nullable=True),
    sa.Column('metrics', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('uncertainty_pct', sa.Float(), nullable=True),
    sa.Column('sensor_class', sa.SmallInteger(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_calibrations_device_id'), 'calibrations', ['device_id'], unique=False)
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), server_default='', nullable=False),
    sa.Column('payload', postgresql.BYTEA(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('device_flags',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=True),
    sa.Column('flag', sa.Text(), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_device_flags_device_id'), 'device_flags', ['device_id'], unique=False)
    op.create_table('device_status_history',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('stars', sa.SmallInteger(), nullable=True),
    sa.Column('reasons', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_device_status_history_device_id'), 'device_status_history', ['device_id'], unique=False)
    op.create_table('devices',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('uid', sa.Text(), nullable=False),
    sa.Column('pseudonym', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('sensor_models', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('transport', sa.Text(), nullable=False),
    sa.Column('dev_eui', sa.Text(), nullable=True),
    sa.Column('join_eui', sa.Text(), nullable=True),
    sa.Column('tts_device_id', sa.Text(), nullable=True),
    sa.Column('chip_id', sa.Text(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('h3_cell', sa.Text(), nullable=True),
    sa.Column('owner_email', sa.Text(), nullable=True),
    sa.Column('owner_name', sa.Text(), nullable=True),
    sa.Column('consent_public', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('token_hash', sa.Text(), nullable=True),
    sa.Column('mqtt_username', sa.Text(), nullable=True),
    sa.Column('mqtt_password_hash', sa.Text(), nullable=True),
    sa.Column('payload_profile', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('privacy_zones', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.Text(), server_default='insufficient_data', nullable=False),
    sa.Column('stars', sa.SmallInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind in ('fixed','mobile')", name='devices_kind'),
    sa.CheckConstraint("transport in ('lorawan','mqtt','http')", name='devices_transport'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chip_id'),
    sa.UniqueConstraint('dev_eui'),
    sa.UniqueConstraint('mqtt_username'),
    sa.UniqueConstraint('pseudonym'),
    sa.UniqueConstraint('token_hash'),
    sa.UniqueConstraint('tts_device_id'),
    sa.UniqueConstraint('uid')
    )
    op.create_table('hourly',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('sum', sa.Float(), nullable=False),
    sa.Column('sum_sq', sa.Float(), nullable=False),
    sa.Column('min', sa.Float(), nullable=True),
    sa.Column('max', sa.Float(), nullable=True),
    sa.Column('mean', sa.Float(), nullable=True),
    sa.Column('n_flagged', sa.Integer(), server_default='0', nullable=False),
    sa.Column('flags_any', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('calibrated_mean', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'quantity', 'hour')
    )
    op.create_table('partner_api_keys',
    sa.Column('id', sa.Integer(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('key_hash', sa.Text(), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('quantities',
    sa.Column('code', sa.SmallInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('unit', sa.Text(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('code'),
    sa.UniqueConstraint('name')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('topic', sa.Text(), server_default='', nullable=False),
    sa.Column('ref_scheme', sa.Text(), nullable=False),
    sa.Column('ref_value', sa.Text(), nullable=False),
    sa.Column('payload', postgresql.BYTEA(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('replayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('readings',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('flags', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'time', 'quantity')
    )
    op.create_table('reference_readings',
    sa.Column('station_code', sa.Text(), nullable=False),
    sa.Column('quantity', sa.SmallInteger(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('validity', sa.SmallInteger(), nullable=True),
    sa.Column('source', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('station_code', 'quantity', 'time')
    )
    op.create_table('reference_stations',
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('network', sa.Text(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('station_type', sa.Text(), nullable=True),
    sa.Column('pollutants', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('licence', sa.Text(), nullable=True),
    sa.Column('attribution', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('uplinks',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('route', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('f_cnt', sa.BigInteger(), nullable=True),
    sa.Column('f_port', sa.SmallInteger(), nullable=True),
    sa.Column('rssi', sa.Float(), nullable=True),
    sa.Column('snr', sa.Float(), nullable=True),
    sa.Column('gateway_count', sa.SmallInteger(), nullable=True),
    sa.Column('ns_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dedup_id', sa.Text(), nullable=True),
    sa.Column('battery_v', sa.Float(), nullable=True),
    sa.Column('payload', postgresql.BYTEA(), nullable=True),
    sa.PrimaryKeyConstraint('device_id', 'time')
    )
    op.create_table('zones',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), server_default='admin', nullable=False),
    sa.Column('geometry', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    quantities = sa.table('quantities', sa.column('code'), sa.column('name'), sa.column('unit'), sa.column('label'))
    op.bulk_insert(
        quantities, [dict(zip(("code", "name", "unit", "label"), r, strict=True)) for r in QUANTITY_ROWS]
    )
    op.create_index("uplinks_dedup_id", "uplinks", ["dedup_id"], unique=True,
                    postgresql_where=sa.text("dedup_id is not null"))
    op.create_index("uplinks_fcnt", "uplinks", ["device_id", "f_cnt", "received_at"])
    op.create_index("hourly_hour", "hourly", ["hour"])
    op.create_index("reference_readings_time", "reference_readings", ["time"])

    bind = op.get_bind()
    if timescaledb_available(bind):
        op.execute("create extension if not exists timescaledb")
        op.execute(
            "select create_hypertable('readings', 'time', chunk_time_interval => interval '1 day', "
            "migrate_data => true)"
        )
        op.execute(
            "alter table readings set (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'device_id, quantity', "
            "timescaledb.compress_orderby = 'time')"
        )
        op.execute("select add_compression_policy('readings', interval '7 days')")
    else:
        # Plain PostgreSQL (docs/storage.md#timescaledb-and-plain-postgresql): BRIN on time for range scans and retention; the primary
        # key (device_id, time, quantity) serves per-device lookups.
        op.create_index("readings_time_brin", "readings", ["time"], postgresql_using="brin")


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
