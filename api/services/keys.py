"""API keys: high-entropy tokens handed out once, stored only as sha256, checked in constant time.

A token reads `kw_<key id>_<secret>`: the id finds the row, the secret's hash is compared with
`hmac.compare_digest`, so neither a timing difference nor a stolen database reveals a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.db.models import ApiKey

__all__ = [
    "KeyRecord",
    "NewKey",
    "add_spend",
    "authenticate",
    "create_key",
    "get_key",
    "list_keys",
    "record_spend",
    "revoke_key",
]

TOKEN_PREFIX = "kw_"


@dataclass(frozen=True)
class KeyRecord:
    """The authenticated key as routes see it (a plain value, not a live ORM row)."""

    id: str
    name: str
    rate_limit_per_minute: int | None
    spend_cap_usd: float | None
    spent_usd: float
    tokens_used: int
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyRecord:
        return cls(
            id=row.id,
            name=row.name,
            rate_limit_per_minute=row.rate_limit_per_minute,
            spend_cap_usd=row.spend_cap_usd,
            spent_usd=row.spent_usd,
            tokens_used=row.tokens_used,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    token: str  # shown once; only its hash is kept


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    db: Database, name: str, *, rate_limit_per_minute: int | None = None, spend_cap_usd: float | None = None
) -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = f"{TOKEN_PREFIX}{key_id}_{secret}"
    row = ApiKey(
        id=key_id,
        name=name,
        secret_sha256=_hash(secret),
        prefix=token[:12],
        created_at=datetime.now(UTC),
        rate_limit_per_minute=rate_limit_per_minute,
        spend_cap_usd=spend_cap_usd,
        spent_usd=0.0,
        tokens_used=0,
    )
    async with db.session() as s:
        s.add(row)
    return NewKey(KeyRecord.of(row), token)


async def list_keys(db: Database) -> list[KeyRecord]:
    async with db.session() as s:
        rows = (await s.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()
        return [KeyRecord.of(r) for r in rows]


async def revoke_key(db: Database, key_id: str) -> bool:
    """Revoke `key_id`; False when no such key exists. Revoking twice keeps the first date."""
    async with db.session() as s:
        row = await s.get(ApiKey, key_id)
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return True


async def get_key(db: Database, key_id: str) -> KeyRecord | None:
    """The key with this id as it stands now (revoked ones too); None when there is none."""
    async with db.session() as s:
        row = await s.get(ApiKey, key_id)
        return None if row is None else KeyRecord.of(row)


async def authenticate(db: Database, token: str) -> KeyRecord | None:
    """The key `token` belongs to, or None when it is malformed, unknown, wrong or revoked."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    async with db.session() as s:
        row = await s.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_sha256, _hash(secret)):
            return None
        return KeyRecord.of(row)


async def record_spend(db: Database, key_id: str, cost_usd: float, tokens: int) -> None:
    """Add an LLM call's cost and tokens to the key's running totals (spending caps read them)."""
    async with db.session() as s:
        await add_spend(s, key_id, cost_usd, tokens)


async def add_spend(session: AsyncSession, key_id: str, cost_usd: float, tokens: int) -> None:
    """`record_spend` inside a caller's transaction (with the event that reports the call)."""
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(spent_usd=ApiKey.spent_usd + cost_usd, tokens_used=ApiKey.tokens_used + tokens)
    )
