"""Finding the compilers on the service host (ptxas, nvcc) and the GPU architecture to build for.

Search order for a tool: the explicit setting (`KERNELWRIGHT_PTXAS` / `KERNELWRIGHT_NVCC`, which must
then exist: a wrong explicit path is reported, never silently replaced), then the PATH, then
`settings.cuda_home/bin`, `$CUDA_HOME/bin` and `/usr/local/cuda/bin`. Versions come from `--version`
and are cached per path, as is the detected GPU architecture, so repeated compiles cost no extra
process starts. Nothing here imports torch: the service process need not have it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kernelwright.settings import Settings

__all__ = [
    "DEFAULT_CUDA_HOMES",
    "Toolchain",
    "detect_gpu_arch",
    "find_nvcc",
    "find_ptxas",
    "find_tool",
    "install_hint",
    "tool_version",
]

# Well-known install locations searched last; a module attribute so tests can empty it.
DEFAULT_CUDA_HOMES: tuple[Path, ...] = (Path("/usr/local/cuda"),)

_VERSION = re.compile(r"release\s+[\d.]+,\s*V(\d+(?:\.\d+)+)|release\s+(\d+(?:\.\d+)+)")
_VERSION_TIMEOUT_S = 30.0
_SMI_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Toolchain:
    """A located compiler: its name, absolute path and version (e.g. `13.0.88`, or `unknown`)."""

    name: str
    path: Path
    version: str

    def describe(self) -> str:
        """`ptxas 13.0.88`: what `CompileResult.toolchain` reports."""
        return f"{self.name} {self.version}"


@lru_cache(maxsize=64)
def tool_version(path: Path) -> str:
    """The version a CUDA tool prints for `--version` (`unknown` when it cannot be read)."""
    try:
        done = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = _VERSION.search(done.stdout + done.stderr)
    if match is None:
        return "unknown"
    return match.group(1) or match.group(2)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _search_dirs(settings: Settings) -> list[Path]:
    homes: list[Path] = []
    if settings.cuda_home is not None:
        homes.append(settings.cuda_home)
    env_home = os.environ.get("CUDA_HOME")
    if env_home:
        homes.append(Path(env_home))
    homes.extend(DEFAULT_CUDA_HOMES)
    return [home / "bin" for home in homes]


def find_tool(name: str, explicit: Path | None, settings: Settings) -> Toolchain | None:
    """Locate `name` (see the module docstring for the order); None when it is nowhere to be found."""
    if explicit is not None:
        path = explicit.expanduser()
        return Toolchain(name, path.resolve(), tool_version(path.resolve())) if _executable(path) else None
    on_path = shutil.which(name)
    candidates = [Path(on_path)] if on_path else []
    candidates += [folder / name for folder in _search_dirs(settings)]
    for candidate in candidates:
        if _executable(candidate):
            resolved = candidate.resolve()
            return Toolchain(name, resolved, tool_version(resolved))
    return None


def find_ptxas(settings: Settings) -> Toolchain | None:
    """The PTX assembler, or None."""
    return find_tool("ptxas", settings.ptxas, settings)


def find_nvcc(settings: Settings) -> Toolchain | None:
    """The CUDA C++ compiler driver, or None."""
    return find_tool("nvcc", settings.nvcc, settings)


@lru_cache(maxsize=1)
def detect_gpu_arch() -> str | None:
    """`sm_XX` of the first visible NVIDIA GPU via `nvidia-smi`, or None when there is none.

    Cached for the life of the process (GPUs do not come and go under a running service).
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_SMI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", line)
        if match:
            return f"sm_{match.group(1)}{match.group(2)}"
    return None


def install_hint(name: str) -> str:
    """What to install (or set) so that toolchain `name` is found."""
    if name in ("ptxas", "nvcc"):
        variable = f"KERNELWRIGHT_{name.upper()}"
        return (
            f"install the NVIDIA CUDA toolkit (it provides {name}; e.g. the `cuda-toolkit` package from "
            f"NVIDIA's apt repository, or conda's `cuda-nvcc`), then put its bin/ folder on PATH, or set "
            f"KERNELWRIGHT_CUDA_HOME to the toolkit root or {variable} to the {name} executable"
        )
    if name == "triton":
        return (
            "pip install triton (Linux) into the worker's Python; set KERNELWRIGHT_WORKER_PYTHON if "
            "the workers use another interpreter than the service"
        )
    if name == "tt-metal":
        return (
            "run `kernelwright toolchains fetch tt-metal` (device headers for the syntax check; needs "
            "g++-multilib), and set TT_METAL_HOME to a built tt-metal checkout to build and run"
        )
    return f"install {name} and make sure it is on PATH"
