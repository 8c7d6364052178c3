"""Multi-core work split: each core's tile range, taken together, must cover the work exactly once.

The host gives every core a start tile and a count (runtime arguments set in a loop over cores). The
ranges overlap when the start is not advanced from one core to the next, or when a kernel ignores
its start and walks from tile 0; they leave tiles out when the count is `n / cores` with the
remainder dropped, or when `split_work_to_cores`' second core group gets no work.
"""

from __future__ import annotations

import re

from kernelwright.domain import Diagnostic
from knowledge.ttmetal._diag import error
from knowledge.ttmetal.model import ProjectModel
from knowledge.ttmetal.source import Call, SourceFile, normalise

__all__ = ["check_work_split"]

_START = re.compile(r"(?:^|_)(?:start|offset|first|begin)(?:_|$)|^start|Start|Offset", re.IGNORECASE)
_SPLIT = re.compile(
    r"auto\s*\[\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\]\s*=\s*"
    r"(?:[\w:]*::)?split_work_to_cores\s*\("
)


def check_work_split(model: ProjectModel) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for host in model.project.host_files:
        looped = [c for c in host.calls_named("SetRuntimeArgs") if c.loops]
        if not looped:
            continue
        found += _split_groups(host)
        starts: set[str] = set()
        for call in looped:
            values = call.args[-1].strip()
            if not (values.startswith("{") and values.endswith("}")):
                continue
            for value in (normalise(v) for v in values[1:-1].split(",")):
                if re.fullmatch(r"[A-Za-z_]\w*", value) and _START.search(value):
                    starts.add(value)
                    problem = _start_problem(host, call, value)
                    if problem is not None:
                        found.append(problem)
        found += _remainder(host, looped)
        found += _kernels_ignore_start(model, starts)
    return _unique(found)


def _start_problem(host: SourceFile, call: Call, start: str) -> Diagnostic | None:
    loop = call.loops[-1]
    body = host.code[loop.start : loop.end]
    header = loop.header
    declared_in_body = re.search(rf"\b{start}\s*=", body) is not None
    advanced = re.search(rf"\b{start}\s*(?:\+=|=\s*{start}\s*\+|\+\+)|\+\+\s*{start}\b", body + header)
    if advanced is not None:
        return None
    if declared_in_body and re.search(rf"\b{start}\s*=\s*[^;]*[*+]", body):
        return None  # computed from the core's index, e.g. start = i * per_core
    return error(
        "ttm.work.start_not_advanced",
        host.path,
        call.line,
        f"`{start}` is passed to every core but never advanced inside the loop over cores: "
        "all cores get the same tile range (the work is done several times, the rest never)",
        f"after setting a core's args, advance it: {start} += tiles_for_this_core;",
    )


def _remainder(host: SourceFile, looped: list[Call]) -> list[Diagnostic]:
    if "split_work_to_cores" in host.code:
        return []
    for name, value in host.assignments.items():
        division = re.fullmatch(r"\(?\s*([A-Za-z_]\w*)\s*\)?\s*/\s*\(?\s*([A-Za-z_]\w*)\s*\)?", value.strip())
        if division is None:
            continue
        dividend, divisor = division.groups()
        if re.search(rf"\b{dividend}\s*%\s*{divisor}\b", host.code):
            continue  # the remainder is handled somewhere
        bodies = [host.code[c.loops[-1].start : c.loops[-1].end] for c in looped]
        if any(re.search(rf"\b{name}\b", body) for body in bodies):
            line = host.line_of(host.code.find(value))
            return [
                error(
                    "ttm.work.remainder_dropped",
                    host.path,
                    line,
                    f"`{name} = {value}` rounds down: when the tiles do not divide evenly among the cores, "
                    "the last tiles are never processed",
                    "give the remainder to some cores (split_work_to_cores(grid, n_tiles) returns two "
                    "core groups with per-core counts), or check divisibility with TT_FATAL",
                )
            ]
    return []


def _split_groups(host: SourceFile) -> list[Diagnostic]:
    match = _SPLIT.search(host.code)
    if match is None:
        return []
    group2, per_core2 = match.group(4), match.group(6)
    rest = host.code[match.end() :]
    if re.search(rf"\b{per_core2}\b", rest) is None:
        return [
            error(
                "ttm.work.group2_ignored",
                host.path,
                host.line_of(match.start()),
                f"split_work_to_cores returns a second core group (`{group2}`, `{per_core2}` "
                f"tiles each) that "
                "is never given work: its tiles are never processed",
                f"in the loop over cores use {per_core2} for cores in {group2} "
                f"({group2}.contains(core)) and advance the start tile by it",
            )
        ]
    return []


def _kernels_ignore_start(model: ProjectModel, starts: set[str]) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for kernel in model.kernels:
        for name, symbol in kernel.symbols.items():
            if symbol not in starts:
                continue
            uses = len(re.findall(rf"\b{re.escape(name)}\b", kernel.source.code))
            if uses <= 1:
                line = kernel.source.line_of(kernel.source.code.find(name))
                found.append(
                    error(
                        "ttm.work.start_ignored",
                        kernel.path,
                        line,
                        f"the kernel reads its start tile `{name}` but never uses it: every core processes "
                        "tiles from 0, so ranges overlap",
                        f"offset the tile index by it: for (i = 0; i < n; ++i) read tile {name} + i",
                    )
                )
    return found


def _unique(found: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str | None, int | None]] = set()
    out = []
    for diag in found:
        key = (diag.code, diag.file, diag.line)
        if key not in seen:
            seen.add(key)
            out.append(diag)
    return out
