"""A retrieved piece of context with its citation (source file and 1-based inclusive line range)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Hit"]


class Hit(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    start_line: int
    end_line: int
    score: float
    text: str
    collection: str = "builtin"
    heading: str | None = None

    @property
    def citation(self) -> str:
        return f"{self.source}:{self.start_line}-{self.end_line}"
