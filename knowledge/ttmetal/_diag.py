"""One constructor for the checks' diagnostics, so every finding has a file, a code and a hint."""

from __future__ import annotations

from kernelwright.domain import Diagnostic, Severity

__all__ = ["SOURCE", "error", "warning"]

SOURCE = "ttmetal-check"


def error(code: str, file: str | None, line: int | None, message: str, hint: str | None) -> Diagnostic:
    return Diagnostic(code=code, message=message, file=file, line=line, hint=hint, source=SOURCE)


def warning(code: str, file: str | None, line: int | None, message: str, hint: str | None) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, file=file, line=line, hint=hint, source=SOURCE, severity=Severity.WARNING
    )
