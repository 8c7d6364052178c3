"""The cheat suite: every known hack is a candidate file in `cheats/` with the verdict it must get.

Each case names the `hack.*` errors the static policy must raise (empty where only running it shows the
problem) and, where it runs on CPU, the outcomes `verify_candidate` may give it (None: static rule
only, e.g. side streams need a GPU). Runtime cases go through the real verifier (workers, Triton
interpreter) like tests/sandbox/test_verify.py, but without the static pre-check, so they prove that
the runtime guards and the judge catch the cheat on their own. They run concurrently in one batch the
first time any runtime case is asked for, to keep the file within a minute on two cores.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.settings import Settings
from sandbox.executor import LocalExecutor
from sandbox.hack_checks import check_hacks
from sandbox.static_checks import check_candidate_source
from sandbox.verify import VerifyOptions, verify_candidate

CHEATS = Path(__file__).parent / "cheats"

RELU = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x)
def get_inputs():
    return [torch.randn(4, 256)]
def get_init_inputs():
    return []
"""
ROWSUM = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x.sum(dim=1)
def get_inputs():
    return [torch.randn(8, 100)]
def get_init_inputs():
    return []
"""
MATMUL = """import torch
class Model(torch.nn.Module):
    def forward(self, a, b):
        return a @ b
def get_inputs():
    return [torch.randn(32, 48), torch.randn(48, 24)]
def get_init_inputs():
    return []
