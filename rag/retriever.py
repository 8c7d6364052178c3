"""What the agent retrieves through, and the retriever that needs nothing installed.

The agent depends only on the `Retriever` protocol, so the built-in lexical index, an index over a
user's own documents, or a vector store can be swapped without touching the graph.
"""

from __future__ import annotations

from functools import cache
from typing import Protocol, runtime_checkable

from kernelwright.domain import Hit
from kernelwright.settings import Settings
from knowledge import guides_dir
from rag.lexical import LexicalIndex

__all__ = ["Retriever", "builtin_retriever", "default_retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Anything that returns the `k` best excerpts for a query, best first."""

    def search(self, query: str, k: int = 5) -> list[Hit]: ...


@cache
def builtin_retriever() -> LexicalIndex:
    """BM25 over the built-in knowledge (built once per process): the guides shipped in
    `knowledge/guides` (sources are their file names, e.g. `ptx-basics.md`) and the PTX syntax tables
    rendered per instruction (`ptx-isa/<mnemonic>.md`, rendered in memory, cut exactly as ingesting
    them would cut them, so both retrievers cite the same line ranges)."""
    from knowledge.ptx_docs import ptx_chunks

    folder = guides_dir()
    guides = LexicalIndex.from_paths(sorted(folder.glob("*.md")), root=folder, collection="builtin")
    return LexicalIndex([*guides.chunks, *ptx_chunks()], collection="builtin")


def default_retriever(settings: Settings, collection: str = "builtin") -> Retriever:
    """The hybrid store's `collection` when it has been ingested (`kernelwright knowledge ingest
    --builtin` for the guides), else the in-memory BM25 index over the guides: retrieval works with
    no ingest step, and gets vectors as soon as there are some. Checking costs one SQLite query;
    Chroma is loaded only if the collection exists."""
    from rag.fts import FtsStore

    if FtsStore(settings.rag_db).collection(collection) is None:
        return builtin_retriever()
    from rag.hybrid import HybridRetriever

    return HybridRetriever(settings=settings, collection=collection)
