"""Turning ptxas / nvcc output into `Diagnostic`s located in the candidate's Python file.

The compilers report lines of the temporary `.ptx`/`.cu` file we wrote; the model only ever saw its
Python module, so every located message is moved to the Python line (and column, where known) that
the kernel line came from (`KernelSource.line_map`), and says which kernel line it was. Messages
with an obvious fix carry a short hint.

Formats handled (as printed by CUDA 12/13):

    ptxas relu.ptx, line 31; error   : Not a name of any known instruction: 'maxx'
    ptxas warning : Registers are spilled to local memory in function 'k', 8 bytes spill stores, ...
    ptxas fatal   : Ptx assembly aborted due to errors
    kernel.cu(4): error: identifier "bb" is undefined          (cicc; then the source line and a caret)
    kernel.cu(3): warning #177-D: variable "x" was declared but never referenced
    kernel.cu:1:10: fatal error: nothere.h: No such file or directory   (the host preprocessor)
    nvcc fatal   : Unknown option '-Wall'
"""

from __future__ import annotations

import re
from pathlib import PurePath

from kernelwright.domain import Diagnostic, Severity
from sandbox.kernel_source import CANDIDATE_FILE, KernelSource

__all__ = ["hint_for", "parse_nvcc_output", "parse_ptxas_output"]

_PTXAS = re.compile(
    r"^ptxas(?:\s+(?P<file>.+?),\s*line\s+(?P<line>\d+);)?\s*(?P<sev>error|warning|fatal|info)\s*:\s*(?P<msg>.*)$"
)
_CICC = re.compile(
    r"^(?P<file>.+?)\((?P<line>\d+)\):\s*(?P<sev>catastrophic error|error|warning|remark|note)"
    r"(?:\s*#(?P<number>[\w-]+))?:\s*(?P<msg>.*)$"
)
_GCC = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+):\s*(?P<sev>fatal error|error|warning):\s*(?P<msg>.*)$"
)
_NVCC_FATAL = re.compile(r"^nvcc\s+(?P<sev>fatal|error|warning)\s*:\s*(?P<msg>.*)$")
_CARET = re.compile(r"^(?P<pad>\s*)\^")
_ABORTED = "Ptx assembly aborted due to errors"

_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"Unknown symbol"),
        "declare it before use (e.g. `.reg .f32 %f<10>;` declares %f0..%f9; parameters are named by their "
        ".param name) and check the spelling",
    ),
    (
        re.compile(r"Not a name of any known instruction"),
        "check the instruction's spelling and form against the PTX ISA (e.g. `max.f32`, `ld.global.f32`)",
    ),
    (
        re.compile(r"Arguments mismatch for instruction"),
        "operand types and sizes must match the instruction's type suffix: .f32 instructions take .f32 "
        "registers, addresses are .u64/.b64, float immediates are written 0f3F800000 (1.0)",
    ),
    (
        re.compile(
            r"not supported on \.target|requires \.target|higher than default SM|cannot be compiled for"
        ),
        "check `.target` (and `.version`) in the PTX header: the instruction needs a newer .target than "
        "declared, and the .target must not be newer than the GPU (sm_90 for H100/H200)",
    ),
    (
        re.compile(r"requires PTX ISA \.version|does not support \.target"),
        "raise `.version` in the PTX header (e.g. `.version 8.0` for sm_90 features)",
    ),
    (
        re.compile(r"Unsupported \.version"),
        "lower `.version` in the PTX header to one this toolkit supports (e.g. 8.0)",
    ),
    (
        re.compile(r"uses too much shared data"),
        "static shared memory is limited to 48 KiB per block; use `.extern .shared` / `extern __shared__` "
        "and pass shared_mem=... at launch for more",
    ),
    (
        re.compile(r"Registers are spilled|spill stores"),
        "register spills to local memory are slow: reduce live values or unrolling, or use fewer threads",
    ),
    (
        re.compile(r'identifier ".*" is undefined'),
        "declare it, or include the header that does (only CUDA device headers are available)",
    ),
    (
        re.compile(r"No such file or directory|cannot open source file"),
        "only the CUDA toolkit's headers are available; keep the kernel self-contained",
    ),
    (re.compile(r"syntax error|expected a"), "check the syntax at this line (and the one before it)"),
]


def hint_for(message: str) -> str | None:
    """A short fix suggestion for a compiler message, where one is obvious."""
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return None


def _severity(word: str) -> Severity:
    if word in ("warning",):
        return Severity.WARNING
    if word in ("remark", "info", "note"):
        return Severity.INFO
    return Severity.ERROR


def _same_file(reported: str, expected: str | None) -> bool:
    if expected is None:
        return True
    return PurePath(reported).name == PurePath(expected).name


def _locate(
    tool: str,
    reported_file: str | None,
    kernel_line: int | None,
    kernel_column: int | None,
    source: KernelSource | None,
    expected_file: str | None,
    filename: str,
) -> tuple[str | None, int | None, int | None, str]:
    """(file, line, column, suffix for the message) of a located compiler message."""
    if kernel_line is None:
        return (filename if source else None), None, None, ""
    if source is not None and reported_file is not None and _same_file(reported_file, expected_file):
        column = source.python_column(kernel_line, kernel_column) if kernel_column else None
        return filename, source.python_line(kernel_line), column, f" ({source.label}, line {kernel_line})"
    if reported_file is not None and "tmpxft" in reported_file:
        # nvcc's own intermediate PTX: its lines mean nothing to the candidate.
        return None, None, None, f" (in the PTX generated by {tool}, line {kernel_line}: check inline asm)"
    return reported_file, kernel_line, kernel_column, ""


