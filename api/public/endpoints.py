"""Public open-data endpoints (no authentication). Only pseudonyms and public cells leave here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from api.deps import ReadConn, SettingsDep
from core import tables
from core.domain import QUANTITY_BY_CODE, QUANTITY_BY_NAME
from core.errors import DeviceNotFound, InvalidParameter

router = APIRouter(prefix="/v1", tags=["public"])


def envelope(settings: Any, results: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {
        "meta": {
            "found": len(results),
            "licence": settings.licence_name,
            "licence_url": settings.licence_url,
            "attribution": settings.attribution,
            "portal_url": settings.portal_base_url,
            **meta,
        },
        "results": results,
    }


@router.get("/devices", summary="Public devices (pseudonymised)")
def list_devices(conn: ReadConn, settings: SettingsDep) -> dict[str, Any]:
    d = tables.devices
    rows = conn.execute(
        sa.select(d.c.pseudonym, d.c.kind, d.c.sensor_models, d.c.h3_cell, d.c.status, d.c.stars,
                  d.c.first_seen, d.c.last_seen)
        .order_by(d.c.pseudonym)
    ).all()
    results = [
        {
            "pseudonym": r.pseudonym,
            "kind": r.kind,
            "sensor_type": r.sensor_models[0] if r.sensor_models else None,
            "h3_cell": r.h3_cell if r.kind == "fixed" else None,
            "status": r.status,
            "stars": r.stars,
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
        }
        for r in rows
    ]
    return envelope(settings, results)


@router.get("/devices/{pseudonym}/series", summary="Hourly series of one public fixed device")
def device_series(
    pseudonym: str,
    conn: ReadConn,
    settings: SettingsDep,
    quantity: str = Query("pm25", description="Canonical quantity name, e.g. pm25"),
    datetime_from: datetime | None = Query(None),
    datetime_to: datetime | None = Query(None),
) -> dict[str, Any]:
    q = QUANTITY_BY_NAME.get(quantity)
    if q is None:
        raise InvalidParameter("quantity", f"unknown quantity {quantity!r}; one of {sorted(QUANTITY_BY_NAME)}")
    d = tables.devices
    dev = conn.execute(
        sa.select(d.c.id, d.c.kind, d.c.consent_public).where(d.c.pseudonym == pseudonym)
    ).first()
    if dev is None or dev.kind != "fixed" or not dev.consent_public:
        raise DeviceNotFound(f"no public fixed device {pseudonym!r}")
    end = datetime_to or datetime.now(UTC)
    start = datetime_from or end - timedelta(days=7)
    r = tables.readings
    hour = sa.func.date_trunc("hour", r.c.time).label("hour")
    rows = conn.execute(
        sa.select(hour, sa.func.avg(r.c.value).label("mean"), sa.func.count().label("n"))
        .where(r.c.device_id == dev.id, r.c.quantity == q.code, r.c.flags == 0,
               r.c.time >= start, r.c.time < end)
        .group_by(hour).order_by(hour)
    ).all()
    unit = QUANTITY_BY_CODE[q.code].unit
    results = [{"period": {"datetime_from": row.hour}, "value": row.mean, "n": row.n, "unit": unit} for row in rows]
    return envelope(settings, results, quantity=q.name)
