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


def _signed(value: Any) -> Any:
    import torch

    if (
        isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and value.numel()
        and float(value.min()) >= 0
    ):
        return value * 2 - 1
    return value


def _passes(expected: list[Any], actual: object) -> bool:
    from sandbox.runtime.compare import compare_outputs

    return compare_outputs(expected, actual).passed


def _trivial_findings(draws: list[list[Any]], outputs: list[list[Any]]) -> list[str]:
    """Which trivial answers pass on every draw."""
    import torch

    findings: list[str] = []
    if all(_passes(out, [torch.zeros_like(t) for t in out]) for out in outputs):
        findings.append("zeros_pass")
    identity = True
    for inputs, out in zip(draws, outputs, strict=True):
        matching = [
            x
            for x in inputs
            if isinstance(x, torch.Tensor)
            and len(out) == 1
            and x.shape == out[0].shape
            and x.dtype == out[0].dtype
        ]
        if not any(_passes(out, [x]) for x in matching):
            identity = False
            break
    if identity:
        findings.append("identity_pass")
    if len(outputs) > 1 and all(_passes(out, outputs[0]) for out in outputs[1:]):
        findings.append("input_independent")
    return findings


def audit_problem(job: dict[str, Any]) -> dict[str, Any]:
    """Audit one problem (see the module docstring); raises when the reference itself fails."""
    import torch

    from sandbox.runtime.compare import compare_outputs, flatten_outputs
    from sandbox.runtime.loader import import_file

    started = time.monotonic()
    device = torch.device(job.get("device", "cpu"))
    problem = import_file(Path(job["problem"]), f"kernelwright_audit_{abs(hash(job['key']))}")
    torch.manual_seed(0)
    with device:
        model = problem.Model(*problem.get_init_inputs()).to(device).eval()
    findings: list[str] = []
    facts: dict[str, Any] = {}
    draws: list[list[Any]] = []
    outputs: list[list[Any]] = []
    with torch.no_grad():
        for seed in job["seeds"]:
            torch.manual_seed(int(seed))
            with device:
                inputs = [x.to(device) if isinstance(x, torch.Tensor) else x for x in problem.get_inputs()]
            first = flatten_outputs(model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]))
            second = flatten_outputs(
                model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
            )
            if first is None or second is None:
                raise TypeError("Model.forward does not return tensors")
            first = [t.to("cpu") for t in first]
            if (
                not compare_outputs(first, [t.to("cpu") for t in second]).passed
                and "nondeterministic" not in findings
            ):
                findings.append("nondeterministic")
            nonfinite = any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in first)
            if nonfinite and "reference_nonfinite" not in findings:
                findings.append("reference_nonfinite")
            draws.append(inputs)
            outputs.append(first)
        tensors = [x for x in draws[0] if isinstance(x, torch.Tensor)]
        facts["inputs"] = [
            {"shape": list(x.shape), "dtype": str(x.dtype).removeprefix("torch.")} for x in tensors
        ]
        facts["outputs"] = [
            {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")} for t in outputs[0]
        ]
        if any(not x.is_floating_point() for x in tensors):
            findings.append("integer_inputs")
        floats = [x for x in tensors if x.is_floating_point() and x.numel()]
        nonnegative = bool(floats) and all(float(x.min()) >= 0 for x in floats)
        if nonnegative:
            findings.append("nonnegative_inputs")
        findings += _trivial_findings(draws, outputs)
        model.train()
        trained = flatten_outputs(model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in draws[0]]))
        model.eval()
        if trained is not None and not compare_outputs(outputs[0], trained).passed:
            findings.append("mode_dependent")
        signed = None
        if nonnegative:
            signed_draws = [[_signed(x) for x in inputs] for inputs in draws]
            signed_outputs = []
            for inputs in signed_draws:
                out = flatten_outputs(model(*inputs))
                signed_outputs.append(out if out is not None else [])
            signed = {"findings": _trivial_findings(signed_draws, signed_outputs)}
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
            channel.send(
                event="error",
                key=job.get("key"),
                message=f"{type(exc).__name__}: {exc}"[:2000],
                traceback="".join(traceback.format_exception(exc))[-3000:],
            )


if __name__ == "__main__":
    sys.exit(main())
