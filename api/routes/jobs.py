"""Jobs: submit a generation, read its status and result, follow its events (SSE), cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from agent.run import GenerationRequest
from api.db.models import Job
from api.deps import ApiKeyDep, FundedKeyDep, ServicesDep
from api.schemas.common import RunSummary, utc
from api.schemas.jobs import JobCreate, JobPublic, JobsPublic
from api.services.jobs import TERMINAL
from api.services.keys import KeyRecord
from api.services.limits import remaining_spend
from api.services.requests import resolve_budgets, resolve_problem, resolve_provider
from api.services.sse import event_stream, parse_last_event_id

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])


def job_public(row: Job) -> JobPublic:
    return JobPublic(
        id=row.id,
        status=row.status,
        problem=row.problem_key,
        target=row.target,
        provider=row.provider,
        model=row.model,
        turns=row.turns,
        tokens_used=row.tokens_used,
        cost_usd=row.cost_usd,
        error=row.error,
        result=RunSummary.model_validate(row.result) if row.result else None,
        created_at=utc(row.created_at),
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at),
    )


async def _own_job(services: ServicesDep, key: KeyRecord, job_id: str) -> Job:
    row = await services.jobs.get(key, job_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} for this API key")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobPublic)
async def create_job(body: JobCreate, services: ServicesDep, key: FundedKeyDep) -> JobPublic:
    """Start a generation: the problem is parsed (never run here), the run is queued, its id returned."""
    settings = services.settings
    request = GenerationRequest(
        problem=resolve_problem(body.problem, settings),
        target=body.target,
        arch=body.arch or settings.gpu_arch,
        notes=tuple(body.notes),
        budgets=resolve_budgets(body.budgets, settings, remaining_spend(key, settings)),
    )
    row = await services.jobs.submit(key, request, resolve_provider(body.provider, settings))
    return job_public(row)


@router.get("", response_model=JobsPublic)
async def list_jobs(
    services: ServicesDep,
    key: ApiKeyDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    job_status: Annotated[str | None, Query(alias="status")] = None,
) -> JobsPublic:
    rows, count = await services.jobs.page(key, skip=skip, limit=limit, status=job_status)
    return JobsPublic(data=[job_public(r) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic)
async def read_job(job_id: str, services: ServicesDep, key: ApiKeyDep) -> JobPublic:
    return job_public(await _own_job(services, key, job_id))


@router.post("/{job_id}/cancel", response_model=JobPublic)
async def cancel_job(job_id: str, services: ServicesDep, key: ApiKeyDep) -> JobPublic:
    """Stop a queued or running job; a finished job is left as it is (409)."""
    row = await _own_job(services, key, job_id)
    if row.status in TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} already ended ({row.status})")
    await services.jobs.cancel(job_id)
    return job_public(await _own_job(services, key, job_id))


@router.get("/{job_id}/events", response_class=StreamingResponse)
async def job_events(
    job_id: str,
    services: ServicesDep,
    key: ApiKeyDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The job's events as server-sent events, live; reconnect with `Last-Event-ID` to resume."""
    await _own_job(services, key, job_id)
    try:
        after = parse_last_event_id(last_event_id)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc

    async def finished() -> bool:
        row = await services.jobs.get(key, job_id)
        return row is None or row.status in TERMINAL

    return StreamingResponse(
        event_stream(services.database, services.jobs.hub, job_id, after, finished),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
