"""Checks of each file on its own: API drift (versioned tables), entry points, TRISC guards, the
order of the destination-register handshake, init calls, and NoC barriers.
"""

from __future__ import annotations

import re

from kernelwright.domain import Diagnostic
from knowledge.ttmetal._diag import error, warning
from knowledge.ttmetal.model import KernelModel, ProjectModel
from knowledge.ttmetal.project import FileRole, role_of
from knowledge.ttmetal.source import SourceFile
from knowledge.ttmetal.tables import ApiTables

__all__ = ["check_api_drift", "check_kernel_bodies"]

_DATAFLOW_ONLY = (
    "noc_async_read",
    "noc_async_write",
    "noc_async_read_tile",
    "noc_async_write_tile",
    "noc_async_read_page",
    "noc_async_write_page",
    "noc_async_read_barrier",
    "noc_async_write_barrier",
    "get_write_ptr",
    "get_read_ptr",
    "get_noc_addr",
)
_COMPUTE_ONLY = (
    "tile_regs_acquire",
    "tile_regs_commit",
    "tile_regs_wait",
    "tile_regs_release",
    "pack_tile",
    "add_tiles",
    "sub_tiles",
    "mul_tiles",
    "matmul_tiles",
    "copy_tile",
    "reduce_tile",
    "compute_kernel_hw_startup",
)
_MATH_OPS = ("add_tiles", "sub_tiles", "mul_tiles", "matmul_tiles", "copy_tile", "reduce_tile")
_KERNEL_MAIN = re.compile(r"\bvoid\s+kernel_main\s*\(\s*(?:void\s*)?\)\s*\{")
_LEGACY_MAIN = re.compile(r"\bnamespace\s+NAMESPACE\b|\bvoid\s+MAIN\b")
_TRISC_MACRO = re.compile(r"\b(?:UNPACK|MATH|PACK)\s*\(\s*\(")


def check_api_drift(source: SourceFile, tables: ApiTables, version: str) -> list[Diagnostic]:
    """Includes and names that `version` no longer has (errors) or marks deprecated (warnings)."""
    found: list[Diagnostic] = []
    role = role_of(source.path)
    for include, line in source.includes:
        for rename in tables.includes:
            if include != rename.old:
                continue
            if tables.at_least(version, rename.gone):
                found.append(
                    error(
                        "ttm.include.moved",
                        source.path,
                        line,
                        f'#include "{include}" does not exist in TT-Metal {version} (moved in {rename.gone})',
                        f'include "{rename.new}" instead',
                    )
                )
    for rename in tables.names:
        if rename.kind not in ("any", _kind(role)):
            continue
        pattern = re.escape(rename.old) if rename.old.endswith("::") else rf"\b{re.escape(rename.old)}\b"
        match = re.search(pattern, source.code)
        if match is None:
            continue
        line = source.line_of(match.start())
        if tables.at_least(version, rename.gone):
            found.append(
                error(
                    "ttm.api.removed",
                    source.path,
                    line,
                    f"`{rename.old}` does not exist in TT-Metal {version} (removed in {rename.gone})",
                    f"use {rename.new}",
                )
            )
        elif tables.at_least(version, rename.deprecated):
            found.append(
                warning(
                    "ttm.api.deprecated",
                    source.path,
                    line,
                    f"`{rename.old}` is deprecated in TT-Metal {version}",
                    f"use {rename.new}",
                )
            )
    return found


def _kind(role: FileRole) -> str:
    return {FileRole.DATAFLOW: "dataflow", FileRole.COMPUTE: "compute", FileRole.HOST: "host"}.get(
        role, "any"
    )


def check_kernel_bodies(model: ProjectModel, tables: ApiTables, version: str) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for kernel in model.kernels:
        found += _entry(kernel, tables, version)
        found += _wrong_side(kernel)
        if kernel.role == FileRole.COMPUTE:
            found += _trisc_guards(kernel)
            found += _regs_order(kernel)
            found += _inits(kernel, tables, version)
        else:
            found += _barriers(kernel)
    return found


