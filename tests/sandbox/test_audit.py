"""The problem audit on CPU, with small problems that have each known flaw."""

from __future__ import annotations

import asyncio

from kernelwright.domain import Problem
from kernelwright.settings import Settings
from sandbox.audit import audit_problems
from sandbox.executor import LocalExecutor

TEMPLATE = """import torch
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
    def forward(self, x):
        return FORWARD
def get_inputs():
    return [INPUTS]
def get_init_inputs():
    return []
"""


def _problem(name: str, forward: str, inputs: str = "torch.randn(64, 64)") -> Problem:
    return Problem(name=name, source=TEMPLATE.replace("FORWARD", forward).replace("INPUTS", inputs))


def test_audit_flags_each_flaw_and_keeps_going(settings: Settings) -> None:
    problems = [
        _problem("sound", "torch.tanh(x) * 2"),
        _problem("relu_on_rand", "torch.relu(x)", "torch.rand(64, 64)"),
        _problem("zeros", "x - x"),
        _problem("constant", "torch.ones(3)"),
        _problem("crashes", "x @ torch.ones(3, 3)"),
        _problem("hangs", "[None for _ in iter(int, 1)]"),
        _problem("noisy", "x + torch.randn_like(x)"),
        _problem("dropout", "self.drop(x) + torch.tanh(x)"),
        _problem("labels", "x.float() * 2", "torch.randint(0, 10, (64,))"),
    ]
    report = asyncio.run(
        audit_problems(problems, settings=settings, executor=LocalExecutor(), draws=3, timeout_s=20)
    )
    by_name = {p.name: p for p in report.problems}
    assert by_name["sound"].decision == "keep" and by_name["sound"].findings == []
    relu = by_name["relu_on_rand"]
    assert {"nonnegative_inputs", "identity_pass"} <= set(relu.findings)
    assert relu.decision == "fix" and relu.fixes == ["signed_inputs"]
    assert by_name["zeros"].decision == "exclude" and "zeros_pass" in by_name["zeros"].findings
    assert "input_independent" in by_name["constant"].findings
    assert by_name["crashes"].findings == ["reference_crashes"] and by_name["crashes"].error
    assert by_name["hangs"].findings == ["reference_timeout"]
    assert "nondeterministic" in by_name["noisy"].findings and by_name["noisy"].decision == "exclude"
    assert "mode_dependent" in by_name["dropout"].findings and by_name["dropout"].decision == "keep"
    assert "integer_inputs" in by_name["labels"].findings
    assert report.counts()["exclude"] == 5


def test_curated_suite_from_reports(settings: Settings) -> None:
    from sandbox.audit import curate

    problems = [
        _problem("relu_on_rand", "torch.relu(x)", "torch.rand(64, 64)"),
        _problem("zeros", "x - x"),
        _problem("sound", "torch.tanh(x)"),
    ]
    report = asyncio.run(audit_problems(problems, settings=settings, executor=LocalExecutor(), draws=2))
    suite = curate([report])
    assert suite.fixes == {"relu_on_rand": ["signed_inputs"]}
    assert list(suite.exclude) == ["zeros"] and suite.exclude["zeros"]
    assert suite.admits(problems[2]) and not suite.admits(problems[1])
    assert suite.transforms_for(problems[0]) == ("signed_inputs",)


def test_signed_inputs_fix_makes_the_identity_kernel_fail(settings: Settings) -> None:
    from kernelwright.domain import Candidate, Outcome, Target
    from sandbox.verify import VerifyOptions, verify_candidate

    problem = _problem("relu_on_rand", "torch.relu(x)", "torch.rand(64, 64)")
    identity = """import torch, triton
import triton.language as tl

@triton.jit
def copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)

class ModelNew(torch.nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        copy[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
        return y
"""
    candidate = Candidate(target=Target.TRITON, source=identity)

    def outcome(transforms: tuple[str, ...]) -> Outcome:
        options = VerifyOptions(draws=2, timing_trials=0, input_transforms=transforms)
        return asyncio.run(
            verify_candidate(problem, candidate, settings=settings, executor=LocalExecutor(), options=options)
        ).outcome

    assert outcome(()) == Outcome.CORRECT  # the weakness the audit reports
    assert outcome(("signed_inputs",)) == Outcome.MISMATCH  # and the curated fix closes it
