"""Which CUDA kernels a candidate's torch extension defines, and whether a profiled kernel is one of them.

KernelBench-style candidates build their kernels with `torch.utils.cpp_extension.load_inline` and launch
them from C++, past our launch API, so the launch counters cannot see them. The guard sees them instead
through the profiler's kernel records, and needs to tell the extension's kernels from PyTorch's own (a
candidate that only calls torch operations launches kernels too, just not its own).

nvcc gives every `__global__` function a host-side stub, `__device_stub__Z<mangled kernel name>`, which
stays in the shared library's symbol table. The libraries to read are those mapped into this process
since the guard armed (`/proc/self/maps`); only their section headers and string tables are read, so a
large library loaded meanwhile costs little. Standard library only: this runs in the worker.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["device_stubs", "is_extension_kernel", "kernel_identifier", "mapped_libraries"]

_ELF_MAGIC = b"\x7fELF"
_SHT_STRTAB = 3
_STUB = re.compile(rb"__device_stub__Z([0-9A-Za-z_]+)")
_MAX_STRTAB_BYTES = 256 * 1024 * 1024


def mapped_libraries(maps: Path = Path("/proc/self/maps")) -> set[str]:
    """Paths of the shared objects mapped into this process."""
    found: set[str] = set()
    try:
        text = maps.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/") and ".so" in parts[5]:
            found.add(parts[5].removesuffix(" (deleted)"))
    return found


def device_stubs(library: Path) -> frozenset[str]:
    """Mangled names (without `_Z`) of the kernels whose host stubs `library` holds; empty when it holds
    none or is not a 64-bit little-endian ELF file."""
    try:
        with library.open("rb") as handle:
            header = handle.read(64)
            if len(header) < 64 or header[:4] != _ELF_MAGIC or header[4] != 2 or header[5] != 1:
                return frozenset()
            shoff = struct.unpack_from("<Q", header, 0x28)[0]
            shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
            if shoff == 0 or shentsize < 64 or shnum == 0:
                return frozenset()
            handle.seek(shoff)
            table = handle.read(shentsize * shnum)
            names: set[str] = set()
            for index in range(min(shnum, len(table) // shentsize)):
                sh_type, _flags, _addr, offset, size = struct.unpack_from(
                    "<IQQQQ", table, index * shentsize + 4
                )
                if sh_type != _SHT_STRTAB or size > _MAX_STRTAB_BYTES:
                    continue
                handle.seek(offset)
                names.update(m.decode("ascii") for m in _STUB.findall(handle.read(size)))
            return frozenset(names)
    except (OSError, struct.error):
        return frozenset()


def kernel_identifier(name: str) -> str:
    """The kernel's own identifier in a profiler's demangled name.

    `void ns::relu_kernel<float>(float const*, float*, int)` -> `relu_kernel`.
    """
    name = name.replace("(anonymous namespace)", "anon")
    cut = min((i for i in (name.find("<"), name.find("(")) if i >= 0), default=len(name))
    head = name[:cut].strip().split()
    return head[-1].rsplit("::", 1)[-1] if head else ""


def is_extension_kernel(name: str, stubs: Iterable[str]) -> bool:
    """Whether the profiled kernel `name` is one of the kernels behind `stubs` (`device_stubs`).

    A mangled name spells each identifier as `<length><identifier>`, so the kernel's identifier is
    looked for in that form."""
    identifier = kernel_identifier(name)
    if not identifier:
        return False
    spelled = f"{len(identifier)}{identifier}"
    return any(spelled in stub for stub in stubs)
