"""Chat-style refinement sessions: the generation loop as a thread that waits for the user between rounds.

After `record` the graph enters `await_user`, which calls `interrupt()`; the thread sleeps in its
checkpoint until the user's next message arrives as `Command(resume=message)`. The message joins the
run's notes (every prompt template renders them) and the loop runs another round. `await_user` re-runs
from its top on resume, so it does nothing before `interrupt()`: no side effect happens twice.

Budgets are per round: each round may spend the configured turns, tokens and cost on top of what the
session had spent when it started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langgraph.graph import StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agent.context import Budgets, RunContext
from agent.graph import add_generation_loop
from agent.providers import Provider
from agent.run import GenerationRequest, open_checkpointer
from agent.state import RunState, RunStatus
from agent.trace import TraceListener, TraceWriter
from kernelwright.domain import TraceKind
from kernelwright.errors import UserError
from kernelwright.settings import Settings
from rag.retriever import Retriever
from sandbox.executor import Executor
from sandbox.runner import Runner
from sandbox.verify import VerifyOptions

__all__ = [
    "RoundResult",
    "await_user",
    "build_session_graph",
    "fork_session",
    "read_session",
    "run_session_round",
]


async def await_user(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Pause until the user's next message; then open a new round with it as a note."""
    message = interrupt({"turn": state.turn, "status": state.status.value})
    return {
        "notes": [*state.notes, str(message)],
        "status": RunStatus.RUNNING,
        "stop_reason": None,
        "started_at": time.time(),
    }


def build_session_graph(checkpointer: Any = None) -> Any:
    """The generation loop with `record → await_user → retrieve`: it never ends, it waits."""
    return _compiled_session_graph().copy(update={"checkpointer": checkpointer})


@lru_cache(maxsize=1)
def _compiled_session_graph() -> Any:
    builder = StateGraph(RunState, context_schema=RunContext)
    add_generation_loop(builder)
    builder.add_node("await_user", await_user)
    builder.add_edge("record", "await_user")
    builder.add_edge("await_user", "retrieve")
    return builder.compile()


@dataclass(frozen=True)
class RoundResult:
    """Where a session stands after a round: its state and the checkpoint it waits in."""

    session_id: str
    state: RunState
    checkpoint_id: str | None
    waiting: bool  # paused for the user's next message


def _round_budgets(state: RunState | None, per_round: Budgets) -> Budgets:
    if state is None:
        return per_round
    return Budgets(
        max_turns=state.turn + per_round.max_turns,
        max_tokens=state.tokens_used + per_round.max_tokens,
        max_cost_usd=state.cost_usd + per_round.max_cost_usd,
        max_wall_s=per_round.max_wall_s,
        optimize_rounds=state.optimize_rounds_done + per_round.optimize_rounds,
    )


async def run_session_round(
    session_id: str,
    *,
    settings: Settings,
    provider: Provider,
    executor: Executor,
    budgets: Budgets,
    request: GenerationRequest | None = None,
    message: str | None = None,
    retriever: Retriever | None = None,
    verify_options: VerifyOptions | None = None,
    listeners: tuple[TraceListener, ...] = (),
    runner: Runner | None = None,
) -> RoundResult:
    """Run one round of session `session_id` until it waits for the user again.

    With `request`: the opening round of a new session. With `message`: the user's next message to a
    waiting session. With neither: continue a round a server restart interrupted.
    """
    trace = TraceWriter(
        settings.traces_dir / f"{session_id}.jsonl",
        session_id,
        replay=provider.is_replay,
        listeners=listeners,
    )
    config = {"configurable": {"thread_id": session_id}}
    async with open_checkpointer(settings) as saver:
        graph = build_session_graph(saver)
        snapshot = await graph.aget_state(config)
        current = RunState.model_validate(snapshot.values) if snapshot.values else None
        context = RunContext.create(
            settings=settings,
            provider=provider,
            executor=executor,
            trace=trace,
            budgets=_round_budgets(current, budgets),
            retriever=retriever,
            verify_options=verify_options,
            runner=runner,
        )
        graph_input: Any
        if request is not None:
            if current is not None:
                raise UserError(f"session {session_id!r} already exists")
            graph_input = request.start(
                session_id, trace, provider=provider.name, model=provider.model, session=True
            )
        elif current is None:
            raise UserError(f"no session {session_id!r} in {settings.checkpoint_db}")
        elif message is not None:
            if "await_user" not in snapshot.next:
                raise UserError(f"session {session_id!r} is not waiting for a message")
            trace.emit(TraceKind.RUN_STARTED, "message", turn=current.turn, message=message)
            graph_input = Command(resume=message)
        else:
            # A step whose writes were saved just before a crash leaves `next` empty but `tasks` set:
            # that round is not over, and invoking with None applies those writes and goes on.
            if "await_user" in snapshot.next or not (snapshot.next or snapshot.tasks):
                return _result(session_id, snapshot)
            trace.emit(TraceKind.RUN_STARTED, "resume", turn=current.turn, resumed=True)
            graph_input = None
        await graph.ainvoke(graph_input, config, context=context)
        return _result(session_id, await graph.aget_state(config))


def _result(session_id: str, snapshot: Any) -> RoundResult:
    checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
    return RoundResult(
        session_id=session_id,
        state=RunState.model_validate(snapshot.values),
        checkpoint_id=checkpoint_id,
        waiting="await_user" in snapshot.next,
    )


async def fork_session(source_id: str, checkpoint_id: str, new_id: str, *, settings: Settings) -> RunState:
    """Start thread `new_id` from `source_id`'s checkpoint `checkpoint_id`, waiting for a user message."""
    async with open_checkpointer(settings) as saver:
        graph = build_session_graph(saver)
        source = {"configurable": {"thread_id": source_id, "checkpoint_id": checkpoint_id}}
        snapshot = await graph.aget_state(source)
        if not snapshot.values:
            raise UserError(f"session {source_id!r} has no checkpoint {checkpoint_id!r}")
        state = RunState.model_validate(snapshot.values).model_copy(update={"run_id": new_id})
        values = {name: getattr(state, name) for name in RunState.model_fields}
        await graph.aupdate_state({"configurable": {"thread_id": new_id}}, values, as_node="record")
        return state


async def read_session(session_id: str, *, settings: Settings) -> RoundResult | None:
    """Where session `session_id` stands in its checkpoints, or None before its first checkpoint."""
    async with open_checkpointer(settings) as saver:
        snapshot = await build_session_graph(saver).aget_state({"configurable": {"thread_id": session_id}})
    return _result(session_id, snapshot) if snapshot.values else None
