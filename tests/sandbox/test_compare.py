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