def parse_ptxas_output(
    output: str,
    *,
    source: KernelSource | None = None,
    ptx_file: str | None = None,
    filename: str = CANDIDATE_FILE,
) -> list[Diagnostic]:
    """Diagnostics from ptxas output; lines of `ptx_file` are mapped into `source`'s Python lines.

    `ptxas info` lines (resource usage) are not diagnostics: they belong in the compile log. The
    closing "Ptx assembly aborted due to errors" is dropped when the real errors were reported.
    """
    found: list[Diagnostic] = []
    for raw in output.splitlines():
        match = _PTXAS.match(raw.strip())
        if match is None or match["sev"] == "info":
            continue
        found.append(_ptxas_diagnostic(match, source, ptx_file, filename, "ptxas"))
    return _drop_redundant_abort(found)


def _ptxas_diagnostic(
    match: re.Match[str], source: KernelSource | None, ptx_file: str | None, filename: str, tool: str
) -> Diagnostic:
    message = match["msg"].strip()
    line = int(match["line"]) if match["line"] else None
    file, py_line, column, suffix = _locate(tool, match["file"], line, None, source, ptx_file, filename)
    severity = _severity(match["sev"])
    return Diagnostic(
        code="ptxas.warning" if severity == Severity.WARNING else "ptxas.error",
        message=message + suffix,
        severity=severity,
        file=file,
        line=py_line,
        column=column,
        hint=hint_for(message),
        source="ptxas",
    )


def _drop_redundant_abort(found: list[Diagnostic]) -> list[Diagnostic]:
    others = [d for d in found if d.is_error and not d.message.startswith(_ABORTED)]
    if not others:
        return found
    return [d for d in found if not d.message.startswith(_ABORTED)]


def parse_nvcc_output(
    output: str,
    *,
    source: KernelSource | None = None,
    cu_file: str | None = None,
    filename: str = CANDIDATE_FILE,
) -> list[Diagnostic]:
    """Diagnostics from nvcc output (cicc front end, host preprocessor, ptxas, nvcc itself)."""
    lines = output.splitlines()
    found: list[Diagnostic] = []
    index = 0
    while index < len(lines):
        text = lines[index].rstrip()
        stripped = text.strip()
        cicc = _CICC.match(stripped)
        if cicc is not None:
            block: list[str] = []
            index += 1
            while index < len(lines) and lines[index].strip() and not _starts_message(lines[index]):
                block.append(lines[index].rstrip())
                index += 1
            found.append(_cicc_diagnostic(cicc, block, source, cu_file, filename))
            continue
        index += 1
        gcc = _GCC.match(stripped)
        if gcc is not None:
            kernel_line, kernel_column = int(gcc["line"]), int(gcc["col"])
            file, py_line, column, suffix = _locate(
                "nvcc", gcc["file"], kernel_line, kernel_column, source, cu_file, filename
            )
            severity = _severity("warning" if gcc["sev"] == "warning" else "error")
            found.append(
                Diagnostic(
                    code="nvcc.warning" if severity == Severity.WARNING else "nvcc.error",
                    message=gcc["msg"].strip() + suffix,
                    severity=severity,
                    file=file,
                    line=py_line,
                    column=column,
                    hint=hint_for(gcc["msg"]),
                    source="nvcc",
                )
            )
            continue
        ptxas = _PTXAS.match(stripped)
        if ptxas is not None:
            if ptxas["sev"] != "info":
                found.append(_ptxas_diagnostic(ptxas, source, "\0never", filename, "nvcc"))
            continue
        fatal = _NVCC_FATAL.match(stripped)
        if fatal is not None:
            severity = _severity(fatal["sev"])
            found.append(
                Diagnostic(
                    code="nvcc.warning" if severity == Severity.WARNING else "nvcc.error",
                    message=fatal["msg"].strip(),
                    severity=severity,
                    file=filename if source else None,
                    hint=hint_for(fatal["msg"]),
                    source="nvcc",
                )
            )
    return _drop_redundant_abort(found)


def _starts_message(line: str) -> bool:
    stripped = line.strip()
    return any(p.match(stripped) for p in (_CICC, _GCC, _PTXAS, _NVCC_FATAL))


def _cicc_diagnostic(
    match: re.Match[str],
    block: list[str],
    source: KernelSource | None,
    cu_file: str | None,
    filename: str,
) -> Diagnostic:
    """One cicc message; `block` holds its continuation lines, the echoed source line and the caret."""
    message = match["msg"].strip()
    kernel_column: int | None = None
    continuation = block
    if len(block) >= 2 and _CARET.match(block[-1]) and block[-1].strip() == "^":
        caret = _CARET.match(block[-1])
        assert caret is not None
        # The echoed source line is printed with a two-space indent; the caret lines up under it.
        kernel_column = max(len(caret["pad"]) - 2, 0) + 1
        continuation = block[:-2]
    if continuation:
        message += " " + " ".join(line.strip() for line in continuation)
    kernel_line = int(match["line"])
    file, py_line, column, suffix = _locate(
        "nvcc", match["file"], kernel_line, kernel_column, source, cu_file, filename
    )
    severity = _severity(match["sev"])
    code = {Severity.WARNING: "nvcc.warning", Severity.INFO: "nvcc.note"}.get(severity, "nvcc.error")
    if match["number"]:
        message = f"{message} [#{match['number']}]"
    return Diagnostic(
        code=code,
        message=message + suffix,
        severity=severity,
        file=file,
        line=py_line,
        column=column,
        hint=hint_for(message),
        source="nvcc",
    )
