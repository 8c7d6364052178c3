"""Worker-side launch logic that needs no GPU: argument marshalling, launch shapes, import hygiene."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sandbox.runtime.compilers import has_arch_option, nvcc_command, ptxas_command
from sandbox.runtime.errors import NO_DRIVER_MESSAGE, CudaDriverError, KernelCompileError
from sandbox.runtime.marshal import (
    check_block,
    check_grid,
    check_param_sizes,
    marshal_arg,
    marshal_args,
    normalize_dim3,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4, (4, 1, 1)), ((4,), (4, 1, 1)), ((4, 2), (4, 2, 1)), ([4, 2, 3], (4, 2, 3))],
)
def test_normalize_dim3(value: int | tuple[int, ...], expected: tuple[int, int, int]) -> None:
    assert normalize_dim3(value, "grid") == expected


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ((), ValueError, "1 to 3 dimensions"),
        ((1, 2, 3, 4), ValueError, "1 to 3 dimensions"),
        (0, ValueError, r"grid\.x must be >= 1"),
        ((2, -1), ValueError, r"grid\.y must be >= 1"),
        (2.0, TypeError, "int or a tuple"),
        ((2, 1.5), TypeError, r"grid\.y must be an int.*//"),
        (True, TypeError, "int or a tuple"),
        ("4", TypeError, "int or a tuple"),
    ],
)
def test_normalize_dim3_rejects(value: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        normalize_dim3(value, "grid")  # type: ignore[arg-type]


def test_launch_limits() -> None:
    check_grid((2**31 - 1, 65535, 65535))
    check_block((1024, 1, 1))
    check_block((32, 32, 1))
    with pytest.raises(ValueError, match=r"grid\.y = 65536"):
        check_grid((1, 65536, 1))
    with pytest.raises(ValueError, match="at most 1024"):
        check_block((64, 32, 1))
    with pytest.raises(ValueError, match=r"block\.z = 65"):
        check_block((1, 1, 65))


def test_python_scalars() -> None:
    value = marshal_arg(0, 7)
    assert isinstance(value, ctypes.c_int) and value.value == 7
    assert marshal_arg(0, True).value == 1
    assert isinstance(marshal_arg(0, -(2**31)), ctypes.c_int)
    as_float = marshal_arg(0, 0.5)
    assert isinstance(as_float, ctypes.c_float) and as_float.value == 0.5


def test_int32_overflow_tells_how_to_pass_64_bit() -> None:
    with pytest.raises(OverflowError, match=r"argument 2 = 4294967296.*ctypes\.c_int64"):
        marshal_args([1, 2, 2**32])
    with pytest.raises(OverflowError):
        marshal_arg(0, -(2**31) - 1)


def test_ctypes_values_pass_unchanged() -> None:
    for value in (ctypes.c_int64(2**40), ctypes.c_uint32(5), ctypes.c_double(0.1), ctypes.c_void_p(16)):
        assert marshal_arg(0, value) is value


def test_numpy_scalars_keep_their_width() -> None:
    assert isinstance(marshal_arg(0, np.int64(3)), ctypes.c_int64)
    assert isinstance(marshal_arg(0, np.float64(3)), ctypes.c_double)
    assert isinstance(marshal_arg(0, np.float32(3)), ctypes.c_float)


def test_cpu_tensor_is_rejected_with_its_index() -> None:
    with pytest.raises(TypeError, match=r"argument 1 is a tensor on cpu.*\.cuda\(\)"):
        marshal_args([3, torch.zeros(4)])


def test_unsupported_values() -> None:
    with pytest.raises(TypeError, match="argument 0 has unsupported type str"):
        marshal_arg(0, "x")
    with pytest.raises(TypeError, match="argument 0 has unsupported type NoneType"):
        marshal_arg(0, None)
    with pytest.raises(TypeError, match=r"args must be a tuple.*args=\(x,\)"):
        marshal_args(torch.zeros(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="args must be a tuple"):
        marshal_args(5)  # type: ignore[arg-type]


def test_param_size_check() -> None:
    pointer, n = ctypes.c_void_p(1), ctypes.c_int(3)
    check_param_sizes("relu", None, [n])  # unknown: no check
    check_param_sizes("relu", [8, 8, 4], [pointer, pointer, n])
    with pytest.raises(TypeError, match=r"'relu' takes 3 parameter\(s\).*2 argument"):
        check_param_sizes("relu", [8, 8, 4], [pointer, pointer])
    with pytest.raises(TypeError, match=r"argument 2 of kernel 'relu' is 4 bytes.*parameter is 8"):
        check_param_sizes("relu", [8, 8, 8], [pointer, pointer, n])


def test_errors_pickle_and_read_well() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(CudaDriverError("CUDA_ERROR_INVALID_VALUE", 1, "bad launch")))
    assert (error.name, error.code, error.message) == ("CUDA_ERROR_INVALID_VALUE", 1, "bad launch")
    assert "CUDA_ERROR_INVALID_VALUE (1): bad launch" in str(error)
    compile_error = pickle.loads(pickle.dumps(KernelCompileError("line 3: oops", compiler="nvrtc")))
    assert compile_error.log == "line 3: oops" and compile_error.compiler == "nvrtc"
    assert isinstance(compile_error, RuntimeError)


def test_command_lines() -> None:
    src, out = Path("k.cu"), Path("k.cubin")
    argv = nvcc_command("nvcc", src, out, arch="sm_90", options=("-use_fast_math",))
    assert argv == ["nvcc", "-cubin", "-lineinfo", "-arch=sm_90", "-use_fast_math", "-o", "k.cubin", "k.cu"]
    chosen = nvcc_command("nvcc", src, out, arch="sm_90", options=("-arch=sm_90a",))
    assert "-arch=sm_90" not in chosen and "-arch=sm_90a" in chosen
    assert has_arch_option(["--gpu-architecture=sm_90a"]) and not has_arch_option(["-archive"])
    assert ptxas_command("ptxas", Path("k.ptx"), out, arch="sm_90") == [
        "ptxas",
        "-arch=sm_90",
        "-o",
        "k.cubin",
        "k.ptx",
    ]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)


def test_importing_the_runtime_is_light() -> None:
    done = _run_python(
        "import sys, sandbox.runtime, sandbox.runtime.kernel_cache, sandbox.runtime.compilers\n"
        "bad = [m for m in ('torch', 'pydantic', 'kernelwright', 'numpy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert done.returncode == 0, done.stderr


def test_runtime_imports_nothing_beyond_stdlib_and_torch() -> None:
    import ast

    allowed = set(sys.stdlib_module_names) | {"torch", "numpy", "sandbox", "__future__"}
    mine = ["__init__", "errors", "kernel_cache", "marshal", "cuda_driver", "compilers", "launch"]
    for name in mine:
        tree = ast.parse((REPO / "sandbox" / "runtime" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, (name, roots)
            if "sandbox" in roots and isinstance(node, ast.ImportFrom):
                assert node.module is not None and node.module.startswith("sandbox.runtime"), (
                    name,
                    node.module,
                )


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA driver")
def test_load_without_a_driver_says_so() -> None:
    done = _run_python(
        "import ctypes\n"
        "try:\n"
        "    ctypes.CDLL('libcuda.so.1')\n"
        "    raise SystemExit(77)\n"
        "except OSError:\n"
        "    pass\n"
        "from sandbox.runtime import load_ptx, CudaDriverError\n"
        "try:\n"
        "    load_ptx('.version 8.0')\n"
        "except CudaDriverError as exc:\n"
        "    print(exc)\n"
    )
    if done.returncode == 77:
        pytest.skip("libcuda.so.1 is loadable here")
    assert done.returncode == 0, done.stderr
    assert NO_DRIVER_MESSAGE in done.stdout
