"""Locating ptxas/nvcc and the GPU architecture without importing torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernelwright.settings import Settings
from sandbox import toolchains
from sandbox.toolchains import Toolchain, detect_gpu_arch, find_nvcc, find_ptxas, install_hint, tool_version


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", **overrides)  # type: ignore[call-arg]


def fake_tool(folder: Path, name: str, output: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert "'" not in output
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\n")  # a shell builtin: works with PATH emptied
    path.chmod(0o755)
    return path


VERSION_TEXT = (
    "ptxas: NVIDIA (R) Ptx optimizing assembler\n"
    "Cuda compilation tools, release 12.4, V12.4.131\n"
    "Build cuda_12.4.r12.4/compiler.34097967_0"
)


def test_version_is_parsed_and_cached(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path / "bin", "ptxas", VERSION_TEXT)
    assert tool_version(tool) == "12.4.131"
    tool.write_text("#!/bin/sh\necho changed\n")
    assert tool_version(tool) == "12.4.131"  # cached per path


def test_explicit_path_wins(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path / "custom", "my-ptxas", VERSION_TEXT)
    found = find_ptxas(make_settings(tmp_path, ptxas=tool))
    assert found == Toolchain("ptxas", tool.resolve(), "12.4.131")
    assert found.describe() == "ptxas 12.4.131"


def test_explicit_missing_path_is_not_replaced(tmp_path: Path) -> None:
    # A wrong explicit setting is reported, never silently swapped for another ptxas.
    assert find_ptxas(make_settings(tmp_path, ptxas=tmp_path / "nope" / "ptxas")) is None


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = fake_tool(tmp_path / "path", "nvcc", VERSION_TEXT)
    in_home = fake_tool(tmp_path / "home_cuda" / "bin", "nvcc", VERSION_TEXT)
    in_env = fake_tool(tmp_path / "env_cuda" / "bin", "nvcc", VERSION_TEXT)
    monkeypatch.setattr(toolchains, "DEFAULT_CUDA_HOMES", ())
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "env_cuda"))
    settings = make_settings(tmp_path, cuda_home=tmp_path / "home_cuda")
    assert find_nvcc(settings).path == on_path.resolve()  # type: ignore[union-attr]
    monkeypatch.setenv("PATH", "")
    assert find_nvcc(settings).path == in_home.resolve()  # type: ignore[union-attr]
    assert find_nvcc(make_settings(tmp_path)).path == in_env.resolve()  # type: ignore[union-attr]
    monkeypatch.delenv("CUDA_HOME")
    assert find_nvcc(make_settings(tmp_path)) is None


def test_detect_gpu_arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", "nvidia-smi", "9.0\n9.0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    detect_gpu_arch.cache_clear()
    try:
        assert detect_gpu_arch() == "sm_90"
        monkeypatch.setenv("PATH", "")
        detect_gpu_arch.cache_clear()
        assert detect_gpu_arch() is None
    finally:
        detect_gpu_arch.cache_clear()


def test_install_hints() -> None:
    assert "CUDA toolkit" in install_hint("ptxas") and "KERNELWRIGHT_PTXAS" in install_hint("ptxas")
    assert "KERNELWRIGHT_NVCC" in install_hint("nvcc")
    assert "pip install triton" in install_hint("triton")
    assert "tt-metal" in install_hint("tt-metal")


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas (CUDA toolkit) is not installed here")
def test_real_ptxas_is_found(tmp_path: Path) -> None:
    found = find_ptxas(make_settings(tmp_path))
    assert found is not None and found.version[0].isdigit()
