"""A run's state as the API reports it: best kernel, verdict, speedups, citations, spend."""

from __future__ import annotations

from agent.state import RunState
from api.schemas.common import RunSummary

__all__ = ["summarize"]


def summarize(state: RunState) -> RunSummary:
    best = state.best
    verdict = best.verdict if best is not None else None
    return RunSummary(
        status=state.status.value,
        reason=state.stop_reason,
        turns=state.turn,
        tokens_used=state.tokens_used,
        cost_usd=state.cost_usd,
        best_turn=best.turn if best else None,
        best_outcome=best.outcome.value if best else None,
        best_code=best.code if best else None,
        verdict_message=verdict.message if verdict else None,
        speedup_vs_eager=verdict.speedup_vs_eager if verdict else None,
        speedup_vs_compile=verdict.speedup_vs_compile if verdict else None,
        device=verdict.device if verdict else None,
        citations=list(dict.fromkeys(h.citation for h in state.hits)),
        outcomes=[a.outcome.value for a in state.attempts],
    )
