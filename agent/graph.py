"""The generation graph: retrieve → propose → check → compile → verify → assess (↺ retrieve) → record."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph

from agent import nodes, routing
from agent.context import RunContext
from agent.state import RunState

__all__ = ["CHECKPOINT_TYPES", "build_graph", "checkpoint_serializer"]

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
    """Wire the nodes and routers; compile with `checkpointer` (SQLite in real runs)."""
    builder = StateGraph(RunState, context_schema=RunContext)
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
    builder.add_edge("record", END)
    return builder.compile(checkpointer=checkpointer)