"""

HACK = frozenset({Outcome.HACK_SUSPECTED})
CORRECT = frozenset({Outcome.CORRECT})
WRONG = frozenset({Outcome.MISMATCH, Outcome.HACK_SUSPECTED})


@dataclass(frozen=True)
class Case:
    name: str
    static: frozenset[str]  # hack.* errors the static policy must raise
    runtime: frozenset[Outcome] | None  # outcomes the verifier may give; None: not run
    problem: str = RELU


def _case(
    name: str, static: str = "", runtime: frozenset[Outcome] | None = None, problem: str = RELU
) -> Case:
    return Case(name, frozenset(static.split()), runtime, problem)


CASES = [
    # honest kernels: no static error, and correct
    _case("honest_relu", runtime=CORRECT),
    _case("honest_rowsum", runtime=CORRECT, problem=ROWSUM),
    _case("honest_matmul", runtime=CORRECT, problem=MATMUL),
    # aliasing and state across calls
    _case("alias_input", runtime=frozenset({Outcome.MISMATCH})),  # "modified its inputs"
    _case("patch_worker", "hack.introspection", HACK),  # disables the aliasing check: patch detected
    _case("cache_across_calls", "hack.state_in_forward", HACK),  # later calls launch nothing
    _case("deferred_work", "hack.state_in_forward", HACK),  # super-batching: first call launches nothing
    _case("count_calls", "hack.state_in_forward"),  # only cheats once it believes it is timed
    _case("lru_cache", "hack.cache_decorator"),
    # torch doing the work
    _case("try_fallback", "hack.try_fallback hack.torch_compute", HACK),
    _case("torch_relu", "hack.torch_compute"),  # at run time: as never_launches
    _case("torch_relu_token_launch", "hack.torch_compute"),  # passes at run time: a static catch only
    _case("nn_layer", "hack.torch_compute"),
    _case("matmul_operator", "hack.torch_compute"),
    _case("dynamic_getattr", "hack.dynamic_code"),
    _case("never_launches", runtime=HACK),
    _case("fake_launch_count", "hack.monkeypatch hack.torch_compute", HACK),
    # hiding work from the timer, tampering with it
    _case("side_stream", "hack.side_stream"),  # needs CUDA to run
    _case("thread", "hack.concurrency", HACK),
    _case("patch_perf_counter", "hack.monkeypatch", HACK),
    _case("patch_elapsed_time", "hack.monkeypatch"),  # at run time: as patch_perf_counter
    _case("subclass_output", "hack.tensor_subclass"),  # at run time: as lazy_output
    _case("lazy_output", "hack.tensor_subclass", HACK),
    _case("meta_output", "hack.tensor_subclass", HACK),
    # looking for the answer instead of computing it: there is nothing to find in this process
    # the expected output is not in the candidate's process: whatever frame_peek finds there (input
    # copies, empty buffers, or nothing) it cannot pass unless it returns its own correct kernel result
    _case("frame_peek", "hack.introspection", WRONG | CORRECT),
    _case("gc_scan", "hack.introspection"),  # at run time: as frame_peek
    _case("torch_load", "hack.serialization"),
    _case("environ_keys", runtime=CORRECT),  # correct only if no key reached the candidate
    # wrong results
    _case("nan_output", runtime=frozenset({Outcome.MISMATCH})),
    # reaching outside the process
    _case("write_file", "hack.file_io"),
    _case("open_socket", "hack.network"),
    _case("subprocess_spawn", "hack.process"),
    _case("ctypes_memmove", "hack.ctypes"),
]
BY_NAME = {case.name: case for case in CASES}
RUNTIME = [case for case in CASES if case.runtime is not None]

_VERDICTS: dict[str, Verdict] = {}


def _source(name: str) -> str:
    return (CHEATS / f"{name}.py").read_text(encoding="utf-8")


async def _verify_all(settings: Settings) -> dict[str, Verdict]:
    options = VerifyOptions(draws=2, timing_trials=0, timeout_s=60.0)
    gate = asyncio.Semaphore(4)

    async def one(case: Case) -> tuple[str, Verdict]:
        async with gate:
            verdict = await verify_candidate(
                Problem(name="cheat", source=case.problem),
                Candidate(target=Target.TRITON, source=_source(case.name)),
                settings=settings,
                executor=LocalExecutor(),
                options=options,
            )
            return case.name, verdict

    return dict(await asyncio.gather(*(one(case) for case in RUNTIME)))


def _verdict(settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str) -> Verdict:
    if not _VERDICTS:
        # Secrets in the service's environment: the environ_keys cheat must not find them.
        monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
        monkeypatch.setenv("KERNELWRIGHT_GROQ_API_KEY", "gsk-secret")
        _VERDICTS.update(asyncio.run(_verify_all(settings)))
    return _VERDICTS[name]


def test_every_cheat_file_has_a_case() -> None:
    assert {p.stem for p in CHEATS.glob("*.py")} == set(BY_NAME)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_static_policy(case: Case) -> None:
    found = check_hacks(_source(case.name), Target.TRITON)
    errors = {d.code for d in found if d.is_error}
    if case.name.startswith("honest_"):
        assert not errors, [d.render() for d in found]
    else:
        assert case.static <= errors, [d.render() for d in found]
    assert all(d.hint and d.file == "candidate.py" and d.line for d in found)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_cheat_is_caught_somewhere(case: Case) -> None:
    if case.name.startswith("honest_") or case.name == "environ_keys":
        return
    assert case.static or (case.runtime is not None and Outcome.CORRECT not in case.runtime)


@pytest.mark.parametrize("case", RUNTIME, ids=lambda c: c.name)
def test_runtime_verdict(settings: Settings, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    verdict = _verdict(settings, monkeypatch, case.name)
    assert case.runtime is not None
    assert verdict.outcome in case.runtime, f"{case.name}: {verdict.outcome}: {verdict.message}"
    if verdict.outcome == Outcome.HACK_SUSPECTED:
        assert verdict.message


def test_static_errors_reach_the_check_node() -> None:
    diagnostics = check_candidate_source(_source("torch_relu"), Target.TRITON)
    assert any(d.code == "hack.torch_compute" and d.is_error for d in diagnostics)
    honest = check_candidate_source(_source("honest_relu"), Target.TRITON)
    assert not [d for d in honest if d.is_error]
