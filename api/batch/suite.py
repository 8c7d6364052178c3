"""Which problems a batch runs: a KernelBench folder or HF-schema JSONL/parquet, filtered by level and id,
optionally through a curated suite (excluded problems dropped, input fixes attached), or explicit problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from kernelwright.domain import Problem
from kernelwright.domain.problem import load_problems
from kernelwright.errors import UnknownNameError, UserError
from sandbox.audit import CuratedSuite

__all__ = [
    "BUILTIN_CURATED",
    "SuiteEntry",
    "SuiteSelection",
    "apply_curated",
    "load_curated",
    "load_suite",
    "select_problems",
]

BUILTIN_CURATED = "kernelbench-l1-3-curated"
"""`--curated kernelbench-l1-3-curated` names the packaged curated suite (knowledge/suites/)."""


@dataclass(frozen=True)
class SuiteEntry:
    """A problem of a batch and the curated input fixes its verification applies."""

    problem: Problem
    transforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteSelection:
    """Where the problems come from and which of them to take (recorded on the batch)."""

    source: str
    levels: tuple[int, ...] = ()
    ids: tuple[str, ...] = ()
    curated: str | None = None
    limit: int | None = None

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "levels": list(self.levels),
            "ids": list(self.ids),
            "curated": self.curated,
            "limit": self.limit,
        }


def _matches(problem: Problem, wanted: str) -> bool:
    if wanted in (problem.key, problem.name):
        return True
    if "/" in wanted:  # "1/19" means L1/19
        return f"L{wanted}" == problem.key
    return wanted.isdigit() and problem.problem_id == int(wanted)


def select_problems(
    problems: Sequence[Problem], levels: Sequence[int] = (), ids: Sequence[str] = ()
) -> list[Problem]:
    """Problems of the given levels (all when empty) whose key, `level/id`, id or name is in `ids`.

    Every requested id must match something, so a typo is an error instead of a smaller batch.
    """
    chosen = [p for p in problems if not levels or p.level in levels]
    if not ids:
        return chosen
    missing = [i for i in ids if not any(_matches(p, i) for p in chosen)]
    if missing:
        sample = ", ".join(p.key for p in chosen[:5])
        raise UnknownNameError(
            f"no problem {', '.join(map(repr, missing))} in the selected levels; ids are keys such as "
            f"L1/19, level/id (1/19), a bare id (19) or a name. Some keys there: {sample}"
        )
    return [p for p in chosen if any(_matches(p, i) for i in ids)]


def load_curated(spec: str) -> CuratedSuite:
    """A curated suite from a JSON file, or the packaged one by its name."""
    if spec == BUILTIN_CURATED:
        text = resources.files("knowledge").joinpath("suites", f"{BUILTIN_CURATED}.json").read_text("utf-8")
        where = f"the packaged suite {BUILTIN_CURATED}"
    else:
        path = Path(spec)
        if not path.is_file():
            raise UserError(
                f"curated suite {spec} does not exist: pass a file from `kernelwright problems curate` "
                f"or {BUILTIN_CURATED!r}"
            )
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        return CuratedSuite.model_validate_json(text)
    except ValidationError as exc:
        raise UserError(f"{where} is not a curated suite: {exc.errors()[0]['msg']}") from exc


def apply_curated(problems: Sequence[Problem], curated: CuratedSuite | None) -> list[SuiteEntry]:
    if curated is None:
        return [SuiteEntry(p) for p in problems]
    return [SuiteEntry(p, curated.transforms_for(p)) for p in problems if curated.admits(p)]


def load_suite(selection: SuiteSelection) -> list[SuiteEntry]:
    """Load, filter, curate and cap the suite; an empty result is an error that says why."""
    problems = select_problems(load_problems(Path(selection.source)), selection.levels, selection.ids)
    entries = apply_curated(problems, load_curated(selection.curated) if selection.curated else None)
    entries = entries[: selection.limit] if selection.limit else entries
    if not entries:
        raise UserError(
            f"the suite {selection.source} has no problems left after filtering "
            f"(levels {list(selection.levels) or 'all'}, ids {list(selection.ids) or 'all'}, "
            f"curated {selection.curated or 'no'})"
        )
    return entries
