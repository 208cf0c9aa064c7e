"""Partner endpoints (air-quality agency), authenticated by X-API-Key with scopes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.deps import Partner, require_partner

router = APIRouter(prefix="/v1/partner", tags=["partner"])


@router.get("/whoami", summary="The partner behind this API key")
def whoami(partner: Annotated[Partner, Depends(require_partner("read"))]) -> dict[str, Any]:
    return {"name": partner.name, "scopes": sorted(partner.scopes)}
