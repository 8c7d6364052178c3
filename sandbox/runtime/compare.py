"""Compare candidate outputs with reference outputs (standard library + torch only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["TOLERANCES", "Comparison", "compare_outputs", "flatten_outputs", "judge_note"]

_CHUNK = 1 << 25
_FUSED_MIN_ELEMENTS = 1 << 20  # below this the torch path's one chunk is cheap enough
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_fused_unavailable: list[str] = []  # why the fused judge failed in this process (its first reason)

# (atol, rtol, max relative L2 error) per dtype. A draw passes when every element is within
# atol + rtol*|ref| (KernelBench's element test, 1e-2 for fp32 so tf32 tensor-core kernels pass) AND the
# relative L2 error ||out - ref|| / ||ref|| is under the last figure. The element test alone passes
# kernels that are wrong by a few percent wherever outputs are small (e.g. a softmax over 1000 columns
# whose padding lanes leak into the row sum: 1.5% off everywhere, yet within atol=1e-2).
TOLERANCES: dict[torch.dtype, tuple[float, float, float]] = {
    torch.float64: (1e-6, 1e-6, 1e-9),
    torch.float32: (1e-2, 1e-2, 2e-3),
    torch.float16: (1e-2, 1e-2, 5e-3),
    torch.bfloat16: (2e-2, 2e-2, 2e-2),
}


@dataclass
class Comparison:
    """The result of one draw. `kind` is None when it passed, else an outcome name."""

    passed: bool
    kind: str | None
    message: str
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    max_rel_error: float | None = None
    rel_l2_error: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten_outputs(value: object) -> list[torch.Tensor] | None:
    """A forward's result as a list of tensors, or None when it is something else."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list) and all(isinstance(v, torch.Tensor) for v in value):
        return list(value)
    return None


def compare_outputs(expected: list[torch.Tensor], actual: object) -> Comparison:
    """Shape, dtype, NaN/Inf and closeness checks of one draw, with error figures."""
    got = flatten_outputs(actual)
    if got is None:
        return Comparison(False, "wrong_shape", f"forward returned {type(actual).__name__}, not tensors")
    if len(got) != len(expected):
        return Comparison(
            False, "wrong_shape", f"forward returned {len(got)} tensors, expected {len(expected)}"
        )
    worst = Comparison(True, None, "ok", 0.0, 0.0, 0.0, 0.0)
    for index, (ref, out) in enumerate(zip(expected, got, strict=True)):
        label = f"output {index}" if len(expected) > 1 else "output"
        if tuple(out.shape) != tuple(ref.shape):
            return Comparison(
                False, "wrong_shape", f"{label} has shape {tuple(out.shape)}, expected {tuple(ref.shape)}"
            )
        if out.dtype != ref.dtype:
            return Comparison(False, "wrong_dtype", f"{label} has dtype {out.dtype}, expected {ref.dtype}")
        result = _closeness(ref, out.detach().to(ref.device), label)
        if not result.passed:
            return result
        worst = _worse(worst, result)
    return worst


def _closeness(ref: torch.Tensor, out: torch.Tensor, label: str) -> Comparison:
    if not ref.is_floating_point():
        equal = torch.equal(ref, out)
        mismatched = int((ref != out).sum())
        return Comparison(
            equal, None if equal else "mismatch", "ok" if equal else f"{label}: {mismatched} elements differ"
        )
    atol, rtol, max_rel_l2 = TOLERANCES.get(ref.dtype, (1e-2, 1e-2, 2e-3))
    figures = _fused(ref, out, atol, rtol) or _torch_figures(ref, out, atol, rtol)
    if figures["nonfinite_ref"] == 0 and figures["nonfinite_out"] > 0:
        return Comparison(
            False,
            "mismatch",
            f"{label} has {int(figures['nonfinite_out'])} NaN/Inf values where the reference has none",
        )
    max_abs, max_rel, sum_abs = figures["max_abs"], figures["max_rel"], figures["sum_abs"]
    sq_diff, sq_ref = figures["sq_diff"], figures["sq_ref"]
    elementwise = int(figures["violations"]) == 0
    count = ref.numel()
    mean_abs = sum_abs / count if count else 0.0
    rel_l2 = (sq_diff**0.5) / (sq_ref**0.5) if sq_ref > 0 else max_abs
    within = elementwise and rel_l2 <= max_rel_l2
    message = (
        "ok"
        if within
        else (
            f"{label} differs from the reference: max abs error {max_abs:.3g}, mean {mean_abs:.3g}, "
            f"relative L2 error {rel_l2:.3g} (tolerance atol={atol:g}, rtol={rtol:g}, "
            f"relative L2 at most {max_rel_l2:g})"
        )
    )
    return Comparison(within, None if within else "mismatch", message, max_abs, mean_abs, max_rel, rel_l2)


