"""Sessions: refine one kernel in a conversation; each message resumes the graph for another round."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from agent.run import GenerationRequest
from api.db.models import SessionRow, SessionTurn
from api.deps import ApiKeyDep, FundedKeyDep, ServicesDep
from api.schemas.common import RunSummary, utc
from api.schemas.sessions import (
    MessageCreate,
    SessionCreate,
    SessionFork,
    SessionPublic,
    SessionsPublic,
    TurnPublic,
)
from api.services.keys import KeyRecord
from api.services.limits import remaining_spend
from api.services.requests import resolve_budgets, resolve_problem, resolve_provider
from api.services.sse import event_stream, parse_last_event_id

__all__ = ["router"]

router = APIRouter(prefix="/sessions", tags=["sessions"])


def session_public(row: SessionRow, turns: list[SessionTurn]) -> SessionPublic:
    return SessionPublic(
        id=row.id,
        status=row.status,
        problem=row.problem_key,
        target=row.target,
        provider=row.provider,
        model=row.model,
        tokens_used=row.tokens_used,
        cost_usd=row.cost_usd,
        forked_from=row.forked_from,
        forked_at_turn=row.forked_at_turn,
        error=row.error,
        created_at=utc(row.created_at),
        turns=[
            TurnPublic(
                index=t.index,
                message=t.message,
                status=t.status,
                summary=RunSummary.model_validate(t.summary) if t.summary else None,
                created_at=utc(t.created_at),
                finished_at=utc(t.finished_at),
            )
            for t in turns
        ],
    )


async def _own(services: ServicesDep, key: KeyRecord, session_id: str) -> SessionPublic:
    found = await services.sessions.get(key, session_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no session {session_id!r} for this API key")
    return session_public(*found)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SessionPublic)
async def create_session(body: SessionCreate, services: ServicesDep, key: FundedKeyDep) -> SessionPublic:
    """Open a session on a problem; its opening round starts at once."""
    settings = services.settings
    request = GenerationRequest(
        problem=resolve_problem(body.problem, settings),
        target=body.target,
        arch=body.arch or settings.gpu_arch,
        notes=tuple(body.notes),
        budgets=resolve_budgets(body.budgets, settings, remaining_spend(key, settings)),
    )
    session_id = await services.sessions.create(key, request, resolve_provider(body.provider, settings))
    return await _own(services, key, session_id)


@router.get("", response_model=SessionsPublic)
async def list_sessions(
    services: ServicesDep,
    key: ApiKeyDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SessionsPublic:
    ids, count = await services.sessions.page(key, skip=skip, limit=limit)
    return SessionsPublic(data=[await _own(services, key, i) for i in ids], count=count)


@router.get("/{session_id}", response_model=SessionPublic)
async def read_session(session_id: str, services: ServicesDep, key: ApiKeyDep) -> SessionPublic:
    """The session and its history: every message, the kernel and verdict each round ended with."""
    return await _own(services, key, session_id)


@router.post("/{session_id}/messages", status_code=status.HTTP_202_ACCEPTED, response_model=SessionPublic)
async def post_message(
    session_id: str, body: MessageCreate, services: ServicesDep, key: FundedKeyDep
) -> SessionPublic:
    """Send the next instruction ('use shared-memory tiling'); the graph resumes with it (409 while busy)."""
    await _own(services, key, session_id)
    await services.sessions.post_message(session_id, body.content, body.replies)
    return await _own(services, key, session_id)


@router.post("/{session_id}/cancel", response_model=SessionPublic)
async def cancel_session(session_id: str, services: ServicesDep, key: ApiKeyDep) -> SessionPublic:
    """End the session: a running round stops at once; finished turns stay forkable (409 if it ended)."""
    found = await _own(services, key, session_id)
    if found.status in ("cancelled", "failed"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"session {session_id} already ended ({found.status})")
    await services.sessions.cancel(session_id)
    return await _own(services, key, session_id)


@router.post("/{session_id}/fork", status_code=status.HTTP_201_CREATED, response_model=SessionPublic)
async def fork_session(
    session_id: str, body: SessionFork, services: ServicesDep, key: ApiKeyDep
) -> SessionPublic:
    """A new session that continues from this one's state after turn `turn`, waiting for a message."""
    await _own(services, key, session_id)
    new_id = await services.sessions.fork(key, session_id, body.turn)
    return await _own(services, key, new_id)


@router.get("/{session_id}/events", response_class=StreamingResponse)
async def session_events(
    session_id: str,
    services: ServicesDep,
    key: ApiKeyDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The session's events (SSE) until its current round ends; reconnect with `Last-Event-ID`."""
    await _own(services, key, session_id)
    try:
        after = parse_last_event_id(last_event_id)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc

    async def finished() -> bool:
        found = await services.sessions.get(key, session_id)
        return found is None or found[0].status != "running"

    return StreamingResponse(
        event_stream(services.database, services.sessions.hub, session_id, after, finished),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
