"""Fast static checks of a candidate module, before any compiler runs (nothing is executed).

The hardened anti-hack checks belong to the verifier; these catch what makes a candidate pointless to
compile: no `ModelNew`, a Triton candidate with no `@triton.jit` kernel, a PTX/CUDA candidate whose
kernel source cannot be found, or a CUDA/PTX candidate that falls back to a torch extension build.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from kernelwright.domain import Diagnostic, Severity, Target
from sandbox.hack_checks import check_hacks
from sandbox.kernel_source import find_kernel_sources

__all__ = ["ADVISORY_SOURCES", "blocking", "check_candidate_source", "uses_extension_build"]

# Findings of these checkers are shown to the model but never stop the compiler: ptxas stays the judge.
ADVISORY_SOURCES = frozenset({"ptx-check"})


def blocking(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """The errors that make compiling pointless (advisory checkers' findings excluded)."""
    return [d for d in diagnostics if d.is_error and d.source not in ADVISORY_SOURCES]


def _ptx_table_check(source: str, target: Target) -> list[Diagnostic]:
    """Run the PTX syntax-table checker on every PTX string, located on the candidate's Python lines."""
    from knowledge.ptx import check_ptx

    sources, _ = find_kernel_sources(source, target)
    found: list[Diagnostic] = []
    for kernel in sources:
        if kernel.kind != "ptx":
            continue
        for diag in check_ptx(kernel.text):
            line = diag.line
            found.append(
                diag.model_copy(
                    update={
                        "file": "candidate.py",
                        "line": kernel.python_line(line) if line is not None else kernel.call_line,
                        "column": kernel.python_column(line, diag.column) if line and diag.column else None,
                        "message": f"{diag.message} ({kernel.label}, line {line})" if line else diag.message,
                    }
                )
            )
    return found


_EXTENSION_BUILDERS = {"load_inline", "cpp_extension"}


def uses_extension_build(source: str) -> bool:
    """Whether the module builds a torch C++/CUDA extension (`load_inline`, `cpp_extension.load`).

    KernelBench's own solutions do; kernelwright accepts them on the cuda target for compatibility, but
    they cost a full extension build per candidate, and the guard must profile their calls to see
    their kernels launch (they bypass our launch API).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        name = (
            node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        )
        if name in _EXTENSION_BUILDERS:
            return True
    return False


def _is_triton_jit(decorator: ast.expr) -> bool:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(node, ast.Attribute) and node.attr == "jit") or (
        isinstance(node, ast.Name) and node.id == "jit"
    )


def check_candidate_source(source: str, target: Target) -> list[Diagnostic]:
    """Diagnostics for a candidate module that parses; an empty list means: go compile it."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [
            Diagnostic(
                code="python.syntax",
                message=exc.msg or "invalid syntax",
                line=exc.lineno,
                column=exc.offset,
                file="candidate.py",
                source="check",
            )
        ]
    found: list[Diagnostic] = []
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if not any(c.name == "ModelNew" for c in classes):
        found.append(
            Diagnostic(
                code="check.no_model_new",
                message="the module defines no top-level class ModelNew",
                hint="define `class ModelNew(torch.nn.Module)` with the same constructor and "
                "forward signature as Model",
                file="candidate.py",
                source="check",
            )
        )
    if target == Target.TRITON:
        kernels = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and any(_is_triton_jit(d) for d in n.decorator_list)
        ]
        if not kernels:
            found.append(
                Diagnostic(
                    code="check.no_triton_kernel",
                    file="candidate.py",
                    source="check",
                    message="no @triton.jit kernel found in the module",
                    hint="write the computation as a @triton.jit kernel launched from forward",
                )
            )
    if target == Target.CUDA and uses_extension_build(source):
        found.append(
            Diagnostic(
                code="check.extension_build",
                severity=Severity.WARNING,
                file="candidate.py",
                source="check",
                message="builds a torch extension: accepted for KernelBench compatibility, but it costs a "
                "full extension build per candidate and its launches cannot be verified",
                hint="pass the kernel source to sandbox.runtime.load_cuda (compiled in under a second)",
            )
        )
        found.extend(check_hacks(source, target))
        return found
    if target in (Target.PTX, Target.CUDA):
        for node in ast.walk(tree):
            name = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.id
                if isinstance(node, ast.Name)
                else None
            )
            if name in _EXTENSION_BUILDERS:
                found.append(
                    Diagnostic(
                        code="check.extension_build",
                        file="candidate.py",
                        line=getattr(node, "lineno", None),
                        source="check",
                        message=f"`{name}` builds a torch extension, which a PTX target cannot use",
                        hint="pass the PTX to sandbox.runtime.load_ptx instead",
                    )
                )
                break
        _, diagnostics = find_kernel_sources(source, target)
        found.extend(diagnostics)
        if target == Target.PTX and not any(d.is_error for d in diagnostics):
            found.extend(_ptx_table_check(source, target))
    found.extend(check_hacks(source, target))  # static anti-hack policy: `hack.*` codes
    return found
