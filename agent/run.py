"""Run (or resume) one generation: build the run context, open the SQLite checkpointer, invoke the graph."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.context import Budgets, RunContext
from agent.graph import build_graph, checkpoint_serializer
from agent.providers import Provider
from agent.state import RunState
from agent.trace import TraceListener, TraceWriter
from kernelwright.domain import Problem, Target, TraceKind
from kernelwright.errors import UserError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from rag.retriever import Retriever
from sandbox.executor import Executor
from sandbox.runner import Runner
from sandbox.verify import VerifyOptions
from sandbox.zygote_executor import make_executor

__all__ = ["GenerationRequest", "RunResult", "open_checkpointer", "run_generation"]

log = get_logger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    problem: Problem
    target: Target
    arch: str | None = None
    notes: tuple[str, ...] = ()
    budgets: Budgets = field(default_factory=Budgets)

    def start(self, run_id: str, trace: TraceWriter, **trace_data: Any) -> RunState:
        """The run's first state, with its RUN_STARTED event written (runs and sessions alike)."""
        trace.emit(
            TraceKind.RUN_STARTED,
            "start",
            problem=self.problem.key,
            target=self.target.value,
            **trace_data,
        )
        return RunState(
            run_id=run_id,
            problem=self.problem,
            target=self.target,
            arch=self.arch,
            notes=list(self.notes),
            started_at=time.time(),
        )


@dataclass(frozen=True)
class RunResult:
    run_id: str
    state: RunState
    trace_path: Path


_POSTGRES_READY: set[str] = set()  # URLs whose checkpoint tables were created by this process


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[Any]:
    """The LangGraph checkpointer of runs and sessions, with our strict serializer.

    SQLite under home by default; Postgres when `database_url` is a Postgres URL, so a service with
    several processes (or a moved host) shares checkpoints with its database.
    """
    settings.ensure_dirs()
    url = settings.database_url or ""
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        conninfo = "postgresql://" + url.split("://", 1)[1]
        async with AsyncPostgresSaver.from_conn_string(conninfo, serde=checkpoint_serializer()) as saver:
            if conninfo not in _POSTGRES_READY:
                await saver.setup()
                _POSTGRES_READY.add(conninfo)
            yield saver
        return
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        saver.serde = checkpoint_serializer()
        yield saver


async def run_generation(
    request: GenerationRequest | None,
    *,
    settings: Settings,
    provider: Provider,
    executor: Executor | None = None,
    retriever: Retriever | None = None,
    verify_options: VerifyOptions | None = None,
    listeners: tuple[TraceListener, ...] = (),
    run_id: str | None = None,
    budgets: Budgets | None = None,
    runner: Runner | None = None,
) -> RunResult:
    """Start a run from `request`, or resume run `run_id` from its last checkpoint when `request` is None.

    A resumed run continues after the last completed step: nothing already done is redone. Budgets are
    not checkpointed: a resume uses `budgets` (the original run's, when the caller kept them) or settings.
    With `runner` (a service's or batch's shared pool), candidates are verified on its leased slots;
    otherwise on `executor` (one is made from the settings when none is given).
    """
    if request is None and run_id is None:
        raise UserError("resuming needs the run id of an earlier run")
    settings.ensure_dirs()
    run_id = run_id or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    trace = TraceWriter(
        settings.traces_dir / f"{run_id}.jsonl", run_id, replay=provider.is_replay, listeners=listeners
    )
    budgets = request.budgets if request else (budgets or Budgets.from_settings(settings))
    context = RunContext.create(
        settings=settings,
        provider=provider,
        executor=executor or make_executor(settings),
        trace=trace,
        budgets=budgets,
        retriever=retriever,
        verify_options=verify_options,
        runner=runner,
    )
    config = {"configurable": {"thread_id": run_id}}
    try:
        async with open_checkpointer(settings) as saver:
            graph = build_graph(saver)
            if request is None:
                snapshot = await graph.aget_state(config)
                if not snapshot.values:
                    raise UserError(f"no checkpoint for run {run_id!r} in {settings.checkpoint_db}")
                trace.emit(
                    TraceKind.RUN_STARTED,
                    "resume",
                    resumed=True,
                    provider=provider.name,
                    model=provider.model,
                )
                final = await graph.ainvoke(None, config, context=context)
            else:
                state = request.start(
                    run_id,
                    trace,
                    provider=provider.name,
                    model=provider.model,
                    replay=provider.is_replay,
                    budgets=budgets.__dict__,
                )
                final = await graph.ainvoke(state, config, context=context)
    finally:
        if executor is None:
            await context.executor.aclose()
    result = RunResult(run_id=run_id, state=RunState.model_validate(final), trace_path=trace.path)
    log.info(
        "run finished",
        run_id=run_id,
        status=result.state.status.value,
        turns=result.state.turn,
        tokens=result.state.tokens_used,
        trace=str(trace.path),
    )
    return result
