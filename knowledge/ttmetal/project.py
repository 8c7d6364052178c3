"""A TT-Metal project: its files, their roles, and the one-string bundle that carries it through the loop.

The agent's state, checkpoints, traces and verdict store all key on one source string, so a multi-file
project travels as a *bundle*: each file preceded by a marker line `// ==== file: RELPATH ====`.
`pack` and `unpack` are exact inverses for any set of text files, and a project folder on disk,
a bundle and a mapping of files are interchangeable (`Project.from_dir`, `Project.from_bundle`).

Layout (the same as tt-metal's programming_examples): `kernels/dataflow/*.cpp` (reader and writer,
on the two data-movement RISC-Vs), `kernels/compute/*.cpp` (on the three TRISCs), one host `.cpp`
outside `kernels/`, and `CMakeLists.txt`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path, PurePosixPath

from kernelwright.errors import UserError
from knowledge.ttmetal.source import SourceFile

__all__ = ["BUNDLE_MARKER", "FileRole", "Project", "pack", "unpack", "valid_relpath"]

BUNDLE_MARKER = "// ==== file: {path} ===="
_MARKER = re.compile(r"^// ==== file: (?P<path>\S.*?) ====$", re.MULTILINE)
_SUFFIXES = frozenset({".cpp", ".cc", ".hpp", ".h", ".txt", ".cmake"})
_MAX_FILES = 64
_MAX_BYTES = 2_000_000


class FileRole(StrEnum):
    DATAFLOW = "dataflow"
    COMPUTE = "compute"
    HOST = "host"
    CMAKE = "cmake"
    OTHER = "other"


def valid_relpath(path: str) -> bool:
    """A relative POSIX path inside the project (no `..`, no absolute path, a known suffix)."""
    pure = PurePosixPath(path)
    return (
        bool(path)
        and not pure.is_absolute()
        and ".." not in pure.parts
        and "\\" not in path
        and (pure.suffix in _SUFFIXES or pure.name == "CMakeLists.txt")
    )


def pack(files: Mapping[str, str]) -> str:
    """One string holding every file (sorted by path, so equal projects give equal bundles)."""
    chunks = []
    for path in sorted(files):
        body = files[path]
        chunks.append(BUNDLE_MARKER.format(path=path) + "\n" + body + ("" if body.endswith("\n") else "\n"))
    return "".join(chunks)


def unpack(bundle: str) -> dict[str, str]:
    """The files of a bundle (empty when the text holds no marker)."""
    markers = list(_MARKER.finditer(bundle))
    files: dict[str, str] = {}
    for index, match in enumerate(markers):
        start = match.end() + 1
        end = markers[index + 1].start() if index + 1 < len(markers) else len(bundle)
        files[match.group("path").strip()] = bundle[start:end]
    return files


def role_of(path: str) -> FileRole:
    pure = PurePosixPath(path)
    if pure.name == "CMakeLists.txt":
        return FileRole.CMAKE
    parts = pure.parts
    if "kernels" in parts and pure.suffix in (".cpp", ".cc"):
        rest = parts[parts.index("kernels") + 1 :]
        if rest and rest[0] == "compute":
            return FileRole.COMPUTE
        if rest and rest[0] == "dataflow":
            return FileRole.DATAFLOW
        return FileRole.OTHER
    if pure.suffix in (".cpp", ".cc"):
        return FileRole.HOST
    return FileRole.OTHER


@dataclass
class Project:
    """The files of one project, by relative path."""

    files: dict[str, str]
    root: Path | None = None
    sources: dict[str, SourceFile] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = {path: SourceFile(path, text) for path, text in self.files.items()}

    @classmethod
    def from_bundle(cls, bundle: str) -> Project:
        return cls(unpack(bundle))

    @classmethod
    def from_dir(cls, root: Path) -> Project:
        """Read a project folder; raises `UserError` (with what to do) when it is not one."""
        if not root.is_dir():
            raise UserError(
                f"{root} is not a folder; pass the project folder (it holds kernels/ and a host .cpp)"
            )
        files: dict[str, str] = {}
        total = 0
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or any(p.startswith(".") or p == "build" for p in PurePosixPath(rel).parts):
                continue
            if not valid_relpath(rel):
                continue
            if len(files) >= _MAX_FILES:
                raise UserError(f"{root} holds more than {_MAX_FILES} source files; point at one project")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path} is not UTF-8 text: {exc}") from exc
            total += len(text)
            if total > _MAX_BYTES:
                raise UserError(f"{root} holds more than {_MAX_BYTES} bytes of source; point at one project")
            files[rel] = text
        if not any(role_of(p) in (FileRole.DATAFLOW, FileRole.COMPUTE, FileRole.HOST) for p in files):
            raise UserError(
                f"{root} holds no TT-Metal sources: expected kernels/dataflow/*.cpp, kernels/compute/*.cpp "
                "and a host .cpp (the layout of tt-metal's programming_examples)"
            )
        return cls(files, root=root)

    def bundle(self) -> str:
        return pack(self.files)

    def write(self, root: Path) -> None:
        """Write the files under `root` (paths were validated when the project was built)."""
        for rel, text in self.files.items():
            if not valid_relpath(rel):
                raise UserError(f"refusing to write {rel!r}: not a relative source path inside the project")
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def paths(self, role: FileRole) -> list[str]:
        return sorted(p for p in self.files if role_of(p) == role)

    @cached_property
    def host_files(self) -> list[SourceFile]:
        return [self.sources[p] for p in self.paths(FileRole.HOST)]

    @cached_property
    def kernel_files(self) -> list[SourceFile]:
        return [self.sources[p] for p in (*self.paths(FileRole.DATAFLOW), *self.paths(FileRole.COMPUTE))]

    def find_kernel(self, host_path: str) -> str | None:
        """The project file a host `CreateKernel` path names (tt-metal paths are relative to its root,
        so `tt_metal/programming_examples/x/kernels/dataflow/r.cpp` names `kernels/dataflow/r.cpp`)."""
        wanted = host_path.strip().lstrip("./")
        matches = [p for p in self.files if wanted == p or wanted.endswith("/" + p)]
        return max(matches, key=len) if matches else None
