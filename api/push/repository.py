"""SQL of the push endpoints: the device of a token (and the owner of the chip id a body names)
in one statement, run on the async read pool from the event loop (the writes go through
`ingest.store` in the group commit)."""

from __future__ import annotations

import sqlalchemy as sa
from civicair.core import tables
from civicair.readmodel.statements import param, psycopg_sql


def _device_of_token() -> str:
    d = tables.devices
    owner = sa.alias(tables.devices, "owner")
    chip_owner = sa.select(owner.c.id).where(owner.c.chip_id == param("chip", sa.Text)).scalar_subquery()
    return psycopg_sql(sa.select(d.c.id, d.c.uid, d.c.pseudonym, chip_owner.label("chip_owner"))
                       .where(d.c.token_hash == param("token_hash", sa.Text)), {"token_hash", "chip"})


DEVICE_OF_TOKEN = _device_of_token()