def _entry(kernel: KernelModel, tables: ApiTables, version: str) -> list[Diagnostic]:
    code = kernel.source.code
    legacy = _LEGACY_MAIN.search(code)
    kernel_main_era = tables.at_least(version, "2026-06")
    if legacy is not None and kernel.role == FileRole.COMPUTE and kernel_main_era:
        return [
            error(
                "ttm.entry.legacy_main",
                kernel.path,
                kernel.source.line_of(legacy.start()),
                f"compute kernels in TT-Metal {version} define `void kernel_main()`; "
                "`namespace NAMESPACE { void MAIN { ... } }` is the pre-2026 form",
                "replace the namespace and MAIN with a plain `void kernel_main() { ... }`",
            )
        ]
    if _KERNEL_MAIN.search(code) is None and legacy is None:
        return [
            error(
                "ttm.entry.missing",
                kernel.path,
                None,
                "the kernel defines no `void kernel_main()` entry point",
                "every reader, writer and compute kernel defines `void kernel_main() { ... }`",
            )
        ]
    return []


def _wrong_side(kernel: KernelModel) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    if kernel.role == FileRole.COMPUTE:
        for call in kernel.source.calls_named(*_DATAFLOW_ONLY):
            found.append(
                error(
                    "ttm.compute.dataflow_api",
                    kernel.path,
                    call.line,
                    f"`{call.base}` is a data-movement API; compute kernels run on the TRISCs, "
                    "which cannot issue NoC transfers",
                    "move DRAM reads to the reader and writes to the writer; compute only touches CBs",
                )
            )
            break
        for include, line in kernel.source.includes:
            if include.endswith("dataflow_api.h"):
                found.append(
                    error(
                        "ttm.compute.dataflow_include",
                        kernel.path,
                        line,
                        f'a compute kernel includes "{include}"',
                        'include the compute headers (e.g. "api/compute/eltwise_binary.h") instead',
                    )
                )
    elif kernel.role == FileRole.DATAFLOW:
        for call in kernel.source.calls_named(*_COMPUTE_ONLY):
            found.append(
                error(
                    "ttm.dataflow.compute_api",
                    kernel.path,
                    call.line,
                    f"`{call.base}` is a compute API; data-movement kernels run on BRISC/NCRISC",
                    "do the math in the compute kernel (kernels/compute/) and pass tiles through CBs",
                )
            )
            break
    return found


def _trisc_guards(kernel: KernelModel) -> list[Diagnostic]:
    """Raw LLK calls run on all three TRISCs unless wrapped in UNPACK((...)), MATH((...)), PACK((...))
    or an `#ifdef TRISC_*` block; the api/compute functions do that wrapping themselves."""
    code = kernel.source.code
    guarded_spans = [
        (m.start(), m.end())
        for m in re.finditer(r"#\s*if(?:def)?\s+[^\n]*TRISC_\w+.*?#\s*endif", code, re.DOTALL)
    ]
    for match in _TRISC_MACRO.finditer(code):
        guarded_spans.append((match.start(), code.find(";", match.end())))
    for call in kernel.source.calls:
        if call.base.startswith("llk_") and not any(a <= call.start <= b for a, b in guarded_spans):
            return [
                error(
                    "ttm.compute.unguarded_llk",
                    kernel.path,
                    call.line,
                    f"`{call.base}` is a low-level LLK call outside UNPACK((...)), MATH((...)) "
                    f"or PACK((...)): "
                    "every TRISC would run it",
                    "use the api/compute functions, or wrap the call for the TRISC it belongs to",
                )
            ]
    return []


def _regs_order(kernel: KernelModel) -> list[Diagnostic]:
    """acquire -> math -> commit -> wait -> pack -> release, in source order within each block."""
    sequence = kernel.source.calls_named(
        "tile_regs_acquire",
        "tile_regs_commit",
        "tile_regs_wait",
        "tile_regs_release",
        "pack_tile",
        *_MATH_OPS,
    )
    state = "released"
    for call in sequence:
        name = call.base
        problem = None
        if name == "tile_regs_acquire":
            problem = None if state == "released" else "tile_regs_acquire again before tile_regs_release"
            state = "acquired"
        elif name in _MATH_OPS:
            problem = None if state == "acquired" else f"`{name}` writes DST outside tile_regs_acquire/commit"
        elif name == "tile_regs_commit":
            problem = (
                None if state == "acquired" else "tile_regs_commit without a tile_regs_acquire before it"
            )
            state = "committed"
        elif name == "tile_regs_wait":
            problem = None if state == "committed" else "tile_regs_wait before tile_regs_commit"
            state = "waited"
        elif name == "pack_tile":
            problem = None if state == "waited" else "`pack_tile` reads DST outside tile_regs_wait/release"
        elif name == "tile_regs_release":
            problem = None if state == "waited" else "tile_regs_release without tile_regs_wait before it"
            state = "released"
        if problem is not None:
            return [
                error(
                    "ttm.compute.dst_handshake",
                    kernel.path,
                    call.line,
                    problem,
                    "per tile block: tile_regs_acquire(); math ops; tile_regs_commit(); tile_regs_wait(); "
                    "pack_tile(...); tile_regs_release()",
                )
            ]
    return []


