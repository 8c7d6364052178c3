"""Batches: create (suite or problem list x samples x models), list, read progress and metrics, cancel,
export as JSON or CSV, and the HTML report page."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from api.batch.engine import BUDGET_FIELDS
from api.batch.manager import BatchManager
from api.batch.report import render_report
from api.batch.results import batch_metrics, export_csv, export_json
from api.batch.store import BatchSpec, create_batch, list_batches, list_samples, progress
from api.batch.suite import BUILTIN_CURATED, SuiteEntry, SuiteSelection, load_suite
from api.db.batch_tables import BatchRow
from api.deps import ApiKeyDep, FundedKeyDep, ServicesDep
from api.schemas.batches import BatchCreate, BatchesPublic, BatchProgress, BatchPublic
from api.schemas.common import ProviderIn, utc
from api.services.container import Services
from api.services.keys import KeyRecord
from api.services.limits import remaining_spend
from api.services.requests import resolve_budgets, resolve_problem, resolve_provider
from kernelwright.errors import ConfigError, UserError

__all__ = ["MAX_SAMPLES", "batch_manager", "router"]

router = APIRouter(prefix="/batches", tags=["batches"])

MAX_SAMPLES = 20_000
"""Problems x samples x models one batch may hold."""


def batch_manager(request: Request, services: Services) -> BatchManager:
    """The app's batch manager (made on first use when the app's lifespan did not make one)."""
    manager: BatchManager | None = getattr(request.app.state, "batch_manager", None)
    if manager is None:
        manager = request.app.state.batch_manager = BatchManager(services)
    return manager


async def batch_public(services: Services, row: BatchRow, *, detail: bool) -> BatchPublic:
    db = services.database
    done = await progress(db, row.id)
    metrics = batch_metrics(await list_samples(db, row.id)).to_dict() if detail else None
    return BatchPublic(
        id=row.id,
        name=row.name,
        status=row.status,
        target=row.target,
        provider=row.provider,
        models=list(row.models),
        samples_per_problem=row.samples_per_problem,
        limit_llm=row.limit_llm,
        limit_gpu=row.limit_gpu,
        cancel_requested=row.cancel_requested,
        error=row.error,
        created_at=utc(row.created_at),
        finished_at=utc(row.finished_at),
        progress=BatchProgress(
            total=done.total,
            finished=done.finished,
            by_status=done.by_status,
            per_problem=done.per_problem if detail else {},
        ),
        metrics=metrics,
    )


async def _own_batch(services: Services, key: KeyRecord, batch_id: str) -> BatchRow:
    async with services.database.session() as session:
        row = await session.get(BatchRow, batch_id)
    if row is None or row.owner != key.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no batch {batch_id!r} for this API key")
    return row


async def _entries(body: BatchCreate, services: Services) -> list[SuiteEntry]:
    settings = services.settings
    if body.problems is not None:
        return [SuiteEntry(resolve_problem(p, settings)) for p in body.problems]
    assert body.suite is not None
    if settings.kernelbench_source is None:
        raise ConfigError(
            "suite needs a KernelBench source on the server (KERNELWRIGHT_KERNELBENCH_SOURCE); "
            "send problems (a list of sources) instead"
        )
    selection = SuiteSelection(
        str(settings.kernelbench_source),
        tuple(body.suite.levels),
        tuple(body.suite.ids),
        BUILTIN_CURATED if body.suite.curated else None,
        body.suite.limit,
    )
    return await asyncio.to_thread(load_suite, selection)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BatchPublic)
async def create(
    body: BatchCreate, request: Request, services: ServicesDep, key: FundedKeyDep
) -> BatchPublic:
    """Create a batch and start it; its samples run in the background under its concurrency limits."""
    settings = services.settings
    entries = await _entries(body, services)
    models = body.models or [settings.model]
    specs = [
        resolve_provider(ProviderIn(name=body.provider, model=m, replies=body.replies), settings)
        for m in models
    ]
    total = len(entries) * body.samples * len(models)
    if total > MAX_SAMPLES:
        raise UserError(
            f"the batch would hold {total} samples (problems x samples x models); the limit is {MAX_SAMPLES}"
        )
    budgets = resolve_budgets(body.budgets, settings, remaining_spend(key, settings))
    spec = BatchSpec(
        target=body.target,
        provider=specs[0].name,
        models=tuple(models),
        samples=body.samples,
        limit_llm=body.limit_llm or settings.batch_limit_llm,
        limit_gpu=body.limit_gpu or settings.batch_limit_gpu,
        suite=body.suite.model_dump() if body.suite else {"problems": [e.problem.key for e in entries]},
        options={
            "budgets": {k: getattr(budgets, k) for k in BUDGET_FIELDS},
            "arch": body.arch,
            "provider_options": {"replies": list(body.replies)},
        },
        name=body.name,
        owner=key.id,
    )
    batch_id = await create_batch(services.database, spec, entries)
    await batch_manager(request, services).start(batch_id)
    return await batch_public(services, await _own_batch(services, key, batch_id), detail=True)


@router.get("", response_model=BatchesPublic)
async def list_all(
    services: ServicesDep,
    key: ApiKeyDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BatchesPublic:
    rows, count = await list_batches(services.database, offset=skip, limit=limit, owner=key.id)
    return BatchesPublic(data=[await batch_public(services, r, detail=False) for r in rows], count=count)


@router.get("/{batch_id}", response_model=BatchPublic)
async def read(batch_id: str, services: ServicesDep, key: ApiKeyDep) -> BatchPublic:
    """Status, progress per problem, and metrics of the samples finished so far."""
    return await batch_public(services, await _own_batch(services, key, batch_id), detail=True)


@router.post("/{batch_id}/cancel", response_model=BatchPublic)
async def cancel(batch_id: str, request: Request, services: ServicesDep, key: ApiKeyDep) -> BatchPublic:
    """Stop the batch: pending samples are cancelled now, running ones within a heartbeat."""
    await _own_batch(services, key, batch_id)
    row = await batch_manager(request, services).cancel(batch_id)
    return await batch_public(services, row, detail=True)


@router.get("/{batch_id}/export")
async def export(
    batch_id: str,
    services: ServicesDep,
    key: ApiKeyDep,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """Every sample (and, in JSON, the batch and its metrics) for analysis elsewhere."""
    row = await _own_batch(services, key, batch_id)
    rows = await list_samples(services.database, batch_id)
    if fmt == "csv":
        return Response(
            export_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}.csv"'},
        )
    return Response(export_json(row, rows), media_type="application/json")


@router.get("/{batch_id}/report", response_class=HTMLResponse)
async def report(batch_id: str, services: ServicesDep, key: ApiKeyDep) -> HTMLResponse:
    """The report page: metrics, speedup distribution and outcomes per level (self-contained HTML)."""
    row = await _own_batch(services, key, batch_id)
    return HTMLResponse(render_report(row, await list_samples(services.database, batch_id)))
