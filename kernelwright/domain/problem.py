"""A KernelBench-style problem: Python source defining `Model`, `get_inputs` and `get_init_inputs`.

Problems are *validated* here by parsing, never executed: problem source only ever runs inside a
sandbox worker. Loaders accept a `.py` file, a KernelBench checkout (`levelN/` folders) and rows in
the Hugging Face dataset schema (`code, level, name, problem_id`) as JSONL or parquet.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from kernelwright.errors import ProblemError, UnknownNameError

__all__ = ["Problem", "find_problem", "load_problems"]

_REQUIRED = {"Model": ast.ClassDef, "get_inputs": ast.FunctionDef, "get_init_inputs": ast.FunctionDef}
_FILE_NAME = re.compile(r"^(?P<id>\d+)_(?P<name>.+?)\.py$")
_LEVEL_DIR = re.compile(r"^level(?P<level>\d+)$")
MAX_SOURCE_BYTES = 1_000_000


class Problem(BaseModel):
    """One problem. `key` (e.g. `L1/19`) identifies it inside a suite."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: str
    level: int | None = None
    problem_id: int | None = None
    origin: str | None = None  # where it was loaded from (path, path#row)

    @field_validator("source")
    @classmethod
    def _check_contract(cls, source: str) -> str:
        check_problem_source(source)
        return source

    @property
    def key(self) -> str:
        if self.level is not None and self.problem_id is not None:
            return f"L{self.level}/{self.problem_id}"
        return self.name

    @classmethod
    def from_file(cls, path: Path, level: int | None = None) -> Problem:
        if not path.is_file():
            raise ProblemError(f"problem file {path} does not exist")
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise ProblemError(f"problem file {path} is larger than {MAX_SOURCE_BYTES} bytes")
        match = _FILE_NAME.match(path.name)
        if level is None and (lm := _LEVEL_DIR.match(path.parent.name)):
            level = int(lm["level"])
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ProblemError(f"problem file {path} is not UTF-8 text: {exc}") from exc
        try:
            return cls(
                name=match["name"] if match else path.stem,
                source=source,
                level=level,
                problem_id=int(match["id"]) if match else None,
                origin=str(path),
            )
        except ValueError as exc:
            raise ProblemError(f"{path}: {_first_error(exc)}") from exc

    @classmethod
    def from_row(cls, row: Mapping[str, Any], origin: str | None = None) -> Problem:
        """A row of the Hugging Face KernelBench schema: `code`, `level`, `name`, `problem_id`."""
        missing = [k for k in ("code", "level", "name", "problem_id") if k not in row]
        if missing:
            raise ProblemError(
                f"{origin or 'row'}: missing field(s) {', '.join(missing)}; "
                "rows need code, level, name, problem_id (the KernelBench dataset schema)"
            )
        name = str(row["name"])
        match = _FILE_NAME.match(name)
        try:
            return cls(
                name=match["name"] if match else name.removesuffix(".py"),
                source=str(row["code"]),
                level=int(row["level"]),
                problem_id=int(row["problem_id"]),
                origin=origin,
            )
        except ValueError as exc:
            raise ProblemError(f"{origin or 'row'} ({name}): {_first_error(exc)}") from exc


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        details = errors()
        if details:
            return str(details[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def check_problem_source(source: str) -> None:
    """Raise `ProblemError` unless `source` parses and defines the KernelBench contract at top level."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise ProblemError(f"problem source is larger than {MAX_SOURCE_BYTES} bytes")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ProblemError(f"problem source does not parse: line {exc.lineno}: {exc.msg}") from exc
    found = {
        node.name: type(node)
        for node in tree.body
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }
    missing = [name for name, kind in _REQUIRED.items() if found.get(name) is not kind]
    if missing:
        raise ProblemError(
            f"problem source lacks top-level {', '.join(missing)}; a KernelBench problem defines "
            "`class Model(nn.Module)`, `def get_inputs()` and `def get_init_inputs()`"
        )


def _iter_rows(path: Path) -> Iterator[tuple[Mapping[str, Any], str]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ProblemError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
                if not isinstance(row, dict):
                    raise ProblemError(f"{path}:{number}: expected a JSON object per line")
                yield row, f"{path}#{number}"
    else:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ProblemError(f"reading {path} needs pyarrow: pip install 'kernelwright[parquet]'") from exc
        table = pq.read_table(path)
        for number, row in enumerate(table.to_pylist(), start=1):
            yield row, f"{path}#{number}"


def load_problems(source: Path) -> list[Problem]:
    """Every problem in `source`: a `.py` file, a `.jsonl`/`.parquet` file, or a folder.

    A folder may be a KernelBench checkout (holding `levelN/` folders, directly or under
    `KernelBench/`), a single `levelN/` folder, or any folder of problem `.py` files.
    """
    if not source.exists():
        raise ProblemError(f"{source} does not exist")
    if source.is_file():
        if source.suffix == ".py":
            return [Problem.from_file(source)]
        if source.suffix in (".jsonl", ".parquet"):
            return [Problem.from_row(row, origin) for row, origin in _iter_rows(source)]
        raise ProblemError(f"{source}: expected a .py, .jsonl or .parquet file")
    root = source / "KernelBench" if (source / "KernelBench").is_dir() else source
    level_dirs = sorted(
        (d for d in root.iterdir() if d.is_dir() and _LEVEL_DIR.match(d.name)),
        key=lambda d: int(d.name.removeprefix("level")),
    )
    files: Iterable[Path]
    if level_dirs:
        files = [f for d in level_dirs for f in _sorted_problem_files(d)]
    else:
        files = _sorted_problem_files(root)
    problems = [Problem.from_file(f) for f in files]
    if not problems:
        raise ProblemError(f"{source} holds no problem files (.py) and no levelN/ folders")
    return problems


def _sorted_problem_files(folder: Path) -> list[Path]:
    def order(path: Path) -> tuple[int, str]:
        match = _FILE_NAME.match(path.name)
        return (int(match["id"]) if match else 1 << 30, path.name)

    return sorted((p for p in folder.glob("*.py") if not p.name.startswith("_")), key=order)


def find_problem(spec: str) -> Problem:
    """Resolve a problem spec: `path.py`, or `SOURCE#KEY` where KEY is `L1/19`, `1/19` or a name."""
    path_part, _, key = spec.partition("#")
    problems = load_problems(Path(path_part))
    if not key:
        if len(problems) == 1:
            return problems[0]
        raise UnknownNameError(
            f"{path_part} holds {len(problems)} problems; pick one as {path_part}#L<level>/<id> "
            f"(e.g. {path_part}#{problems[0].key}) or {path_part}#<name>"
        )
    wanted = key if key.startswith("L") or "/" not in key else f"L{key}"
    for problem in problems:
        if wanted in (problem.key, problem.name) or key == problem.name:
            return problem
    raise UnknownNameError(
        f"no problem {key!r} in {path_part}; `kernelwright problems list {path_part}` lists them"
    )
