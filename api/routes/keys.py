"""The calling key's own record: its limits and what it has spent (keys are created from the CLI)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ApiKeyDep, SettingsDep
from api.schemas.keys import KeyPublic
from api.services.limits import remaining_spend

__all__ = ["router"]

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("/me", response_model=KeyPublic)
async def read_own_key(key: ApiKeyDep, settings: SettingsDep) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        name=key.name,
        created_at=key.created_at,
        rate_limit_per_minute=key.rate_limit_per_minute or settings.rate_limit_per_minute,
        spend_cap_usd=key.spend_cap_usd if key.spend_cap_usd is not None else settings.spend_cap_usd,
        spent_usd=key.spent_usd,
        spend_left_usd=remaining_spend(key, settings),
        tokens_used=key.tokens_used,
    )
