"""The judge's closeness test: tolerances, relative L2, NaN/Inf rules and the error figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


FUSED_AGAINST_TORCH = r"""
import json, torch
from sandbox.runtime.compare import TOLERANCES, _torch_figures
from sandbox.runtime.compare_fused import fused_figures

torch.manual_seed(1)
ref = torch.randn(5000, 7)  # 35000 elements: 9 blocks, the last one partial
cases = {"noise": ref + 1e-3 * torch.randn_like(ref), "scaled": ref * 1.015}
off = ref.clone(); off[17, 3] += 0.5; cases["one_off"] = off
special = ref.clone(); special[0, 0] = float("inf"); special[1, 1] = float("nan")
cases["special_same"] = special.clone()
wrong_nan = special.clone(); wrong_nan[1, 1] = 0.0; cases["special_wrong"] = wrong_nan
half = ref.half(); cases["half"] = (half.float() * 1.001).half()
result = {}
for name, out in cases.items():
    base = special if name.startswith("special") else (half if name == "half" else ref)
    atol, rtol, _ = TOLERANCES[base.dtype]
    result[name] = [fused_figures(base, out, atol, rtol), _torch_figures(base, out, atol, rtol)]
print(json.dumps(result))
"""


def test_fused_triton_figures_match_the_torch_path_under_the_interpreter() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", FUSED_AGAINST_TORCH],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, (fused, torch_path) in json.loads(done.stdout.strip().splitlines()[-1]).items():
        assert (fused["violations"] == 0) == (torch_path["violations"] == 0), name
        assert fused["violations"] == torch_path["violations"], name
        for key in ("max_abs", "max_rel", "sum_abs", "sq_diff", "sq_ref"):
            assert fused[key] == pytest.approx(torch_path[key], rel=1e-5, abs=1e-9), (name, key)
