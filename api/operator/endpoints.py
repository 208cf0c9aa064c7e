"""Operator endpoints (`X-API-Key` of a partner key with the `operator` scope): the publication
workflow of devices (docs/privacy.md#publication), what issue 17's operator console builds on.

- `GET /v1/operator/devices?state=awaiting` lists devices (awaiting: pending and not public yet;
  pending, approved, withheld, established), by uid, `after` a uid;
- `GET /v1/operator/devices/{uid}`: one device's publication state;
- `POST /v1/operator/devices/{uid}/approve | withhold | pending` (body `{"note": …}`, optional):
  publish now, never publish, or return to the automatic rule.
"""

from __future__ import annotations

from typing import Annotated

from civicair.api.deps import Partner, ReadConn, SettingsDep, WriteConn, require_partner
from civicair.firmware_tools.publication import (
    FILTERS,
    list_publication,
    publication_status,
    set_publication,
)
from civicair.firmware_tools.schemas import PublicationChange, PublicationStatus
from fastapi import APIRouter, Depends, Path, Query

router = APIRouter(prefix="/v1/operator", tags=["operator"])
Operator = Annotated[Partner, Depends(require_partner("operator"))]
Uid = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Device id (ca-…)")]


@router.get("/devices", summary="Devices in the publication workflow", response_model=list[PublicationStatus])
def devices(operator: Operator, conn: ReadConn, settings: SettingsDep,
            state: Annotated[str, Query(description=f"one of {', '.join(FILTERS)}")] = "awaiting",
            after: Annotated[str | None, Query(max_length=64, description="the last uid of the previous page")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[PublicationStatus]:
    return list_publication(conn, settings, state, after=after, limit=limit)


@router.get("/devices/{uid}", summary="One device's publication state", response_model=PublicationStatus)
def device(uid: Uid, operator: Operator, conn: ReadConn, settings: SettingsDep) -> PublicationStatus:
    return publication_status(conn, settings, uid)


ACTIONS = {  # path verb → state, summary, description
    "approve": ("approved", "Approve: public now", "The device's data are public (given its owner's consent) and "
                "count toward k at once, before its QA window ends."),
    "withhold": ("withheld", "Withhold: never public", "The device's data are never public and count toward no k."),
    "pending": ("pending", "Back to the automatic rule", "Public once past the QA window and not unreliable."),
}


def _route(verb: str, state: str, summary: str, description: str) -> None:
    def change(uid: Uid, operator: Operator, conn: WriteConn, settings: SettingsDep,
               body: PublicationChange | None = None) -> PublicationStatus:
        return set_publication(conn, settings, uid, state, note=body.note if body else None,
                               by=f"key:{operator.name}")

    change.__name__ = f"device_{verb}"
    router.post(f"/devices/{{uid}}/{verb}", summary=summary, description=description,
                response_model=PublicationStatus)(change)


for _verb, (_state, _summary, _description) in ACTIONS.items():
    _route(_verb, _state, _summary, _description)
