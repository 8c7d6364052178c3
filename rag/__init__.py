"""Retrieval: find guide and manual excerpts, with citations, to put in front of the model.

`rag.search(query, collection=..., k=..., settings=...)` is the library call behind
`kernelwright knowledge search`; it is imported lazily so that `import rag` (which the agent does
through `rag.retriever`) does not load Chroma.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelwright.domain import Hit
    from kernelwright.settings import Settings
    from rag.hybrid import Reranker

__all__ = ["search"]


def search(
    query: str,
    *,
    collection: str = "builtin",
    k: int = 5,
    settings: Settings,
    reranker: Reranker | None = None,
) -> list[Hit]:
    """The `k` best hits of `collection` for `query` (see `rag.hybrid.search`)."""
    from rag.hybrid import search as hybrid_search

    return hybrid_search(query, collection=collection, k=k, settings=settings, reranker=reranker)
