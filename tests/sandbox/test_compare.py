"""The judge's closeness test: tolerances, relative L2, NaN/Inf rules and the error figures."""

from __future__ import annotations

import pytest
import torch

from sandbox.runtime import compare
from sandbox.runtime.compare import compare_outputs


@pytest.fixture
def ref() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(1000, 300)


def test_small_noise_passes_with_figures(ref: torch.Tensor) -> None:
    noise = 1e-4 * torch.randn_like(ref)
    result = compare_outputs([ref], ref + noise)
    assert result.passed
    assert result.max_abs_error == pytest.approx(float(noise.abs().max()), rel=1e-5)
    assert result.mean_abs_error == pytest.approx(float(noise.abs().double().mean()), rel=1e-4)
    expected_l2 = float(noise.double().norm() / ref.double().norm())
    assert result.rel_l2_error == pytest.approx(expected_l2, rel=1e-4)


def test_uniform_relative_error_within_rtol_fails_on_relative_l2(ref: torch.Tensor) -> None:
    result = compare_outputs([ref], ref * 1.015)  # inside atol+rtol where |ref| is small, 1.5% everywhere
    assert not result.passed
    assert result.kind == "mismatch"
    assert result.rel_l2_error == pytest.approx(0.015, rel=1e-4)


def test_one_element_off_fails_elementwise(ref: torch.Tensor) -> None:
    out = ref.clone()
    out[5, 5] += 1.0
    result = compare_outputs([ref], out)
    assert not result.passed
    assert result.max_abs_error == pytest.approx(1.0, rel=1e-5)


def test_nan_where_reference_is_finite_fails(ref: torch.Tensor) -> None:
    out = ref.clone()
    out[3, 4] = float("nan")
    assert not compare_outputs([ref], out).passed


def test_nonfinite_reference_must_be_matched_exactly(ref: torch.Tensor) -> None:
    special = ref.clone()
    special[0, 0], special[1, 1] = float("inf"), float("nan")
    assert compare_outputs([special], special.clone()).passed
    for index, value in (((1, 1), 0.0), ((0, 0), -float("inf")), ((0, 0), 1e30)):
        out = special.clone()
        out[index] = value
        assert not compare_outputs([special], out).passed, (index, value)


def test_half_and_double_use_their_tolerances(ref: torch.Tensor) -> None:
    half = ref.half()
    assert compare_outputs([half], (half.float() * 1.001).half()).passed
    double = ref.double()
    assert not compare_outputs([double], double + 1e-7).passed  # relative L2 bound 1e-9


def test_shape_dtype_and_type_errors(ref: torch.Tensor) -> None:
    assert compare_outputs([ref], ref[:10]).kind == "wrong_shape"
    assert compare_outputs([ref], ref.double()).kind == "wrong_dtype"
    assert compare_outputs([ref], "not a tensor").kind == "wrong_shape"
    assert compare_outputs([ref], [ref, ref]).kind == "wrong_shape"


def test_integer_outputs_must_be_equal() -> None:
    labels = torch.arange(10)
    assert compare_outputs([labels], labels.clone()).passed
    assert compare_outputs([labels], labels + (labels == 3)).kind == "mismatch"


def test_chunked_figures_match_one_chunk(ref: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    out = ref + 1e-3 * torch.randn_like(ref)
    whole = compare_outputs([ref], out)
    monkeypatch.setattr(compare, "_CHUNK", 4096)  # 74 chunks, the last one partial
    chunked = compare_outputs([ref], out)
    assert chunked.passed == whole.passed
    for name in ("max_abs_error", "mean_abs_error", "max_rel_error", "rel_l2_error"):
        assert getattr(chunked, name) == pytest.approx(getattr(whole, name), rel=1e-9), name


@pytest.mark.gpu
def test_fused_cuda_figures_match_the_torch_path() -> None:
    from sandbox.runtime.compare import TOLERANCES, _torch_figures
    from sandbox.runtime.compare_fused import fused_figures

    torch.manual_seed(1)
    ref = torch.randn(5000, 301, device="cuda")  # not a multiple of the block or the grid
    special = ref.clone()
    special[0, 0], special[1, 1] = float("inf"), float("nan")
    wrong_special = special.clone()
    wrong_special[1, 1] = 0.0
    nan_out = ref.clone()
    nan_out[7, 7] = float("nan")
    off = ref.clone()
    off[17, 3] += 0.5
    half = ref.half()
    cases = {
        "noise": (ref, ref + 1e-3 * torch.randn_like(ref)),
        "scaled": (ref, ref * 1.015),
        "one_off": (ref, off),
        "nan_out": (ref, nan_out),
        "special_same": (special, special.clone()),
        "special_wrong": (special, wrong_special),
        "half": (half, (half.float() * 1.001).half()),
        "bf16": (ref.bfloat16(), (ref * 1.002).bfloat16()),
    }
    for name, (base, out) in cases.items():
        atol, rtol, _ = TOLERANCES[base.dtype]
        fused, plain = fused_figures(base, out, atol, rtol), _torch_figures(base, out, atol, rtol)
        for key in ("violations", "nonfinite_out", "nonfinite_ref"):
            assert fused[key] == plain[key], (name, key)
        for key in ("sum_abs", "sq_diff", "sq_ref", "max_abs", "max_rel"):
            if name == "nan_out":
                continue  # NaN in the torch figures; the fused kernel skips it there and counts it
            assert fused[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-9), (name, key)


@pytest.mark.gpu
def test_large_gpu_outputs_take_the_fused_path_with_the_same_verdicts() -> None:
    torch.manual_seed(2)
    ref = torch.randn(2048, 1024, device="cuda")  # above the fused threshold
    assert compare_outputs([ref], ref + 1e-4).passed
    bad = ref.clone()
    bad[5, 5] = float("nan")
    result = compare_outputs([ref], bad)
    assert not result.passed and "1 NaN/Inf" in result.message
    assert not compare_outputs([ref], ref * 1.015).passed


@pytest.mark.gpu
def test_a_fused_judge_that_cannot_run_is_reported_and_the_torch_path_judges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sandbox.runtime.compare_fused as fused
    from sandbox.runtime import compare

    def no_compiler(*args: object) -> dict[str, float]:
        raise RuntimeError("nvrtc: not found")

    monkeypatch.setattr(compare, "_fused_unavailable", [])
    monkeypatch.setattr(fused, "fused_figures", no_compiler)
    assert compare.judge_note() is None
    torch.manual_seed(3)
    ref = torch.randn(2048, 1024, device="cuda")
    assert compare_outputs([ref], ref + 1e-4).passed
    assert not compare_outputs([ref], ref * 1.015).passed
    note = compare.judge_note()
    assert note is not None and "RuntimeError: nvrtc: not found" in note and "same verdicts" in note
