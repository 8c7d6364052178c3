"""Health, readiness and Prometheus metrics: the routes that need no API key."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ServicesDep
from api.services.migrations import current_revision, head_revision

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the database answers and its schema is at the migrations' head."""
    url = services.settings.service_database_url
    try:
        async with services.database.session() as s:
            await s.execute(text("SELECT 1"))
        current, head = await asyncio.to_thread(lambda: (current_revision(url), head_revision(url)))
    except (SQLAlchemyError, OSError) as exc:
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {exc.__class__.__name__}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    body = {"status": "ready", "database": "ok", "revision": sorted(current), "head": sorted(head)}
    if current != head:
        body["status"] = "migrations pending: run kernelwright db upgrade"
        return JSONResponse(body, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse(body)


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: jobs, sessions, queue depth, runner slots and events, tokens, cost, verdicts."""
    m = services.metrics
    for name, count in (await services.jobs.status_counts()).items():
        m.jobs.labels(name).set(count)
    for name, count in (await services.sessions.status_counts()).items():
        m.sessions.labels(name).set(count)
    m.observe_runner(services.runner)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
