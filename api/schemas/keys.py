"""Key schemas: what a client may see of its own key."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

__all__ = ["KeyPublic"]


class KeyPublic(BaseModel):
    id: str
    name: str
    created_at: datetime
    rate_limit_per_minute: int
    spend_cap_usd: float
    spent_usd: float
    spend_left_usd: float
    tokens_used: int
