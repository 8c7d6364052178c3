"""A structured message about a candidate: from extraction, static checks, compilers or the verifier."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["Diagnostic", "Severity"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Diagnostic(BaseModel):
    """One finding, located where possible. `code` is stable (e.g. `ptxas.error`, `extract.incomplete`)."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    severity: Severity = Severity.ERROR
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    source: str | None = None  # who produced it: "ptxas", "nvcc", "extract", "check", "verify"...

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def render(self) -> str:
        """One human/LLM-readable line (plus hint), like a compiler would print it."""
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        text = f"{where}{self.severity.value} [{self.code}] {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
