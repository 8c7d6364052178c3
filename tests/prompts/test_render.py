"""Prompt rendering: every template renders for every target and step, shows what it is given, and
fails loudly on missing variables."""

from __future__ import annotations

import ast
import re

import jinja2
import pytest
from jinja2 import meta

from kernelwright.domain import (
    Diagnostic,
    DrawError,
    Hit,
    Outcome,
    Problem,
    Severity,
    Target,
    Timing,
    Verdict,
)
from prompts import (
    AttemptSummary,
    PromptInput,
    RenderedPrompt,
    Step,
    ptx_isa_for_arch,
    render_prompt,
    template_names,
    template_version,
)
from prompts.render import MAX_ATTEMPTS_SHOWN, MAX_DIAGNOSTICS_SHOWN, _environment

SOURCE = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.relu(a + b)


def get_inputs():
    return [torch.randn(1024), torch.randn(1024)]


def get_init_inputs():
    return []
"""

PREVIOUS = """import torch


class ModelNew(torch.nn.Module):

    def forward(self, a, b):
        return a  # line 7
"""


@pytest.fixture
def problem() -> Problem:
    return Problem(name="relu_add", source=SOURCE, level=1, problem_id=7)


def _verdict(outcome: Outcome = Outcome.MISMATCH) -> Verdict:
    return Verdict(
        outcome=outcome,
        message="output differs from the reference at 512 of 1024 elements",
        device="NVIDIA H100 80GB HBM3",
        draws=[
            DrawError(draw=0, max_abs_error=1.25, mean_abs_error=0.0412, max_rel_error=3.5, passed=False),
            DrawError(draw=1, max_abs_error=None, mean_abs_error=None, passed=True),
        ],
        candidate_timing=Timing(
            median_ms=0.0123, p10_ms=0.0119, p90_ms=0.0131, trials=50, method="cuda_events"
        ),
        eager_timing=Timing(median_ms=0.0246, trials=50, method="cuda_events"),
        speedup_vs_eager=2.0,
        diagnostics=[Diagnostic(code="verify.mismatch", message="first bad index 512", source="verify")],
    )


def _full(problem: Problem, target: Target, step: Step) -> PromptInput:
    return PromptInput(
        problem=problem,
        target=target,
        step=step,
        arch="sm_90",
        device="NVIDIA H100 80GB HBM3",
        context=[
            Hit(
                source="ptx-basics.md",
                start_line=74,
                end_line=92,
                score=3.2,
                text="ld.param.u64 %rd1, [p_in];\ncvta.to.global.u64 %rd2, %rd1;",
                heading="PTX basics > Parameter loading and addressing",
            )
        ],
        attempts=[
            AttemptSummary(turn=1, outcome="compile_error", summary="ptxas: Unknown symbol '%r9'"),
            AttemptSummary(turn=2, outcome="mismatch", summary="max abs error 1.25"),
        ],
        previous_code=PREVIOUS,
        diagnostics=[
            Diagnostic(
                code="ptxas.error",
                message="Unknown symbol '%r9'",
                file="kernel.ptx",
                line=12,
                hint="declare it with .reg",
                source="ptxas",
            )
        ],
        verdict=_verdict(),
        notes=["Use 256 threads per block.", "  "],
    )


@pytest.mark.parametrize("target", list(Target))
@pytest.mark.parametrize("step", list(Step))
def test_every_step_renders_for_every_target(problem: Problem, target: Target, step: Step) -> None:
    for inp in (_full(problem, target, step), PromptInput(problem=problem, target=target, step=step)):
        rendered = render_prompt(inp)
        assert isinstance(rendered, RenderedPrompt)
        assert rendered.template == f"{step.value}.j2"
        if target == Target.TT_METAL:  # a project of C++ files replaces the Python-module contract
            assert "class ModelNew" not in rendered.system and "## Reply format" not in rendered.system
            assert "project" in rendered.system and "CMakeLists.txt" in rendered.system
        else:
            assert "class ModelNew(torch.nn.Module)" in rendered.system
            assert "## Reply format" in rendered.system
        assert SOURCE.rstrip() in rendered.user
        assert "## Task" in rendered.user
        assert rendered.system.endswith("\n") and not rendered.system.endswith("\n\n")
        assert "\n\n\n" not in rendered.user.replace(SOURCE.rstrip(), "").replace(PREVIOUS.rstrip(), "")
        assert f"{step.value}.j2@" in rendered.version
        assert f"targets/{target.value}.j2@" in rendered.version


def test_missing_variables_fail_loudly() -> None:
    env = _environment()
    assert env.undefined is jinja2.StrictUndefined
    checked = 0
    for name in template_names():
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, name)
        if not meta.find_undeclared_variables(env.parse(source)):
            continue  # e.g. the tt-metal guide: static text
        with pytest.raises(jinja2.UndefinedError):
            env.get_template(name).render({})
        checked += 1
    assert checked >= 10


def test_every_template_declares_a_version() -> None:
    names = template_names()
    for required in (
        "system.j2",
        "propose.j2",
        "fix_compile.j2",
        "fix_mismatch.j2",
        "optimize.j2",
        "_problem.j2",
        "_context.j2",
        "_attempts.j2",
        "targets/ptx.j2",
        "targets/cuda.j2",
        "targets/triton.j2",
        "targets/tt-metal.j2",
    ):
        assert required in names
    for name in names:
        assert re.fullmatch(r"\d+", template_version(name))


def test_version_lists_partials(problem: Problem) -> None:
    rendered = render_prompt(PromptInput(problem=problem, target=Target.CUDA, step=Step.FIX_COMPILE))
    parts = rendered.version.split()
    assert parts[0].startswith("fix_compile.j2@")
    assert any(p.startswith("_problem.j2@") for p in parts)
    assert any(p.startswith("_diagnostics.j2@") for p in parts)
    assert len(parts) == len(set(parts))


def test_context_citations_appear(problem: Problem) -> None:
    rendered = render_prompt(_full(problem, Target.PTX, Step.PROPOSE))
    assert 'source="ptx-basics.md:74-92"' in rendered.user
    assert 'section="PTX basics > Parameter loading and addressing"' in rendered.user
    assert "cvta.to.global.u64 %rd2, %rd1;" in rendered.user


def test_attempts_and_notes_appear(problem: Problem) -> None:
    rendered = render_prompt(_full(problem, Target.TRITON, Step.FIX_MISMATCH))
    assert "- turn 1: compile_error: ptxas: Unknown symbol '%r9'" in rendered.user
    assert "- turn 2: mismatch: max abs error 1.25" in rendered.user
    assert "## Instructions from the user" in rendered.user
    assert "- Use 256 threads per block." in rendered.user
    assert "- \n" not in rendered.user  # blank notes are dropped


def test_sections_are_absent_without_data(problem: Problem) -> None:
    rendered = render_prompt(PromptInput(problem=problem, target=Target.TRITON, step=Step.PROPOSE))
    for heading in ("## Reference notes", "## Earlier attempts", "## Instructions from the user"):
        assert heading not in rendered.user


def test_fix_compile_shows_diagnostics_and_exact_code(problem: Problem) -> None:
    rendered = render_prompt(_full(problem, Target.PTX, Step.FIX_COMPILE))
    assert "kernel.ptx:12: error [ptxas.error] Unknown symbol '%r9'" in rendered.user
    assert "hint: declare it with .reg" in rendered.user
    # the code keeps its exact lines (blank lines included) so diagnostics' line numbers still match
    assert "```python\n" + PREVIOUS.rstrip() + "\n```" in rendered.user


def test_fix_compile_caps_diagnostics(problem: Problem) -> None:
    many = [
        Diagnostic(code="ptxas.error", message=f"error number {i}") for i in range(MAX_DIAGNOSTICS_SHOWN + 7)
    ]
    inp = PromptInput(problem=problem, target=Target.PTX, step=Step.FIX_COMPILE, diagnostics=many)
    user = render_prompt(inp).user
    assert f"error number {MAX_DIAGNOSTICS_SHOWN - 1}" in user
    assert f"error number {MAX_DIAGNOSTICS_SHOWN}\n" not in user
    assert "(7 more not shown" in user


def test_attempts_are_capped(problem: Problem) -> None:
    attempts = [AttemptSummary(turn=i, outcome="mismatch", summary=f"try {i}") for i in range(1, 11)]
    user = render_prompt(
        PromptInput(problem=problem, target=Target.CUDA, step=Step.PROPOSE, attempts=attempts)
    ).user
    assert f"({10 - MAX_ATTEMPTS_SHOWN} older attempts not shown.)" in user
    assert "- turn 1: mismatch" not in user
    assert "- turn 10: mismatch: try 10" in user


def test_fix_mismatch_shows_the_verdict(problem: Problem) -> None:
    user = render_prompt(_full(problem, Target.CUDA, Step.FIX_MISMATCH)).user
    assert "**mismatch**" in user
    assert "on NVIDIA H100 80GB HBM3" in user
    assert "output differs from the reference at 512 of 1024 elements" in user
    assert "- draw 0: FAILED; max abs error 1.25, mean abs error 0.0412, max rel error 3.5" in user
    assert "- draw 1: passed; max abs error n/a" in user
    assert "verify.mismatch" in user
    assert "tail handling" in user


@pytest.mark.parametrize(
    ("outcome", "phrase"),
    [
        (Outcome.RUNTIME_ERROR, "illegal memory accesses"),
        (Outcome.TIMEOUT, "did not finish in time"),
        (Outcome.WRONG_SHAPE, "exactly the reference's shapes and dtypes"),
        (Outcome.WRONG_DTYPE, "exactly the reference's shapes and dtypes"),
        (Outcome.HACK_SUSPECTED, "not computed by your kernels"),
    ],
)
def test_fix_mismatch_advice_follows_the_outcome(problem: Problem, outcome: Outcome, phrase: str) -> None:
    inp = PromptInput(problem=problem, target=Target.PTX, step=Step.FIX_MISMATCH, verdict=_verdict(outcome))
    assert phrase in render_prompt(inp).user


def test_optimize_shows_timings(problem: Problem) -> None:
    user = render_prompt(_full(problem, Target.TRITON, Step.OPTIMIZE)).user
    assert "median 0.0123 ms (p10 0.0119 ms, p90 0.0131 ms) over 50 trials, cuda_events" in user
    assert "PyTorch eager reference: median 0.0246 ms" in user
    assert "speedup over eager: 2x" in user
    assert "faster version that stays correct" in user
    bare = render_prompt(PromptInput(problem=problem, target=Target.TRITON, step=Step.OPTIMIZE)).user
    assert "no timings were recorded" in bare


def test_code_with_fences_gets_a_longer_fence(problem: Problem) -> None:
    code = 'DOC = """\n```python\nx = 1\n```\n"""\nclass ModelNew: ...\n'
    user = render_prompt(
        PromptInput(problem=problem, target=Target.CUDA, step=Step.FIX_COMPILE, previous_code=code)
    ).user
    assert "````python\n" + code.rstrip() + "\n````" in user


def test_target_guides_carry_their_conventions(problem: Problem) -> None:
    def system(target: Target, arch: str | None = None) -> str:
        return render_prompt(PromptInput(problem=problem, target=target, step=Step.PROPOSE, arch=arch)).system

    ptx = system(Target.PTX, "sm_90")
    for needle in (
        "load_ptx(PTX).get_function(",
        ".version 7.8",
        ".target sm_90",
        ".address_size 64",
        "cvta.to.global.u64",
        "mad.lo.s32",
        "@%p1 bra",
        ".reg",
        "shared_mem=0",
    ):
        assert needle in ptx
    default = system(Target.PTX)
    assert ".version 7.0" in default and ".target sm_80" in default
    cuda = system(Target.CUDA)
    for needle in (
        'extern "C" __global__',
        "load_cuda(SRC)",
        "__restrict__",
        "grid-stride",
        "__syncthreads()",
    ):
        assert needle in cuda
    triton = system(Target.TRITON)
    for needle in ("@triton.jit", "tl.constexpr", "mask", "tl.program_id", "@triton.autotune", "float32"):
        assert needle in triton
    tt = system(Target.TT_METAL)
    for needle in ("void kernel_main()", "TensorAccessor", "circular buffers", "CMakeLists.txt", "reader"):
        assert needle in tt


@pytest.mark.parametrize("target", [Target.PTX, Target.CUDA, Target.TRITON])
def test_target_examples_are_complete_modules(problem: Problem, target: Target) -> None:
    system = render_prompt(
        PromptInput(problem=problem, target=target, step=Step.PROPOSE, arch="sm_90")
    ).system
    match = re.search(r"```python\n(.*?)\n```", system, re.DOTALL)
    assert match is not None
    tree = ast.parse(match.group(1))
    assert any(isinstance(node, ast.ClassDef) and node.name == "ModelNew" for node in tree.body)


@pytest.mark.parametrize("target", list(Target))
def test_propose_prompt_is_compact(problem: Problem, target: Target) -> None:
    rendered = render_prompt(
        PromptInput(problem=problem, target=target, step=Step.PROPOSE, arch="sm_90", device="NVIDIA H100")
    )
    approx_tokens = (len(rendered.system) + len(rendered.user)) / 3.5  # conservative chars-per-token
    assert approx_tokens < 2500


@pytest.mark.parametrize(
    ("arch", "version"),
    [
        ("sm_80", "7.0"),
        ("sm_90", "7.8"),
        ("sm90", "7.8"),
        ("9.0", "7.8"),
        ("compute_90", "7.8"),
        ("sm_90a", "8.0"),
        ("sm_100", "8.6"),
        ("sm_120", "8.7"),
        ("sm_999", None),
        ("banana", None),
        (None, None),
    ],
)
def test_ptx_isa_for_arch(arch: str | None, version: str | None) -> None:
    assert ptx_isa_for_arch(arch) == version


def test_unknown_arch_falls_back_to_a_portable_header(problem: Problem) -> None:
    system = render_prompt(
        PromptInput(problem=problem, target=Target.PTX, step=Step.PROPOSE, arch="sm_110")
    ).system
    assert ".target sm_80" in system and ".version 7.0" in system
    assert "(sm_110)" in system


def test_rendered_prompt_has_no_template_syntax_left(problem: Problem) -> None:
    for target in Target:
        for step in Step:
            rendered = render_prompt(_full(problem, target, step))
            for text in (rendered.system, rendered.user):
                assert "{{" not in text and "{%" not in text and "{#" not in text


def test_severity_is_rendered(problem: Problem) -> None:
    warning = Diagnostic(code="check.style", message="unused import", severity=Severity.WARNING)
    user = render_prompt(
        PromptInput(problem=problem, target=Target.CUDA, step=Step.FIX_COMPILE, diagnostics=[warning])
    ).user
    assert "warning [check.style] unused import" in user


def test_verdict_diagnostics_are_not_repeated(problem: Problem) -> None:
    verdict = _verdict()
    inp = PromptInput(
        problem=problem,
        target=Target.CUDA,
        step=Step.FIX_MISMATCH,
        verdict=verdict,
        diagnostics=[
            *verdict.diagnostics,
            Diagnostic(code="check.note", message="slow path", severity=Severity.INFO),
        ],
    )
    user = render_prompt(inp).user
    assert user.count("first bad index 512") == 1
    assert "Other diagnostics:" in user and "slow path" in user


def test_reference_attributes_stay_well_formed(problem: Problem) -> None:
    hit = Hit(
        source="docs/driver.md",
        start_line=3,
        end_line=9,
        score=1.0,
        text="cuModuleLoadData loads PTX.",
        collection="user-docs",
        heading='Loading > extern "C" names',
    )
    user = render_prompt(
        PromptInput(problem=problem, target=Target.CUDA, step=Step.PROPOSE, context=[hit])
    ).user
    assert (
        '<reference id="1" source="docs/driver.md:3-9" collection="user-docs" '
        "section=\"Loading > extern 'C' names\">" in user
    )
