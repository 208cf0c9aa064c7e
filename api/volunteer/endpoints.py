"""Volunteer endpoints, authenticated by the device token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import DeviceDep

router = APIRouter(prefix="/v1/volunteer", tags=["volunteer"])


@router.get("/me", summary="The device behind this token")
def me(device: DeviceDep) -> dict[str, Any]:
    return {"uid": device.uid, "pseudonym": device.pseudonym}
