"""Render the agent's prompts from versioned Jinja2 templates.

The system prompt carries everything that is stable across a run (the model's role, the candidate
contract, the target's conventions), so providers that cache prompt prefixes can reuse it; the
user prompt carries what changes each turn (the step's task, the problem, retrieved context,
earlier attempts, diagnostics, verdicts, user notes).

Templates are loaded from the installed `prompts` package (`PackageLoader`), rendered with
`StrictUndefined` so a variable missing from the render context fails loudly instead of silently
printing nothing, and each declares `{# version: N #}` on its first line. The version string of a
rendered prompt names every template that produced it, so a trace shows exactly which wording a
model saw.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import jinja2
from jinja2 import meta

from kernelwright.domain import Diagnostic, Hit, Problem, Target, Timing, Verdict

__all__ = [
    "MAX_ATTEMPTS_SHOWN",
    "MAX_DIAGNOSTICS_SHOWN",
    "AttemptSummary",
    "PromptInput",
    "RenderedPrompt",
    "Step",
    "ptx_isa_for_arch",
    "render_prompt",
    "template_names",
    "template_version",
]

MAX_DIAGNOSTICS_SHOWN = 20
"""A compiler can print hundreds of follow-on errors; the first ones are the ones worth fixing."""

MAX_ATTEMPTS_SHOWN = 8
"""Only the most recent attempts are summarised: old history costs tokens and rarely helps."""

_VERSION_LINE = re.compile(r"\A\{#\s*version:\s*(\d+)\s*#\}")

_TARGET_LABELS = {
    Target.PTX: "PTX",
    Target.CUDA: "CUDA C++",
    Target.TRITON: "Triton",
    Target.TT_METAL: "TT-Metal",
}

# Lowest PTX ISA version that knows each target architecture (from the PTX ISA release history).
# Using the lowest one keeps the module loadable by the oldest driver that can run the GPU at all.
_PTX_ISA_FOR_ARCH = {
    "sm_70": "6.0",
    "sm_72": "6.1",
    "sm_75": "6.3",
    "sm_80": "7.0",
    "sm_86": "7.1",
    "sm_87": "7.4",
    "sm_89": "7.8",
    "sm_90": "7.8",
    "sm_90a": "8.0",
    "sm_100": "8.6",
    "sm_100a": "8.6",
    "sm_120": "8.7",
    "sm_120a": "8.7",
}
_ARCH = re.compile(r"(?:sm_?|compute_?)?(\d+)(?:\.(\d+))?([af]?)$")


class Step(StrEnum):
    """Which task the user prompt asks for; each has its own template."""

    PROPOSE = "propose"
    FIX_COMPILE = "fix_compile"
    FIX_MISMATCH = "fix_mismatch"
    OPTIMIZE = "optimize"


@dataclass(frozen=True)
class AttemptSummary:
    """One earlier attempt, reduced to a line so the model does not repeat a known dead end."""

    turn: int
    outcome: str
    summary: str


@dataclass(frozen=True)
class PromptInput:
    """Everything a prompt may show. Only `problem`, `target` and `step` are required."""

    problem: Problem
    target: Target
    step: Step
    arch: str | None = None
    device: str | None = None
    context: Sequence[Hit] = ()
    attempts: Sequence[AttemptSummary] = ()
    previous_code: str | None = None
    diagnostics: Sequence[Diagnostic] = ()
    verdict: Verdict | None = None
    notes: Sequence[str] = ()  # user instructions (chat sessions)


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt plus what produced it.

    `template` is the step template (e.g. `propose.j2`); `version` lists every template used with
    its declared version, step template first, e.g. `propose.j2@1 system.j2@1 targets/ptx.j2@1 ...`.
    """

    system: str
    user: str
    template: str
    version: str


@dataclass(frozen=True)
class _HitView:
    index: int
    citation: str
    heading: str
    collection: str
    text: str


@dataclass(frozen=True)
class _DrawView:
    draw: int
    passed: bool
    max_abs: str
    mean_abs: str
    max_rel: str


@dataclass(frozen=True)
class _TimingView:
    median: str
    spread: str
    trials: int
    method: str


