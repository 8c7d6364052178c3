"""Per-run settings and services, handed to nodes through LangGraph's runtime context (not checkpointed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.providers import Provider
from agent.trace import TraceWriter
from kernelwright.settings import Settings
from rag.retriever import Retriever, default_retriever
from sandbox.executor import Executor
from sandbox.runner import Runner
from sandbox.verify import VerifyOptions

__all__ = ["Budgets", "RunContext"]


@dataclass(frozen=True)
class Budgets:
    """Limits of one run, enforced by the routers (never by exceptions)."""

    max_turns: int = 6
    max_tokens: int = 200_000
    max_wall_s: float = 1800.0
    max_cost_usd: float = 5.0
    optimize_rounds: int = 0  # extra turns spent making a correct kernel faster

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: float | None) -> Budgets:
        values: dict[str, float | int] = {
            "max_turns": settings.max_turns,
            "max_tokens": settings.max_tokens,
            "max_wall_s": settings.max_wall_s,
            "max_cost_usd": settings.max_cost_usd,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    provider: Provider
    executor: Executor
    retriever: Retriever
    trace: TraceWriter
    budgets: Budgets
    verify_options: VerifyOptions
    kernel_cache: Path
    retrieval_k: int = 4
    # set by the service and batches: candidates are verified on the runner's leased slots (one per
    # GPU, shared with every other run of the process), not on `executor` directly
    runner: Runner | None = None

    @classmethod
    def create(
        cls,
        *,
        settings: Settings,
        provider: Provider,
        executor: Executor,
        trace: TraceWriter,
        budgets: Budgets,
        retriever: Retriever | None = None,
        verify_options: VerifyOptions | None = None,
        runner: Runner | None = None,
    ) -> RunContext:
        """The context of a run or a session round: defaults from `settings`, the kernel cache made."""
        kernel_cache = settings.artifacts_dir / "kernels"
        kernel_cache.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            provider=provider,
            executor=executor,
            retriever=retriever or default_retriever(settings),
            trace=trace,
            budgets=budgets,
            verify_options=verify_options or VerifyOptions.from_settings(settings),
            kernel_cache=kernel_cache,
            runner=runner,
        )
