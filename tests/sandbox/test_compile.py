"""Compiling candidates with the real ptxas / nvcc of this machine (skipped where they are absent)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, CompileResult, Severity, Target
from kernelwright.errors import ConfigError
from kernelwright.settings import Settings
from sandbox import compile as compile_module
from sandbox import toolchains
from sandbox.compile import compile_candidate
from sandbox.runtime.kernel_cache import cache_key

needs_ptxas = pytest.mark.skipif(
    shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) is not installed"
)
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")

RELU_PTX = """
.version 8.0
.target sm_90
.address_size 64

.visible .entry relu(
    .param .u64 x_ptr,
    .param .u64 y_ptr,
    .param .u32 n
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<3>;
    .reg .b64 %rd<8>;

    ld.param.u64 %rd1, [x_ptr];
    ld.param.u64 %rd2, [y_ptr];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd3, %rd1;
    cvta.to.global.u64 %rd4, %rd2;
    mul.wide.u32 %rd5, %r5, 4;
    add.s64 %rd6, %rd3, %rd5;
    add.s64 %rd7, %rd4, %rd5;
    ld.global.f32 %f1, [%rd6];
    max.f32 %f2, %f1, 0f00000000;
    st.global.f32 [%rd7], %f2;
DONE:
    ret;
}
"""

VADD_CU = """
extern "C" __global__ void vadd(const float* a, const float* b, float* c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}
"""


def ptx_candidate(ptx: str) -> str:
    return f'''import torch
from sandbox.runtime import load_ptx

PTX = r"""{ptx}"""


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_ptx(PTX).get_function("relu")

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.kernel(grid=((n + 255) // 256, 1, 1), block=(256, 1, 1), args=(x, y, n))
        return y
'''


def cuda_candidate(source: str) -> str:
    return f'''import torch
from sandbox.runtime import load_cuda

CUDA_SRC = r"""{source}"""


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_cuda(CUDA_SRC, options=("-use_fast_math",)).get_function("vadd")
'''


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", **overrides)  # type: ignore[call-arg]


def run(
    target: Target, source: str, tmp_path: Path, *, arch: str | None = "sm_90", **overrides: object
) -> CompileResult:
    candidate = Candidate(target=target, source=source)
    coro = compile_candidate(
        candidate, settings_for(tmp_path, **overrides), arch=arch, cache_dir=tmp_path / "cache"
    )
    return asyncio.run(coro)


def line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), start=1) if text in line)


@needs_ptxas
def test_valid_ptx_compiles_to_a_cubin_named_by_the_shared_key(tmp_path: Path) -> None:
    result = run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.toolchain.startswith("ptxas ") and result.toolchain_missing is False
    cubin = Path(result.artifacts["PTX.cubin"])
    assert cubin == tmp_path / "cache" / f"{cache_key('ptx', RELU_PTX, 'sm_90')}.cubin"
    assert cubin.stat().st_size > 0 and cubin.read_bytes()[:4] == b"\x7fELF"
    assert "Used" in result.log and "registers" in result.log  # ptxas -v resource usage
    assert result.duration_s > 0
    again = run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path)  # cached: same artifact, no rebuild
    assert again.ok and again.artifacts == result.artifacts and "cached" in again.log


@needs_ptxas
def test_ptx_error_points_at_the_python_line(tmp_path: Path) -> None:
    source = ptx_candidate(
        RELU_PTX.replace("max.f32 %f2", "maxx.f32 %f2").replace(
            "st.global.f32 [%rd7], %f2;", "st.global.f32 [%rd7], %f9;"
        )
    )
    result = run(Target.PTX, source, tmp_path)
    assert not result.ok and result.artifacts == {}
    by_message = {d.message.split(" (")[0]: d for d in result.diagnostics}
    unknown_instruction = by_message["Not a name of any known instruction: 'maxx'"]
    assert unknown_instruction.code == "ptxas.error" and unknown_instruction.file == "candidate.py"
    assert unknown_instruction.line == line_of(source, "maxx.f32")
    unknown_symbol = by_message["Unknown symbol '%f9'"]
    assert unknown_symbol.line == line_of(source, "%f9")
    assert not any("aborted" in d.message for d in result.diagnostics)


@needs_ptxas
def test_instruction_newer_than_the_declared_target(tmp_path: Path) -> None:
    old = RELU_PTX.replace(".version 8.0", ".version 7.0").replace(".target sm_90", ".target sm_70")
    old = old.replace(
        "max.f32 %f2, %f1, 0f00000000;",
        "max.f32 %f2, %f1, 0f00000000;\n    redux.sync.add.u32 %r1, %r5, 0xffffffff;",
    )
    source = ptx_candidate(old)
    result = run(Target.PTX, source, tmp_path)
    assert not result.ok
    (diagnostic,) = [d for d in result.diagnostics if d.is_error]
    assert "redux" in diagnostic.message and "sm_80" in diagnostic.message
    assert diagnostic.line == line_of(source, "redux.sync")
    assert diagnostic.hint and ".target" in diagnostic.hint


@needs_ptxas
def test_target_newer_than_the_build_arch(tmp_path: Path) -> None:
    result = run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path, arch="sm_80")
    assert not result.ok
    assert any(d.hint and ".target" in d.hint for d in result.diagnostics)


@needs_ptxas
def test_arch_specific_ptx_is_built_for_the_variant(tmp_path: Path) -> None:
    ptx = RELU_PTX.replace(".target sm_90", ".target sm_90a")
    result = run(Target.PTX, ptx_candidate(ptx), tmp_path)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert Path(result.artifacts["PTX.cubin"]).name == f"{cache_key('ptx', ptx, 'sm_90a')}.cubin"


@needs_nvcc
def test_valid_cuda_compiles(tmp_path: Path) -> None:
    result = run(Target.CUDA, cuda_candidate(VADD_CU), tmp_path)
    assert result.ok, [d.render() for d in result.diagnostics]
    assert result.toolchain.startswith("nvcc ")
    cubin = Path(result.artifacts["CUDA_SRC.cubin"])
    assert cubin.name == f"{cache_key('cuda', VADD_CU, 'sm_90', ('-use_fast_math',))}.cubin"
    assert cubin.read_bytes()[:4] == b"\x7fELF"


@needs_nvcc
def test_cuda_syntax_error_is_remapped(tmp_path: Path) -> None:
    broken = VADD_CU.replace("c[i] = a[i] + b[i];", "c[i] = a[i] + bb[i]")
    source = cuda_candidate(broken)
    result = run(Target.CUDA, source, tmp_path)
    assert not result.ok
    errors = [d for d in result.diagnostics if d.is_error]
    assert [d.code for d in errors] == ["nvcc.error", "nvcc.error"]
    undefined = errors[0]
    assert undefined.message.startswith('identifier "bb" is undefined')
    assert undefined.line == line_of(source, "bb[i]")
    assert undefined.column is not None
    assert source.splitlines()[undefined.line - 1][undefined.column - 1 :].startswith("bb[i]")
    assert errors[1].message.startswith('expected a ";"')


def test_toolchain_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    result = run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path, ptxas=tmp_path / "no" / "ptxas")
    assert not result.ok and result.toolchain_missing
    (diagnostic,) = result.diagnostics
    assert diagnostic.code == "toolchain.missing"
    assert str(tmp_path / "no" / "ptxas") in diagnostic.message
    assert diagnostic.hint == toolchains.install_hint("ptxas")


def test_toolchain_missing_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setattr(toolchains, "DEFAULT_CUDA_HOMES", ())
    result = run(Target.CUDA, cuda_candidate(VADD_CU), tmp_path)
    assert result.toolchain_missing and result.toolchain == "nvcc"
    assert result.diagnostics[0].hint and "CUDA toolkit" in result.diagnostics[0].hint


def test_candidate_errors_come_before_toolchain_lookup(tmp_path: Path) -> None:
    result = run(Target.PTX, "import torch\nclass ModelNew(torch.nn.Module):\n    pass\n", tmp_path)
    assert not result.ok and not result.toolchain_missing
    assert [d.code for d in result.diagnostics] == ["check.no_kernel_source"]


@pytest.mark.parametrize("target", [t for t in Target if t != Target.TT_METAL])  # tt-metal: C++ project
def test_python_syntax_error_for_every_target(tmp_path: Path, target: Target) -> None:
    result = run(target, "class ModelNew:\n    def forward(self x):\n        pass\n", tmp_path)
    (diagnostic,) = result.diagnostics
    assert not result.ok and diagnostic.code == "python.syntax"
    assert (diagnostic.line, diagnostic.column) == (2, 22) or diagnostic.line == 2


def test_triton_checks_the_worker_python(tmp_path: Path) -> None:
    compile_module._triton_versions.clear()
    pytest.importorskip("triton")
    result = run(Target.TRITON, "import triton\n", tmp_path, worker_python=sys.executable)
    assert result.ok and result.toolchain.startswith("triton ")
    assert result.toolchain.endswith("(compiled at first launch)")


def test_triton_missing_in_the_worker_python(tmp_path: Path) -> None:
    compile_module._triton_versions.clear()
    result = run(Target.TRITON, "import triton\n", tmp_path, worker_python=str(tmp_path / "no-python"))
    assert not result.ok and result.toolchain_missing
    assert result.diagnostics[0].hint and "pip install triton" in result.diagnostics[0].hint


def test_tt_metal_candidate_is_checked_as_a_project(tmp_path: Path) -> None:
    result = run(Target.TT_METAL, "x = 1\n", tmp_path)  # not a project bundle: no files at all
    assert not result.ok and not result.toolchain_missing and result.level == "static_checked"
    assert {"ttm.project.no_host", "ttm.project.no_cmake"} <= {d.code for d in result.diagnostics}


def test_invalid_arch_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sm_XX"):
        run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path, arch=None, gpu_arch="hopper")


@needs_ptxas
def test_timeout(tmp_path: Path) -> None:
    result = run(Target.PTX, ptx_candidate(RELU_PTX), tmp_path, compile_timeout_s=0.0001)
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["compile.timeout"]
    assert result.diagnostics[0].severity == Severity.ERROR