def judge_note() -> str | None:
    """Why large GPU outputs were judged by the slower torch path in this process; None if they were not.

    The verdicts are the same either way; only the time to a verdict differs, so the reason is reported
    (the reference worker puts it on its answers) instead of passing silently.
    """
    if not _fused_unavailable:
        return None
    return (
        f"the fused GPU judge could not run here ({_fused_unavailable[0]}); large outputs were compared "
        "by the slower torch path, with the same verdicts"
    )


def _fused(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float) -> dict[str, float] | None:
    """Figures from one fused CUDA kernel (large 16/32-bit GPU outputs); None where that does not apply."""
    if not ref.is_cuda or ref.dtype not in _FUSED_DTYPES or ref.numel() < _FUSED_MIN_ELEMENTS:
        return None
    if _fused_unavailable:  # it failed once here: the same compiler or driver trouble would recur
        return None
    try:
        from sandbox.runtime.compare_fused import fused_figures

        return fused_figures(ref, out, atol, rtol)
    except Exception as exc:  # noqa: BLE001 - no compiler or driver trouble: the torch path gives the same answer
        _fused_unavailable.append(f"{type(exc).__name__}: {exc}"[:300])
        return None


def _torch_figures(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float) -> dict[str, float]:
    # In chunks (outputs can hold billions of elements: KernelBench level 1 at full size), in float32 for
    # 32- and 16-bit outputs (float64 would double the memory traffic; rounding a difference to fp32
    # moves it by 6e-8 relative, far inside any tolerance) with float64 sums, and with the figures kept
    # on the device until the end: one synchronisation per output instead of several per chunk.
    flat_ref, flat_out = ref.reshape(-1), out.reshape(-1)
    work = torch.float64 if ref.dtype == torch.float64 else torch.float32
    maxima = torch.zeros(2, dtype=torch.float64, device=ref.device)  # max abs, max rel
    sums = torch.zeros(3, dtype=torch.float64, device=ref.device)  # abs, squared diff, squared ref
    violations = torch.zeros((), dtype=torch.int64, device=ref.device)
    for begin in range(0, flat_ref.numel(), _CHUNK):
        r = flat_ref[begin : begin + _CHUNK].to(work)
        o = flat_out[begin : begin + _CHUNK].to(work)
        finite = torch.isfinite(r)
        magnitude = r.abs().nan_to_num_(0.0)
        diff = (o - r).abs_().masked_fill_(~finite, 0.0)  # NaN where o is NaN and r finite: a violation
        bad = (diff <= magnitude * rtol + atol).logical_not_()
        # where the reference is Inf/NaN the candidate must match it exactly (NaN where it has NaN)
        bad |= ~finite & (r != o) & ~(r.isnan() & o.isnan())
        violations += bad.sum()
        chunk_max = torch.stack([diff.max(), (diff / magnitude.clamp_min(1e-12)).max()]).to(torch.float64)
        maxima = torch.maximum(maxima, chunk_max)
        sums += torch.stack(
            [
                diff.sum(dtype=torch.float64),
                diff.square().sum(dtype=torch.float64),
                r.masked_fill(~finite, 0.0).square().sum(dtype=torch.float64),
            ]
        )
    (max_abs, max_rel), (sum_abs, sq_diff, sq_ref) = maxima.tolist(), sums.tolist()
    finite_ref = torch.isfinite(flat_ref)
    nonfinite_ref = int((~finite_ref).sum())
    nonfinite_out = int((finite_ref & ~torch.isfinite(flat_out)).sum())
    return {
        "nonfinite_ref": float(nonfinite_ref),
        "nonfinite_out": float(nonfinite_out),
        "max_abs": max_abs,
        "max_rel": max_rel,
        "sum_abs": sum_abs,
        "sq_diff": sq_diff,
        "sq_ref": sq_ref,
        "violations": float(violations),
    }


def _worse(a: Comparison, b: Comparison) -> Comparison:
    return b if (b.max_abs_error or 0.0) > (a.max_abs_error or 0.0) else a