@dataclass(frozen=True)
class _VerdictView:
    outcome: str
    message: str
    device: str
    draws: tuple[_DrawView, ...]
    diagnostics: tuple[str, ...]
    candidate: _TimingView | None
    eager: _TimingView | None
    speedup: str


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("prompts", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fenced"] = _fenced
    return env


def template_names() -> list[str]:
    """Every template shipped with the package (partials included), sorted."""
    return sorted(name for name in _environment().list_templates() if name.endswith(".j2"))


@cache
def template_version(name: str) -> str:
    """The `N` of the template's leading `{# version: N #}`; a template without one is a bug."""
    env = _environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    match = _VERSION_LINE.match(source)
    if match is None:
        raise ValueError(f"prompt template {name} does not start with '{{# version: N #}}'")
    return match.group(1)


@cache
def _static_references(name: str) -> tuple[str, ...]:
    """Templates included/imported by `name`, recursively (dynamic includes are listed by the caller)."""
    env = _environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    found: list[str] = []
    for ref in meta.find_referenced_templates(env.parse(source)):
        if ref is None or ref in found:
            continue
        found.append(ref)
        found.extend(r for r in _static_references(ref) if r not in found)
    return tuple(found)


def ptx_isa_for_arch(arch: str | None) -> str | None:
    """The lowest PTX ISA version (`.version`) that supports `arch`, or None when unknown."""
    normalised = _normalise_arch(arch)
    return _PTX_ISA_FOR_ARCH.get(normalised) if normalised else None


def _normalise_arch(arch: str | None) -> str | None:
    """Accept `sm_90`, `sm90`, `compute_90`, `9.0`, `90`, `sm_90a`; return `sm_90` style or None."""
    if not arch:
        return None
    match = _ARCH.match(arch.strip().lower())
    if match is None:
        return None
    major, minor, suffix = match.group(1), match.group(2), match.group(3)
    number = f"{major}{minor}" if minor is not None else major
    return f"sm_{number}{suffix}"


def _fenced(value: object, language: str = "") -> str:
    """`value` in a Markdown fence longer than any backtick run inside it, so embedded fences survive.
    (`str()` first: on a StrictUndefined it raises, as a missing variable should.)"""
    text = str(value)
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _timing(timing: Timing | None) -> _TimingView | None:
    if timing is None:
        return None
    spread = ""
    if timing.p10_ms is not None and timing.p90_ms is not None:
        spread = f"p10 {timing.p10_ms:.4g} ms, p90 {timing.p90_ms:.4g} ms"
    return _TimingView(
        median=f"{timing.median_ms:.4g} ms", spread=spread, trials=timing.trials, method=timing.method
    )


def _verdict_view(verdict: Verdict | None) -> _VerdictView | None:
    if verdict is None:
        return None
    draws = tuple(
        _DrawView(
            draw=d.draw,
            passed=d.passed,
            max_abs=_number(d.max_abs_error),
            mean_abs=_number(d.mean_abs_error),
            max_rel=_number(d.max_rel_error),
        )
        for d in verdict.draws
    )
    return _VerdictView(
        outcome=verdict.outcome.value,
        message=verdict.message.strip(),
        device=verdict.device or "",
        draws=draws,
        diagnostics=tuple(d.render() for d in verdict.diagnostics[:MAX_DIAGNOSTICS_SHOWN]),
        candidate=_timing(verdict.candidate_timing),
        eager=_timing(verdict.eager_timing),
        speedup="" if verdict.speedup_vs_eager is None else f"{verdict.speedup_vs_eager:.3g}x",
    )


def _hit_views(hits: Sequence[Hit]) -> Iterator[_HitView]:
    for index, hit in enumerate(hits, start=1):
        yield _HitView(
            index=index,
            citation=hit.citation,
            heading=(hit.heading or "").replace('"', "'"),  # it goes into a quoted attribute
            collection=hit.collection,
            text=hit.text.strip("\n"),
        )


def render_prompt(inp: PromptInput) -> RenderedPrompt:
    """Render the system and user prompt for one agent step."""
    env = _environment()
    step_template = f"{inp.step.value}.j2"
    target_template = f"targets/{inp.target.value}.j2"
    arch = _normalise_arch(inp.arch)
    code = inp.previous_code
    attempts = list(inp.attempts)
    shown_attempts = attempts[-MAX_ATTEMPTS_SHOWN:]
    # The verdict's own diagnostics are shown with the verdict; do not repeat them.
    in_verdict = {d.render() for d in inp.verdict.diagnostics} if inp.verdict else set()
    diagnostics = [text for text in (d.render() for d in inp.diagnostics) if text not in in_verdict]
    variables: dict[str, object] = {
        "step": inp.step.value,
        "target": inp.target.value,
        "target_label": _TARGET_LABELS[inp.target],
        "target_template": target_template,
        "arch": arch,
        "ptx_version": _PTX_ISA_FOR_ARCH.get(arch) if arch else None,
        "device": inp.device,
        "problem": inp.problem,
        "hits": list(_hit_views(inp.context)),
        "attempts": shown_attempts,
        "attempts_omitted": len(attempts) - len(shown_attempts),
        "previous_code": code.rstrip() if code is not None else None,
        "diagnostics": diagnostics[:MAX_DIAGNOSTICS_SHOWN],
        "diagnostics_omitted": max(0, len(diagnostics) - MAX_DIAGNOSTICS_SHOWN),
        "verdict": _verdict_view(inp.verdict),
        "notes": [note.strip() for note in inp.notes if note.strip()],
    }
    system = env.get_template("system.j2").render(variables)
    user = env.get_template(step_template).render(variables)
    used = [step_template, "system.j2", target_template]
    for name in (*_static_references(step_template), *_static_references("system.j2")):
        if name not in used:
            used.append(name)
    version = " ".join(f"{name}@{template_version(name)}" for name in used)
    return RenderedPrompt(system=_tidy(system), user=_tidy(user), template=step_template, version=version)


def _tidy(text: str) -> str:
    """Trim the edges only: code shown inside the prompt must keep its exact lines (diagnostics cite them)."""
    return text.strip() + "\n"
