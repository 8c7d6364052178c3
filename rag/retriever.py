"""What the agent retrieves through, and the retriever that needs nothing installed.

The agent depends only on the `Retriever` protocol, so the built-in lexical index, an index over a
user's own documents, or a vector store can be swapped without touching the graph.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol, runtime_checkable

from kernelwright.domain import Hit
from knowledge import guides_dir
from rag.lexical import LexicalIndex

__all__ = ["Retriever", "builtin_retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that returns the `k` best excerpts for a query, best first."""

    def search(self, query: str, k: int = 5) -> list[Hit]: ...


@cache
def builtin_retriever() -> LexicalIndex:
    """BM25 over the guides shipped in `knowledge/guides` (built once per process; sources are the
    guide file names, e.g. `ptx-basics.md`)."""
    folder = guides_dir()
    return LexicalIndex.from_paths(sorted(folder.glob("*.md")), root=folder, collection="builtin")
