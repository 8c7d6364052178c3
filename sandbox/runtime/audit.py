"""Audit worker: how weak or broken is each problem? (standard library + torch only)

    python -m sandbox.runtime.audit      # reads one job per line, answers one line per job

For every problem it draws a few input sets, runs the reference, and asks what trivial "kernels" would
pass a verifier that compares outputs: all zeros, returning an input unchanged, returning the same output
whatever the inputs. It also records whether the reference crashes, is nondeterministic, produces
NaN/Inf, depends on train/eval mode (dropout, batch norm), takes integer inputs, or only ever sees
non-negative inputs — and whether signed inputs remove a weakness. The code run here is the problem's
and our own trivial answers, never a candidate's.

Job:    {"problem": path, "key": str, "seeds": [int, ...], "device": "cpu"|"cuda"}
Answer: {"event": "audited", "key": str, "findings": [str, ...], "signed": {"findings": [...]} | null,
         "facts": {...}, "seconds": float}   or {"event": "error", "key": ..., "message": ...}
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sandbox.runtime.protocol import Channel

__all__ = ["audit_problem", "main"]


def _passes(expected: list[Any], actual: object) -> bool:
    from sandbox.runtime.compare import compare_outputs

    return compare_outputs(expected, actual).passed


class _Trivial:
    """Tracks, draw by draw, which trivial answers would pass (inputs are not kept between draws)."""

    def __init__(self) -> None:
        self.zeros = True
        self.identity = True
        self.outputs: list[list[Any]] = []

    def add(self, inputs: list[Any], out: list[Any]) -> None:
        import torch

        self.zeros = self.zeros and _passes(out, [torch.zeros_like(t) for t in out])
        matching = [
            x
            for x in inputs
            if isinstance(x, torch.Tensor)
            and len(out) == 1
            and x.shape == out[0].shape
            and x.dtype == out[0].dtype
        ]
        self.identity = self.identity and any(_passes(out, [x]) for x in matching)
        self.outputs.append(out)

    def findings(self) -> list[str]:
        found = [
            name for name, flag in (("zeros_pass", self.zeros), ("identity_pass", self.identity)) if flag
        ]
        outs = self.outputs
        if len(outs) > 1 and all(_passes(out, outs[0]) for out in outs[1:]):
            found.append("input_independent")
        return found


def audit_problem(job: dict[str, Any]) -> dict[str, Any]:
    """Audit one problem (see the module docstring); raises when the reference itself fails."""
    import torch

    from sandbox.runtime.compare import compare_outputs, flatten_outputs
    from sandbox.runtime.inputs import signed as signed_input
    from sandbox.runtime.loader import import_file

    started = time.monotonic()
    device = torch.device(job.get("device", "cpu"))
    problem = import_file(Path(job["problem"]), f"kernelwright_audit_{abs(hash(job['key']))}")
    torch.manual_seed(0)
    with device:
        model = problem.Model(*problem.get_init_inputs()).to(device).eval()

    def draw(seed: int, signed: bool = False) -> list[Any]:
        torch.manual_seed(seed)
        with device:
            inputs = [x.to(device) if isinstance(x, torch.Tensor) else x for x in problem.get_inputs()]
        return [signed_input(x) for x in inputs] if signed else inputs

    def run(inputs: list[Any]) -> list[Any]:
        out = flatten_outputs(model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]))
        if out is None:
            raise TypeError("Model.forward does not return tensors")
        return out

    findings: list[str] = []
    facts: dict[str, Any] = {}
    trivial = _Trivial()
    nonnegative = True
    with torch.no_grad():
        for number, seed in enumerate(int(s) for s in job["seeds"]):
            inputs = draw(seed)
            first, second = run(inputs), run(inputs)
            if not compare_outputs(first, second).passed and "nondeterministic" not in findings:
                findings.append("nondeterministic")
            del second
            nonfinite = any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in first)
            if nonfinite and "reference_nonfinite" not in findings:
                findings.append("reference_nonfinite")
            tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
            floats = [x for x in tensors if x.is_floating_point() and x.numel()]
            nonnegative = nonnegative and bool(floats) and all(float(x.min()) >= 0 for x in floats)
            if number == 0:
                facts["inputs"] = [
                    {"shape": list(x.shape), "dtype": str(x.dtype).removeprefix("torch.")} for x in tensors
                ]
                facts["outputs"] = [
                    {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for t in first
                ]
                if any(not x.is_floating_point() for x in tensors):
                    findings.append("integer_inputs")
                model.train()
                trained = run(inputs)
                model.eval()
                if not compare_outputs(first, trained).passed:
                    findings.append("mode_dependent")
                del trained
            trivial.add(inputs, first)
            del inputs, tensors, floats
        if nonnegative:
            findings.append("nonnegative_inputs")
        findings += trivial.findings()
        signed = None
        if nonnegative:
            del trivial
            signed_trivial = _Trivial()
            for seed in (int(s) for s in job["seeds"]):
                inputs = draw(seed, signed=True)
                signed_trivial.add(inputs, run(inputs))
                del inputs
            signed = {"findings": signed_trivial.findings()}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    return {
        "event": "audited",
        "key": job["key"],
        "findings": findings,
        "signed": signed,
        "facts": facts,
        "seconds": time.monotonic() - started,
    }


def main() -> int:
    channel = Channel.take_over_stdio()
    while True:
        try:
            job = channel.receive()
        except EOFError:
            return 0
        try:
            channel.send(**audit_problem(job))
        except Exception as exc:  # noqa: BLE001 - a broken reference is a finding, not a worker failure
            oom = isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            channel.send(
                event="error",
                key=job.get("key"),
                oom=oom,
                message=f"{type(exc).__name__}: {exc}"[:2000],
                traceback="".join(traceback.format_exception(exc))[-3000:],
            )
        finally:
            _release_memory()


def _release_memory() -> None:
    """Drop what the last problem left behind, so one large problem does not starve the next."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
