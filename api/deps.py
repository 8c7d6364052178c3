"""FastAPI dependencies as `Annotated` aliases: settings, storage, the authenticated key, the services.

Every route except health, metrics and docs takes `ApiKeyDep`: a missing key is 401, an unknown or revoked
one 401, a key over its request rate 429. `FundedKeyDep` additionally refuses (402) a key that has spent
its LLM cost cap, for routes that start model calls.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.services.container import Services
from api.services.keys import KeyRecord, authenticate
from api.services.limits import remaining_spend
from kernelwright.settings import Settings

__all__ = [
    "ApiKeyDep",
    "DatabaseDep",
    "FundedKeyDep",
    "ServicesDep",
    "SessionDep",
    "SettingsDep",
    "get_api_key",
    "get_services",
]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_database(services: ServicesDep) -> Database:
    return services.database


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_db_session(db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session committed when the route returns normally, rolled back when it raises."""
    async with db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db_session)]

_KEY_HELP = (
    "send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (create one: kernelwright keys create)"
)


async def get_api_key(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> KeyRecord:
    token = x_api_key
    if token is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"malformed Authorization header: {_KEY_HELP}")
        token = value.strip()
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"an API key is required: {_KEY_HELP}",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await authenticate(services.database, token)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the API key is unknown or revoked: check it, or create a new one with kernelwright keys create",
            headers={"WWW-Authenticate": "Bearer"},
        )
    wait = services.limiter.check(key)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of key {key.id} reached "
            f"({key.rate_limit_per_minute or services.settings.rate_limit_per_minute} requests a minute); "
            f"retry in {wait:.1f} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    request.state.key_id = key.id
    return key


ApiKeyDep = Annotated[KeyRecord, Depends(get_api_key)]


async def get_funded_key(key: ApiKeyDep, settings: SettingsDep) -> KeyRecord:
    if remaining_spend(key, settings) <= 0.0:
        cap = key.spend_cap_usd if key.spend_cap_usd is not None else settings.spend_cap_usd
        raise HTTPException(
            status.HTTP_402_PAYMENT_REQUIRED,
            f"key {key.id} has spent its LLM cost cap (${key.spent_usd:.4f} of ${cap:.2f}); "
            "ask an operator for a higher cap or a new key",
        )
    return key


FundedKeyDep = Annotated[KeyRecord, Depends(get_funded_key)]
