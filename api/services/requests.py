"""Turn validated request bodies into run inputs: the problem, the provider spec, the budgets.

Everything here only parses and looks up; nothing the client sends is executed. Errors are
`kernelwright.errors` types with a fix-it message; `api.app` maps them to 4xx.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent.context import Budgets
from agent.providers import known_providers
from agent.run import GenerationRequest
from api.schemas.common import BudgetsIn, ProblemIn, ProviderIn
from api.services.providers import ProviderSpec
from kernelwright.domain import Problem, Target
from kernelwright.domain.problem import load_problems
from kernelwright.errors import ConfigError, ProblemError, UnknownNameError, UserError
from kernelwright.settings import Settings

__all__ = ["StoredRequest", "resolve_budgets", "resolve_problem", "resolve_provider"]


def resolve_problem(problem: ProblemIn, settings: Settings) -> Problem:
    if problem.source is not None:
        try:
            return Problem(name=problem.name or "problem", source=problem.source, origin="api")
        except ValueError as exc:  # pydantic wraps the contract check
            detail = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            raise ProblemError(f"problem.source: {str(detail).removeprefix('Value error, ')}") from exc
    assert problem.kernelbench_id is not None
    if settings.kernelbench_source is None:
        raise ConfigError(
            "problem.kernelbench_id needs a KernelBench source on the server "
            "(KERNELWRIGHT_KERNELBENCH_SOURCE); send problem.source instead"
        )
    wanted = problem.kernelbench_id.strip()
    if "#" in wanted or "/" not in wanted:
        raise UnknownNameError(f"problem.kernelbench_id {wanted!r}: expected LEVEL/ID, e.g. L1/19")
    source = settings.kernelbench_source
    suite = _suite(str(source), source.stat().st_mtime if source.exists() else 0.0)
    found = suite.get(wanted if wanted.startswith("L") else f"L{wanted}")
    if found is None:
        # the message names no server path: clients only need to know the id is not there
        raise UnknownNameError(
            f"no KernelBench problem {wanted!r} on this server ({len(suite)} problems, "
            f"e.g. {next(iter(suite), '')})"
        )
    return found


@lru_cache(maxsize=4)
def _suite(source: str, _mtime: float) -> dict[str, Problem]:
    """The configured KernelBench problems by key, parsed once per file version (not per request)."""
    return {p.key: p for p in load_problems(Path(source))}


def resolve_provider(provider: ProviderIn, settings: Settings) -> ProviderSpec:
    name = provider.name or settings.provider
    if name not in known_providers():
        raise UnknownNameError(f"unknown provider {name!r}; known providers: {', '.join(known_providers())}")
    if name == "scripted" and not provider.replies:
        raise UserError("provider 'scripted' replays given replies: send provider.replies (a list of texts)")
    if name != "scripted" and provider.replies:
        raise UserError("provider.replies is only for the 'scripted' provider")
    return ProviderSpec(name=name, model=provider.model or settings.model, replies=tuple(provider.replies))


def resolve_budgets(budgets: BudgetsIn, settings: Settings, spend_left: float) -> Budgets:
    """The run's budgets, its cost budget never above what the key may still spend."""
    base = Budgets.from_settings(
        settings,
        max_turns=budgets.max_turns,
        max_tokens=budgets.max_tokens,
        max_cost_usd=budgets.max_cost_usd,
        max_wall_s=budgets.max_wall_s,
        optimize_rounds=budgets.optimize_rounds,
    )
    return Budgets(**{**asdict(base), "max_cost_usd": min(base.max_cost_usd, spend_left)})


class StoredRequest:
    """The JSON a job or session row keeps, so a restarted server can rebuild the run."""

    @staticmethod
    def dump(request: GenerationRequest, provider: ProviderSpec) -> dict[str, Any]:
        return {
            "problem": request.problem.model_dump(mode="json"),
            "target": request.target.value,
            "arch": request.arch,
            "notes": list(request.notes),
            "budgets": asdict(request.budgets),
            "provider": provider.to_json(),
        }

    @staticmethod
    def load(data: dict[str, Any]) -> tuple[GenerationRequest, ProviderSpec]:
        request = GenerationRequest(
            problem=Problem.model_validate(data["problem"]),
            target=Target(data["target"]),
            arch=data.get("arch"),
            notes=tuple(data.get("notes", ())),
            budgets=Budgets(**data["budgets"]),
        )
        return request, ProviderSpec.from_json(data["provider"])
