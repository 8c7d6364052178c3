"""A catalogue of realistic TT-Metal mistakes: each, applied to a correct example project, is caught
with the right diagnostic code (and the correct projects pass clean)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from knowledge.ttmetal import Project, check_project

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "ttmetal"
READER, WRITER, COMPUTE, HOST = (
    "kernels/dataflow/read_tiles.cpp",
    "kernels/dataflow/write_tiles.cpp",
    "kernels/compute/add_tiles.cpp",
    "eltwise_add.cpp",
)


@dataclass(frozen=True)
class Mistake:
    name: str
    example: str  # eltwise_add_single | eltwise_add_multi
    edits: tuple[tuple[str, str, str], ...]  # (file, old, new)
    code: str


def _project(example: str) -> Project:
    return Project.from_dir(EXAMPLES / example)


def _apply(mistake: Mistake) -> Project:
    files = dict(_project(mistake.example).files)
    for path, old, new in mistake.edits:
        assert old in files[path], (mistake.name, path, old)
        files[path] = files[path].replace(old, new)
    return Project(files)


S, M = "eltwise_add_single", "eltwise_add_multi"
CATALOGUE = [
    Mistake(
        "legacy dataflow include",
        S,
        ((READER, '"api/dataflow/dataflow_api.h"', '"dataflow_api.h"'),),
        "ttm.include.moved",
    ),
    Mistake(
        "legacy compute include",
        S,
        ((COMPUTE, '"api/compute/eltwise_binary.h"', '"compute_kernel_api/eltwise_binary.h"'),),
        "ttm.include.moved",
    ),
    Mistake(
        "binary_op_init_common (removed in 0.81.1)",
        S,
        (
            (
                COMPUTE,
                "compute_kernel_hw_startup(cb_a, cb_b, cb_out);",
                "binary_op_init_common(cb_a, cb_b, cb_out);",
            ),
        ),
        "ttm.api.removed",
    ),
    Mistake(
        "add_tiles_init (removed in 0.81.1)",
        S,
        ((COMPUTE, "add_init(cb_a, cb_b);", "add_tiles_init(cb_a, cb_b);"),),
        "ttm.api.removed",
    ),
    Mistake("no add_init", S, ((COMPUTE, "    add_init(cb_a, cb_b);\n", ""),), "ttm.compute.no_op_init"),
    Mistake(
        "legacy compute entry point",
        S,
        (
            (COMPUTE, "void kernel_main() {", "namespace NAMESPACE {\nvoid MAIN {"),
            (COMPUTE, "\n}\n", "\n}\n}\n"),
        ),
        "ttm.entry.legacy_main",
    ),
    Mistake(
        "writer reads a CB the host never creates",
        S,
        ((WRITER, "tt::CBIndex::c_16", "tt::CBIndex::c_17"),),
        "ttm.cb.not_configured",
    ),
    Mistake(
        "writer waits on a CB nobody pushes",
        S,
        ((WRITER, "tt::CBIndex::c_16", "tt::CBIndex::c_1"),),
        "ttm.cb.no_consumer",
    ),
    Mistake(
        "compute never pushes its output",
        S,
        ((COMPUTE, "        cb_push_back(cb_out, 1);\n", ""),),
        "ttm.cb.reserve_push_mismatch",
    ),
    Mistake(
        "wait for more pages than the CB holds",
        S,
        ((WRITER, "cb_wait_front(cb_out, 1);", "cb_wait_front(cb_out, 4);"),),
        "ttm.cb.exceeds_capacity",
    ),
    Mistake(
        "pop more than waited for",
        S,
        ((COMPUTE, "cb_pop_front(cb_a, 1);", "cb_pop_front(cb_a, 2);"),),
        "ttm.cb.wait_pop_mismatch",
    ),
    Mistake(
        "writer consumes twice what compute produces",
        S,
        (
            (WRITER, "cb_wait_front(cb_out, 1);", "cb_wait_front(cb_out, 2);"),
            (WRITER, "cb_pop_front(cb_out, 1);", "cb_pop_front(cb_out, 2);"),
        ),
        "ttm.cb.count_mismatch",
    ),
    Mistake(
        "push before the read arrived",
        S,
        ((READER, "        noc_async_read_barrier();\n", ""),),
        "ttm.noc.missing_read_barrier",
    ),
    Mistake(
        "pop before the write left",
        S,
        ((WRITER, "        noc_async_write_barrier();\n", ""),),
        "ttm.noc.missing_write_barrier",
    ),
    Mistake(
        "second TensorAccessorArgs not appended on the host",
        S,
        ((HOST, "    TensorAccessorArgs(*b_buffer).append_to(reader_args);\n", ""),),
        "ttm.args.ct_out_of_range",
    ),
    Mistake(
        "runtime argument missing on the host",
        S,
        (
            (
                HOST,
                "{a_buffer->address(), b_buffer->address(), n_tiles}",
                "{a_buffer->address(), b_buffer->address()}",
            ),
        ),
        "ttm.args.rt_out_of_range",
    ),
    Mistake(
        "named compile-time argument not passed",
        S,
        (
            (
                WRITER,
                "constexpr uint32_t cb_out = tt::CBIndex::c_16;",
                'constexpr uint32_t cb_out = get_named_compile_time_arg_val("cb_out");',
            ),
        ),
        "ttm.args.named_missing",
    ),
    Mistake(
        "reader and writer on the same RISC-V",
        S,
        (
            (
                HOST,
                "DataMovementProcessor::RISCV_1, .noc = NOC::RISCV_1_default",
                "DataMovementProcessor::RISCV_0, .noc = NOC::RISCV_0_default",
            ),
        ),
        "ttm.kernel.same_processor",
    ),
    Mistake(
        "CreateKernel path typo",
        S,
        ((HOST, '"kernels/compute/add_tiles.cpp"', '"kernels/compute/add.cpp"'),),
        "ttm.kernel.missing_file",
    ),
    Mistake(
        "pack before the DST handshake",
        S,
        (
            (
                COMPUTE,
                "        tile_regs_wait();\n        cb_reserve_back(cb_out, 1);\n"
                "        pack_tile(0, cb_out);\n",
                "        cb_reserve_back(cb_out, 1);\n        pack_tile(0, cb_out);\n"
                "        tile_regs_wait();\n",
            ),
        ),
        "ttm.compute.dst_handshake",
    ),
    Mistake(
        "compute kernel issues NoC reads",
        S,
        (
            (
                COMPUTE,
                "        cb_pop_front(cb_b, 1);\n",
                "        cb_pop_front(cb_b, 1);\n        noc_async_read_barrier();\n",
            ),
        ),
        "ttm.compute.dataflow_api",
    ),
    Mistake(
        "every core reads from tile 0",
        M,
        (
            (READER, "noc_async_read_tile(start_tile + i, a,", "noc_async_read_tile(i, a,"),
            (READER, "noc_async_read_tile(start_tile + i, b,", "noc_async_read_tile(i, b,"),
        ),
        "ttm.work.start_ignored",
    ),
    Mistake(
        "start tile not advanced between cores",
        M,
        ((HOST, "        start_tile += core_tiles;\n", ""),),
        "ttm.work.start_not_advanced",
    ),
    Mistake(
        "second core group gets no work",
        M,
        ((HOST, "core_group_1.contains(core) ? tiles_per_core_1 : tiles_per_core_2", "tiles_per_core_1"),),
        "ttm.work.group2_ignored",
    ),
    Mistake(
        "remainder tiles dropped",
        M,
        (
            (
                HOST,
                "    auto [num_cores, all_cores, core_group_1, core_group_2, "
                "tiles_per_core_1, tiles_per_core_2] =\n"
                "        split_work_to_cores(grid, n_tiles);\n",
                "    uint32_t num_cores = grid.x * grid.y;\n    uint32_t per_core = n_tiles / num_cores;\n",
            ),
            (HOST, "core_group_1.contains(core) ? tiles_per_core_1 : tiles_per_core_2", "per_core"),
        ),
        "ttm.work.remainder_dropped",
    ),
    Mistake(
        "CMake never links TT-Metalium",
        S,
        (
            ("CMakeLists.txt", "find_package(TT-Metalium REQUIRED)\n", ""),
            ("CMakeLists.txt", "PRIVATE TT::Metalium", "PRIVATE pthread"),
        ),
        "ttm.cmake.no_metalium",
    ),
]


@pytest.mark.parametrize("example", [S, M])
def test_correct_examples_pass_clean(example: str) -> None:
    assert check_project(_project(example)) == []


@pytest.mark.parametrize("mistake", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_mistake_is_caught_with_its_code(mistake: Mistake) -> None:
    diagnostics = check_project(_apply(mistake))
    codes = [d.code for d in diagnostics if d.is_error]
    assert mistake.code in codes, (mistake.name, [d.render() for d in diagnostics])
    caught = next(d for d in diagnostics if d.code == mistake.code)
    assert caught.hint and caught.file is not None and "ttm." in caught.code


def test_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 15 and len({m.code for m in CATALOGUE}) >= 15


def test_versioned_tables_accept_the_june_2026_api() -> None:
    files = dict(_project(S).files)
    files[COMPUTE] = files[COMPUTE].replace(
        "compute_kernel_hw_startup(cb_a, cb_b, cb_out);\n    add_init(cb_a, cb_b);",
        "binary_op_init_common(cb_a, cb_b, cb_out);\n    add_tiles_init(cb_a, cb_b);",
    )
    assert [d for d in check_project(Project(files), "2026-06") if d.is_error] == []
    removed = [d for d in check_project(Project(files), "0.81.1") if d.code == "ttm.api.removed"]
    assert {d.message.split("`")[1] for d in removed} == {"binary_op_init_common", "add_tiles_init"}
    assert all("0.81.1" in d.message for d in removed)


def test_legacy_cb_enum_is_a_warning_only() -> None:
    files = dict(_project(S).files)
    files[READER] = files[READER].replace("tt::CBIndex::c_0", "tt::CB::c_in0")
    diagnostics = check_project(Project(files))
    assert [d.code for d in diagnostics] == ["ttm.api.deprecated"]


def test_missing_cmake_and_host_are_reported() -> None:
    files = {p: t for p, t in _project(S).files.items() if p not in ("CMakeLists.txt", HOST)}
    codes = {d.code for d in check_project(Project(files))}
    assert {"ttm.project.no_cmake", "ttm.project.no_host"} <= codes
