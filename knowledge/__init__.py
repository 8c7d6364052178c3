"""Built-in knowledge: short guides written for this project, shipped as package data.

They give the retriever something useful to cite with no downloads: PTX, CUDA, Triton and TT-Metal
conventions and the compiler errors models most often hit.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["guides_dir"]


def guides_dir() -> Path:
    """The folder holding the packaged guides (`*.md`); it sits next to this file when installed."""
    return Path(__file__).resolve().parent / "guides"