def _inits(kernel: KernelModel, tables: ApiTables, version: str) -> list[Diagnostic]:
    calls = kernel.source.calls
    names = [c.base for c in calls]
    found: list[Diagnostic] = []
    new_api = tables.at_least(version, "0.81.1")
    startup = "compute_kernel_hw_startup" if new_api else "binary_op_init_common"
    if any(n in _MATH_OPS for n in names) and not any(
        n
        in (
            "compute_kernel_hw_startup",
            "binary_op_init_common",
            "mm_init",
            "unary_op_init_common",
            "init_sfpu",
        )
        for n in names
    ):
        first = next(c for c in calls if c.base in _MATH_OPS)
        found.append(
            error(
                "ttm.compute.no_hw_startup",
                kernel.path,
                first.line,
                "the compute kernel never configures the unpacker/packer hardware before its first tile op",
                f"call {startup}(in0_cb, in1_cb, out_cb) once at the start of kernel_main",
            )
        )
    for op, inits in tables.binary_ops.items():
        first_op = next((c for c in calls if c.base == op), None)
        if first_op is None:
            continue
        wanted = inits["init"] if new_api else inits["legacy_init"]
        acceptable = {inits["init"], inits["legacy_init"]}
        if not any(c.base in acceptable and c.start < first_op.start for c in calls):
            found.append(
                error(
                    "ttm.compute.no_op_init",
                    kernel.path,
                    first_op.line,
                    f"`{op}` is called without `{wanted}` before it (TT-Metal {version})",
                    f"call {wanted}(in0_cb, in1_cb) before the tile loop",
                )
            )
    return found


def _barriers(kernel: KernelModel) -> list[Diagnostic]:
    """A page read over the NoC may not have arrived when it is pushed, nor a written one left when popped."""
    events = kernel.source.calls_named(
        "noc_async_read",
        "noc_async_read_tile",
        "noc_async_read_page",
        "noc_async_read_barrier",
        "noc_async_write",
        "noc_async_write_tile",
        "noc_async_write_page",
        "noc_async_write_barrier",
        "noc_async_writes_flushed",
        "cb_push_back",
        "cb_pop_front",
    )
    reads = writes = 0
    for call in events:
        name = call.base
        if name.startswith("noc_async_read") and name != "noc_async_read_barrier":
            reads += 1
        elif name == "noc_async_read_barrier":
            reads = 0
        elif name.startswith("noc_async_write") and name not in (
            "noc_async_write_barrier",
            "noc_async_writes_flushed",
        ):
            writes += 1
        elif name in ("noc_async_write_barrier", "noc_async_writes_flushed"):
            writes = 0
        elif name == "cb_push_back" and reads:
            return [
                error(
                    "ttm.noc.missing_read_barrier",
                    kernel.path,
                    call.line,
                    "cb_push_back after noc_async_read without noc_async_read_barrier: the consumer may "
                    "see the page before the data arrives",
                    "call noc_async_read_barrier() after the reads and before cb_push_back",
                )
            ]
        elif name == "cb_pop_front" and writes:
            return [
                error(
                    "ttm.noc.missing_write_barrier",
                    kernel.path,
                    call.line,
                    "cb_pop_front after noc_async_write without a write barrier: the page may be "
                    "overwritten before it has left L1",
                    "call noc_async_write_barrier() (or noc_async_writes_flushed()) before cb_pop_front",
                )
            ]
    return []
