"""Everything the routes use, built once per app: routes never construct providers, executors or stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from api.db.engine import Database
from api.services.limits import RateLimiter
from api.services.metrics import ServiceMetrics
from api.services.providers import ProviderFactory
from kernelwright.settings import Settings
from rag.retriever import Retriever
from sandbox.executor import Executor
from sandbox.runner import Runner

if TYPE_CHECKING:
    from api.services.jobs import JobManager
    from api.services.sessions import SessionManager

__all__ = ["Services"]


@dataclass
class Services:
    """The app's shared services (in `app.state.services`); `api.deps.ServicesDep` hands them to routes."""

    settings: Settings
    database: Database
    providers: ProviderFactory
    executor: Executor
    runner: Runner  # verifies every run's candidates on leased slots
    retriever: Retriever
    limiter: RateLimiter
    metrics: ServiceMetrics
    jobs: JobManager
    sessions: SessionManager
