"""Hybrid search: FTS5 (exact kernel tokens) and vectors (paraphrases), fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al. 2009) adds `1 / (RRF_K + rank)` over the two ranked lists:
it needs no calibration between BM25 scores and cosine similarities, which live on unrelated
scales, and a chunk found by both lists rises above one found by either. The fused list then goes
through a `Reranker`: by default `rag.rerank.IdentifierReranker` (exact names; term proximity on
request; microseconds per hit); the same hook takes a cross-encoder or an LLM judge, which would reorder the
few best candidates without touching retrieval. Before the cut to `k`, `diversify` moves a second
copy of one page (the docs publish some pages twice) behind everything else. `mode="lexical"` and
`"vector"` return one side alone, unreranked and undiversified, for evaluation.

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
    "NEAR_DUPLICATE",
    "RRF_K",
    "TECHNICAL_VECTOR_WEIGHT",
    "VECTOR_WEIGHT",
    "VECTOR_WEIGHTS",
    "HybridRetriever",
    "IdentityReranker",
    "Mode",
    "Reranker",
    "default_reranker",
    "diversify",
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
VECTOR_WEIGHTS: dict[str, tuple[float, float]] = {"hashing": (0.1, 0.0), "minilm": (3.0, 0.35)}
"""(prose, technical) vector weights per embedding, chosen on `bench/rag_eval.py`'s tuning half
only (the held-out half was measured, not used). The hashing embedding is a bag of hashed words and
trigrams: little more than a blurred BM25, so its vote only breaks ties (prose 0 to 1 and technical
0 to 0.2 tried; 0 and 0.1 tie, more loses questions BM25 had; 1024 buckets instead of 384 made the
vectors better alone but not the fusion). A sentence model (MiniLM) ranks prose questions better
than BM25, so there it gets the deciding vote and BM25 mostly breaks its ties (prose 1 to 6 tried,
3 and 4 tie, 3 kept; re-measured once long chunks were embedded as windows (`rag.vectors`): 2 to 4
tie); on technical queries its vote stays small (0.2 to 1 tried, 0.35 and 0.5 tie)."""
_QUOTED = re.compile(r"""'[^']+'|"[^"]+"|`[^`]+`""")
_IDENTIFIER = re.compile(
    r"[A-Za-z_%]\w*(?:(?:\.|::)\w+)+|\w*_\w+|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*|(?<![\w%])%[A-Za-z]\w*"
)
"""Dotted, scoped or underscored names, camelCase, and %-registers (`%laneid`, as `rag.rerank` counts
them: a register name is as exact a token as a mnemonic)."""


def is_technical(query: str) -> bool:
    """A query that quotes a name or is mostly identifiers (a compiler message, an API name)."""
    words = query.split()
    technical = sum(1 for w in words if _IDENTIFIER.search(w))
    return bool(_QUOTED.search(query)) or bool(words and technical * 3 >= len(words))


def vector_weight(query: str, embedding: str | None = None) -> float:
    """The vector list's RRF weight for `query` over a collection built with `embedding`."""
    prose, technical = VECTOR_WEIGHTS.get(embedding or "", (VECTOR_WEIGHT, TECHNICAL_VECTOR_WEIGHT))
    return technical if is_technical(query) else prose


NEAR_DUPLICATE = 0.6
"""Share of word 3-grams (of the shorter text) two same-named files' hits must share to count as
copies (`diversify`); Markdown and reStructuredText renderings of one page differ in markup."""

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
    """What fused search reranks with unless told otherwise (see the module docstring): exact names
    only. The proximity bonus made no difference on `bench/rag_eval.py`'s tuning half (0 to 0.3 of a
    first place, either embedding), and it favours long chunks, which hold more query words in some
    window than a short section that answers the question; so it is off, and on request."""
    return IdentifierReranker(rank_k=RRF_K, proximity_bonus=False)


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
    ranked = reranker.rerank(query, hits)
    return diversify(ranked, k) if mode == "fused" else ranked[:k]


def _shingles(text: str) -> frozenset[str]:
    words = text.lower().split()
    return frozenset(" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2)))


def _stem_of(source: str) -> str:
    name = source.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _copies(a: Hit, b: Hit, a_shingles: frozenset[str], b_shingles: frozenset[str]) -> bool:
    """Whether two hits are the same text published twice: files of one name in two places
    (`docs/.../data_mcast.rst` and `tech_reports/.../data_mcast.md`) sharing most word 3-grams.
    Pages rendered from one template (`ptx-isa/min.md`, `ptx-isa/max.md`) share as many 3-grams but
    are about different things, hence the name test."""
    if a.source == b.source or _stem_of(a.source) != _stem_of(b.source) or not (a_shingles and b_shingles):
        return False
    return len(a_shingles & b_shingles) >= NEAR_DUPLICATE * min(len(a_shingles), len(b_shingles))


def diversify(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The first `k` of `hits`, with a copy of a hit already kept (see `_copies`) moved behind
    every other hit: the second copy says nothing new, and it would push a different answer below
    the cut."""
    kept: list[tuple[Hit, frozenset[str]]] = []
    deferred: list[Hit] = []
    for hit in hits:
        if len(kept) >= k:
            break
        shingles = _shingles(hit.text)
        if any(_copies(hit, other, shingles, seen) for other, seen in kept):
            deferred.append(hit)
        else:
            kept.append((hit, shingles))
    return [*(hit for hit, _ in kept), *deferred][:k]


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
