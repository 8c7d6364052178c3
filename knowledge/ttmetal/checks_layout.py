"""Project layout and CMake: the files a TT-Metal project needs, and a CMakeLists that builds the host."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from kernelwright.domain import Diagnostic
from knowledge.ttmetal._diag import error, warning
from knowledge.ttmetal.project import FileRole, Project

__all__ = ["check_layout"]


def check_layout(project: Project) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    hosts = project.paths(FileRole.HOST)
    if not hosts:
        found.append(
            error(
                "ttm.project.no_host",
                None,
                None,
                "the project has no host program (a .cpp outside kernels/)",
                "add the host .cpp that creates the buffers, circular buffers and kernels and "
                "runs the program",
            )
        )
    if not project.paths(FileRole.DATAFLOW):
        found.append(
            error(
                "ttm.project.no_dataflow",
                None,
                None,
                "the project has no data-movement kernel under kernels/dataflow/",
                "add a reader (DRAM -> CB) and a writer (CB -> DRAM) under kernels/dataflow/",
            )
        )
    cmake = project.files.get("CMakeLists.txt")
    if cmake is None:
        found.append(
            error(
                "ttm.project.no_cmake",
                None,
                None,
                "the project has no CMakeLists.txt at its root",
                "add one: find_package(TT-Metalium REQUIRED), add_executable(NAME host.cpp), "
                "target_link_libraries(NAME PRIVATE TT::Metalium)",
            )
        )
        return found
    code = re.sub(r"#[^\n]*", "", cmake)
    if "TT-Metalium" not in code and "TT::Metalium" not in code and "tt_metal" not in code:
        found.append(
            error(
                "ttm.cmake.no_metalium",
                "CMakeLists.txt",
                None,
                "CMakeLists.txt neither finds nor links TT-Metalium",
                "find_package(TT-Metalium REQUIRED) and target_link_libraries(NAME PRIVATE TT::Metalium)",
            )
        )
    for host in hosts:
        if PurePosixPath(host).name not in code:
            found.append(
                warning(
                    "ttm.cmake.host_not_built",
                    "CMakeLists.txt",
                    None,
                    f"CMakeLists.txt does not mention the host source {host}",
                    f"add_executable(NAME {host})",
                )
            )
    return found
