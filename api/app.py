"""The FastAPI app: one router per resource, services built once in the lifespan, errors mapped to HTTP.

`create_app(settings)` migrates the database, builds the executor (sandboxed verifier workers), the
retriever and the job, session and batch managers,
resumes the runs a previous server left unfinished, and stops them (without marking them) at shutdown
so the next start resumes them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.batch.manager import BatchManager
from api.db.engine import Database
from api.middleware import BodyLimitMiddleware, RequestLogMiddleware
from api.routes import batches, health, jobs, keys, sessions
from api.services.container import Services
from api.services.events import EventHub
from api.services.jobs import JobManager
from api.services.limits import RateLimiter
from api.services.metrics import ServiceMetrics
from api.services.migrations import upgrade
from api.services.providers import ProviderFactory, default_provider_factory
from api.services.run_manager import RunServices
from api.services.sessions import SessionBusyError, SessionManager
from api.services.slots import RunSlots
from kernelwright.errors import (
    ConfigError,
    KernelwrightError,
    ProblemError,
    SandboxError,
    UnknownNameError,
    UserError,
)
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from rag.retriever import Retriever, default_retriever
from sandbox.executor import Executor
from sandbox.runner import Runner, make_runner
from sandbox.verify import VerifyOptions
from sandbox.zygote_executor import make_executor

__all__ = ["create_app", "error_status"]

log = get_logger(__name__)


def error_status(exc: KernelwrightError) -> int:
    """The HTTP status of a library error (most specific class first)."""
    if isinstance(exc, SessionBusyError):
        return status.HTTP_409_CONFLICT
    if isinstance(exc, ProblemError | UnknownNameError):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    if isinstance(exc, ConfigError | UserError):
        return status.HTTP_400_BAD_REQUEST
    if isinstance(exc, SandboxError):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def create_app(
    settings: Settings,
    *,
    providers: ProviderFactory | None = None,
    executor: Executor | None = None,
    runner: Runner | None = None,
    retriever: Retriever | None = None,
    verify_options: VerifyOptions | None = None,
) -> FastAPI:
    """The service app. Injected parts (a provider factory, an executor, a runner) replace the defaults.

    Every run of the process (jobs, session rounds, batch samples) verifies its candidates through one
    runner (KERNELWRIGHT_RUNNER: in-process leases, one per GPU, or Ray actors), so a GPU runs one
    candidate at a time however many runs are open, and more GPUs mean more candidates at once.
    """
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        url = settings.service_database_url
        await asyncio.to_thread(upgrade, url)
        database = Database(url)
        own_executor, own_runner = executor is None, runner is None
        the_executor = executor or make_executor(settings)
        the_runner = runner or make_runner(settings)
        hub = EventHub()
        slots = RunSlots(settings.job_concurrency, metrics)
        factory = providers or default_provider_factory(settings)
        the_retriever = retriever or default_retriever(settings)
        run_services = RunServices(
            settings=settings,
            database=database,
            providers=factory,
            executor=the_executor,
            runner=the_runner,
            retriever=the_retriever,
            metrics=metrics,
            hub=hub,
            slots=slots,
            verify_options=verify_options,
        )
        services = Services(
            settings=settings,
            database=database,
            providers=factory,
            executor=the_executor,
            runner=the_runner,
            retriever=the_retriever,
            limiter=RateLimiter(settings.rate_limit_per_minute),
            metrics=metrics,
            jobs=JobManager(run_services),
            sessions=SessionManager(run_services),
        )
        app.state.services = services
        batch_manager = app.state.batch_manager = BatchManager(services)
        resumed = await services.jobs.recover() + await services.sessions.recover()
        resumed += await batch_manager.recover()
        log.info("service started", database=database.url.split("@")[-1], resumed=resumed)
        try:
            yield
        finally:
            await batch_manager.shutdown()
            await services.jobs.shutdown()
            await services.sessions.shutdown()
            if own_runner:
                await the_runner.aclose()
            if own_executor:
                await the_executor.aclose()
            await database.dispose()

    app = FastAPI(
        title="kernelwright",
        summary="LLM agents that write GPU kernels, prove them correct and make them fast.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(KernelwrightError)
    async def _library_error(_request: Request, exc: KernelwrightError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=error_status(exc))

    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(sessions.router)
    app.include_router(keys.router)
    app.include_router(batches.router)
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    return app
