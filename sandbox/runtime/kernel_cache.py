"""The compiled-kernel cache that the service's compile step and the workers share.

The service compiles every PTX/CUDA source it finds in a candidate to `<cache>/<key>.cubin`, then
starts the worker with `KERNELWRIGHT_KERNEL_CACHE=<cache>`; the worker's `load_ptx`/`load_cuda` compute
the same key and load the cubin instead of compiling again. Both sides import this one module so the
key can never drift between them. The key includes the GPU architecture, so a cubin built for one
chip is never loaded on another (a different chip simply misses and compiles itself).

Standard library only: this runs in lean worker images.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

__all__ = [
    "CACHE_ENV",
    "KernelKind",
    "cache_dir",
    "cache_key",
    "cached_cubin",
    "format_arch",
    "ptx_target",
    "resolve_arch",
    "store_cubin",
]

CACHE_ENV = "KERNELWRIGHT_KERNEL_CACHE"
KernelKind = Literal["ptx", "cuda"]

_KEY_VERSION = "kernelwright-kernel-v1"
_TARGET = re.compile(r"^\s*\.target\s+(sm_\d+[af]?)\b", re.MULTILINE)
_ARCH = re.compile(r"^sm_(\d+)([af]?)$")


def cache_key(kind: KernelKind, source: str, arch: str, options: Sequence[str] = ()) -> str:
    """sha256 hex digest naming the cubin of `source` compiled for `arch` with `options`.

    Each field is NUL-separated (NUL cannot occur in an option or arch) and the source goes last, so no
    two different inputs share an encoding.
    """
    if kind not in ("ptx", "cuda"):
        raise ValueError(f"kind must be 'ptx' or 'cuda', not {kind!r}")
    digest = hashlib.sha256()
    header = "\0".join([_KEY_VERSION, kind, arch, str(len(options)), *options])
    digest.update(header.encode())
    digest.update(b"\0\0")
    digest.update(source.encode())
    return digest.hexdigest()


def cache_dir() -> Path | None:
    """The shared cache folder from `$KERNELWRIGHT_KERNEL_CACHE`, or None when it is unset or empty."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cached_cubin(key: str, directory: Path | None = None) -> Path | None:
    """The cached cubin for `key` if it exists (and is not empty) in `directory` or the env's cache."""
    folder = directory if directory is not None else cache_dir()
    if folder is None:
        return None
    path = folder / f"{key}.cubin"
    try:
        return path if path.is_file() and path.stat().st_size > 0 else None
    except OSError:
        return None


def store_cubin(key: str, data: bytes, directory: Path | None = None) -> Path | None:
    """Write a cubin atomically (temp file + rename) so a concurrent reader never sees half a file.

    Returns the path, or None when there is no cache or it cannot be written (a cache is an
    optimisation: failing to fill it must never fail a launch).
    """
    folder = directory if directory is not None else cache_dir()
    if folder is None:
        return None
    target = folder / f"{key}.cubin"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None
    return target


def format_arch(major: int, minor: int) -> str:
    """`(9, 0)` -> `sm_90`, the spelling ptxas/nvcc take for `-arch`."""
    return f"sm_{major}{minor}"


def ptx_target(source: str) -> str | None:
    """The `.target` architecture a PTX module declares (e.g. `sm_90a`), if any."""
    match = _TARGET.search(source)
    return match.group(1) if match else None


def resolve_arch(kind: KernelKind, source: str, device_arch: str) -> str:
    """The `-arch` to build `source` with on a device of `device_arch` (plain `sm_XX`).

    Architecture-specific PTX (`.target sm_90a`, needed for wgmma/setmaxnreg...) cannot be assembled
    for plain `sm_90`, so PTX whose target is the `a`/`f` variant of the device's own architecture gets
    that variant. Everything else uses the device architecture as is; CUDA sources choose a variant
    through an explicit `-arch=...` option instead.
    """
    if kind != "ptx":
        return device_arch
    declared = ptx_target(source)
    device = _ARCH.match(device_arch)
    if declared is None or device is None:
        return device_arch
    wanted = _ARCH.match(declared)
    if wanted and wanted.group(2) and wanted.group(1) == device.group(1):
        return declared
    return device_arch
