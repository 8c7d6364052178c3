"""Hybrid search: FTS5 (exact kernel tokens) and vectors (paraphrases), fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al. 2009) adds `1 / (RRF_K + rank)` over the two ranked lists:
it needs no calibration between BM25 scores and cosine similarities, which live on unrelated
scales, and a chunk found by both lists rises above one found by either. The fused list then goes
through a `Reranker`: by default `rag.rerank.IdentifierReranker` (exact names and term proximity,
microseconds per hit); the same hook takes a cross-encoder or an LLM judge, which would reorder the
few best candidates without touching retrieval. `mode="lexical"` and `"vector"` return one side
alone, unreranked, for evaluation.

A collection named "builtin" that was never ingested falls back to the in-memory BM25 index over the
packaged guides, so retrieval works with no ingest step and nothing installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from kernelwright.domain import Hit
from kernelwright.errors import UnknownNameError
from kernelwright.settings import Settings
from rag.diagnostics import search_messages
from rag.fts import FtsStore
from rag.rerank import IdentifierReranker

__all__ = [
    "BUILTIN_COLLECTION",
    "LEXICAL_WEIGHT",
    "RRF_K",
    "TECHNICAL_VECTOR_WEIGHT",
    "VECTOR_WEIGHT",
    "VECTOR_WEIGHTS",
    "HybridRetriever",
    "IdentityReranker",
    "Mode",
    "Reranker",
    "default_reranker",
    "is_technical",
    "known_collections",
    "reciprocal_rank_fusion",
    "search",
    "vector_weight",
]

BUILTIN_COLLECTION = "builtin"
RRF_K = 15
"""Smaller than the usual 60: with 60, any vector support lifts a chunk above BM25's first hit,
and on kernel queries (exact names) BM25's head is usually right; 15 keeps fusion's consensus
effect within the first few ranks (measured on `bench/rag_eval.py`'s tuning half: 5, 15, 30 and 60
tried; 5 to 30 tie)."""
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 0.5
TECHNICAL_VECTOR_WEIGHT = 0.2
"""The vector list's weight for prose and for technical queries, for an embedding not measured in
`VECTOR_WEIGHTS`. Kernel queries hinge on exact tokens (API names, mnemonics, quoted diagnostics),
where BM25 is the more reliable list; vectors lift paraphrased questions that BM25 ranks low. A query
that quotes a name or is mostly identifiers (a compiler message, an API name) leans on BM25 harder."""
VECTOR_WEIGHTS: dict[str, tuple[float, float]] = {"hashing": (0.1, 0.0), "minilm": (2.0, 0.35)}
"""(prose, technical) vector weights per embedding, measured on `bench/rag_eval.py`'s tuning half.
The hashing embedding is a bag of hashed words and trigrams: little more than a blurred BM25, so
its vote only breaks ties (0.1 to 0.5 tried; more loses questions BM25 had). A sentence model
(MiniLM) ranks prose questions better than BM25, so there it gets the deciding vote (0.2 to 3 tried:
2 gives the best MRR, at the cost of one question BM25 alone finds in its top 5); on technical
queries its vote stays small."""
_QUOTED = re.compile(r"""'[^']+'|"[^"]+"|`[^`]+`""")
_IDENTIFIER = re.compile(r"[A-Za-z_%]\w*(?:(?:\.|::)\w+)+|\w*_\w+|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*")


def is_technical(query: str) -> bool:
    """A query that quotes a name or is mostly identifiers (a compiler message, an API name)."""
    words = query.split()
    technical = sum(1 for w in words if _IDENTIFIER.search(w))
    return bool(_QUOTED.search(query)) or bool(words and technical * 3 >= len(words))


def vector_weight(query: str, embedding: str | None = None) -> float:
    """The vector list's RRF weight for `query` over a collection built with `embedding`."""
    prose, technical = VECTOR_WEIGHTS.get(embedding or "", (VECTOR_WEIGHT, TECHNICAL_VECTOR_WEIGHT))
    return technical if is_technical(query) else prose


