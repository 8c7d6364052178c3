"""The generation graph: retrieve → propose → check → compile → verify → assess (↺ retrieve) → record."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph

from agent import nodes, routing
from agent.context import RunContext
from agent.state import RunState

__all__ = ["CHECKPOINT_TYPES", "add_generation_loop", "build_graph", "checkpoint_serializer"]

# Our types inside checkpoints; LangGraph refuses to revive anything not allowlisted in strict mode.
CHECKPOINT_TYPES: list[tuple[str, ...]] = [
    ("agent.state", "RunState"),
    ("agent.state", "Attempt"),
    ("agent.state", "RunStatus"),
    ("prompts.render", "Step"),
    ("kernelwright.domain.problem", "Problem"),
    ("kernelwright.domain.target", "Target"),
    ("kernelwright.domain.candidate", "CompileResult"),
    ("kernelwright.domain.diagnostic", "Diagnostic"),
    ("kernelwright.domain.diagnostic", "Severity"),
    ("kernelwright.domain.verdict", "Verdict"),
    ("kernelwright.domain.verdict", "Outcome"),
    ("kernelwright.domain.verdict", "DrawError"),
    ("kernelwright.domain.verdict", "Timing"),
    ("kernelwright.domain.retrieval", "Hit"),
]


def checkpoint_serializer() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES)


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> Any:
    """The compiled graph bound to `checkpointer` (SQLite in real runs).

    Compiling inspects every node's type hints (~30 ms); a service starting many runs reuses one compiled
    graph and binds each run's checkpointer to a shallow copy.
    """
    return _compiled_graph().copy(update={"checkpointer": checkpointer})


@lru_cache(maxsize=1)
def _compiled_graph() -> Any:
    builder = StateGraph(RunState, context_schema=RunContext)
    add_generation_loop(builder)
    builder.add_edge("record", END)
    return builder.compile()


def add_generation_loop(builder: Any) -> None:
    """The loop from START to `record`; callers decide what follows `record` (END, or a chat turn)."""
    builder.add_node("retrieve", nodes.retrieve)
    builder.add_node("propose", nodes.propose)
    builder.add_node("check", nodes.check)
    builder.add_node("compile", nodes.compile_kernel)
    builder.add_node("verify", nodes.verify)
    builder.add_node("assess", nodes.assess)
    builder.add_node("record", nodes.record)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "propose")
    builder.add_conditional_edges("propose", routing.route_after_propose)
    builder.add_conditional_edges("check", routing.route_after_check)
    builder.add_conditional_edges("compile", routing.route_after_compile)
    builder.add_edge("verify", "assess")
    builder.add_conditional_edges("assess", routing.route_after_assess)