_CANDIDATES_PER_HIT = 4
_MIN_CANDIDATES = 20

Mode = Literal["fused", "lexical", "vector"]
"""Which ranking `search` returns: the fusion (the default), or one side alone (for evaluation)."""


@runtime_checkable
class Reranker(Protocol):
    """Reorders (and may drop) fused hits for a query; receives more hits than will be returned."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...


class IdentityReranker:
    """The default: keep the fused order."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        return list(hits)


def default_reranker() -> Reranker:
    """What fused search reranks with unless told otherwise (see the module docstring)."""
    return IdentifierReranker(rank_k=RRF_K)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Ids with their fused scores, best first (ties: the order of first appearance). `weights`
    scale each ranking's contribution (default: all 1)."""
    scores: dict[str, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if weights is not None else 1.0
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(i for r in rankings for i in r))}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def known_collections(settings: Settings) -> list[str]:
    """Ingested collection names, plus "builtin" (always searchable)."""
    names = {c.name for c in FtsStore(settings.rag_db).collections()}
    names.add(BUILTIN_COLLECTION)
    return sorted(names)


def search(
    query: str,
    *,
    collection: str = BUILTIN_COLLECTION,
    k: int = 5,
    settings: Settings,
    reranker: Reranker | None = None,
    mode: Mode = "fused",
) -> list[Hit]:
    """The `k` best chunks of `collection` for `query`, best first; `Hit.score` is the reranker's
    score (`default_reranker()` unless `reranker` is given; `IdentityReranker()` keeps the RRF
    score), or with `mode` "lexical" or "vector", that side's own score (BM25 or cosine similarity),
    unreranked.

    Raises `UnknownNameError` (listing the known collections) for a collection never ingested.
    """
    if k <= 0:
        return []
    limit = max(k * _CANDIDATES_PER_HIT, _MIN_CANDIDATES)
    if reranker is None:
        reranker = default_reranker() if mode == "fused" else IdentityReranker()
    fts = FtsStore(settings.rag_db)
    info = fts.collection(collection)
    if info is None:
        if collection == BUILTIN_COLLECTION:
            from rag.retriever import builtin_retriever

            return reranker.rerank(query, builtin_retriever().search(query, limit))[:k]
        raise UnknownNameError(
            f"unknown collection {collection!r}; known collections: {', '.join(known_collections(settings))}"
            " (create one with `kernelwright knowledge ingest PATH --collection NAME`)"
        )
    from rag.vectors import VectorStore

    query = "\n".join(search_messages(query))
    lexical = fts.search(query, collection, limit) if mode != "vector" else []
    vector = VectorStore(settings).search(collection, query, limit) if mode != "lexical" else []
    if mode == "fused":
        fused = reciprocal_rank_fusion(
            [[i for i, _ in lexical], [i for i, _ in vector]],
            weights=(LEXICAL_WEIGHT, vector_weight(query, info.embedding)),
        )
    else:
        fused = lexical or vector
    stored = fts.chunks([chunk_id for chunk_id, _ in fused])
    hits = [
        Hit(
            source=chunk.source,
            start_line=chunk.start_line,
            end_line=chunk.end_line,
            score=round(score, 6),
            text=chunk.text,
            collection=collection,
            heading=chunk.heading,
        )
        for chunk_id, score in fused
        if (chunk := stored.get(chunk_id)) is not None
    ]
    return reranker.rerank(query, hits)[:k]


@dataclass
class HybridRetriever:
    """A `Retriever` over one ingested collection (for the agent's `RunContext.retriever`)."""

    settings: Settings
    collection: str = BUILTIN_COLLECTION
    reranker: Reranker | None = None
    mode: Mode = "fused"

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return search(
            query,
            collection=self.collection,
            k=k,
            settings=self.settings,
            reranker=self.reranker,
            mode=self.mode,
        )
