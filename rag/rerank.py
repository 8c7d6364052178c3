"""A cheap, deterministic reranker over the fused top-N: exact identifier matches and term proximity.

Fusion ranks by agreement between BM25 and the vectors, and neither knows what a kernel query is
*about*. Two signals that both miss are nearly free to compute on a few dozen hits:

- **Exact names.** A compiler message quotes the instruction it rejected (`'cp.async'`), an API query
  is the name itself (`cb_wait_front`). A chunk whose own name is that identifier (its file is
  `cp.async.md`, its heading ends in `cb_wait_front`) is the page about it; a chunk that merely
  contains the token (`cp.async.wait_all`, which tokenises to `cp.async` too) is a neighbour. The
  name of a chunk: its file name without the suffix, and the identifiers in its last heading.
- **Proximity.** Prose questions name several things at once ("print the contents of a circular
  buffer"). A chunk where those terms sit within a few lines of each other answers the question
  more often than one that scatters them over a long section; BM25 sees only counts.

Both adjust the fused order by rank, not by score, so the reranker does not care whether the
scores it receives are RRF sums, BM25 or cosines. The weights are in units of "one first place in
one ranking": an exact-name match is worth `NAME_BONUS` of a first place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kernelwright.domain import Hit
from rag.lexical import tokenize

__all__ = [
    "NAME_BONUS",
    "PROXIMITY_BONUS",
    "PROXIMITY_WINDOW",
    "IdentifierReranker",
    "chunk_names",
    "query_identifiers",
]

NAME_BONUS = 1.0
"""An exact-name match adds this many first places (at `rank_k`) to a hit's rank score."""
PREFIX_BONUS = 0.5
"""A name that extends the identifier by a dotted part (`vote` -> `vote.sync`): half of a match."""
PROXIMITY_BONUS = 0.3
"""A hit holding every distinct query term within `PROXIMITY_WINDOW` tokens gets this much of a first
place; fewer terms within a window get a proportional share."""
PROXIMITY_WINDOW = 24

_QUOTED = re.compile(r"""'([^'\n]{1,80})'|"([^"\n]{1,80})"|`([^`\n]{1,80})`""")
_NAME = re.compile(r"[%.]?[A-Za-z_][\w]*(?:(?:\.|::)[A-Za-z0-9_]+)*")


_NAME_QUERY_WORDS = 3


def _is_code(token: str) -> bool:
    """Unmistakably code: dotted, scoped, underscored or %-prefixed."""
    core = token.lstrip(".%")
    return "." in core or "::" in core or "_" in core or token.startswith("%")


def _is_camel(token: str) -> bool:
    return any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)


def query_identifiers(query: str) -> set[str]:
    """Lower-cased identifiers the query names: everything quoted (a compiler's `'mad'`, `"__shfl_down"`),
    every dotted, scoped, underscored or %-register token, and camelCase names in a query of at most
    three words (`SetRuntimeArgs`; in a sentence, camelCase is mostly proper nouns such as NoC or
    PyTorch, which name no page). A scoped name (`tt::tt_metal::CreateKernel`) also gives its last
    part. Leading dots of modifiers (`.sync`) are dropped."""
    found: set[str] = set()
    for match in _QUOTED.finditer(query):
        quoted = next(g for g in match.groups() if g is not None)
        found.update(n.lower().lstrip(".") for n in _NAME.findall(quoted))
    short = len(query.split()) <= _NAME_QUERY_WORDS
    for token in _NAME.findall(query):
        if _is_code(token) or (short and _is_camel(token)):
            found.add(token.lower().lstrip("."))
    for name in list(found):
        if "::" in name:
            found.add(name.rsplit("::", 1)[-1])
    return {n for n in found if len(n) > 1}


def chunk_names(hit: Hit) -> set[str]:
    """What a chunk is named: its file name without the suffix, and its last heading when that is a
    single name (`exp_tile`, `noc_async_read`). A heading that merely mentions a name ("Memory access
    via the NoC") does not name the chunk: such mentions are BM25's business."""
    name = hit.source.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    names = {stem.lower()}
    if hit.heading:
        words = _NAME.findall(hit.heading.split(" > ")[-1])
        if len(words) == 1:
            names.add(words[0].lower().lstrip("."))
    return names


def _name_score(identifiers: set[str], names: set[str]) -> float:
    if identifiers & names:
        return NAME_BONUS
    if any(n.startswith(i + ".") for i in identifiers for n in names):
        return PREFIX_BONUS
    return 0.0


def _proximity(terms: Sequence[str], hit: Hit) -> float:
    """The largest share of the query's distinct terms found within one window of the hit's tokens."""
    if len(terms) < 2:
        return 0.0
    wanted = set(terms)
    tokens = tokenize(hit.text)
    best = 0
    for start in range(0, max(1, len(tokens) - PROXIMITY_WINDOW + 1), PROXIMITY_WINDOW // 2):
        seen = wanted.intersection(tokens[start : start + PROXIMITY_WINDOW])
        best = max(best, len(seen))
        if best == len(wanted):
            break
    return best / len(wanted)


@dataclass(frozen=True)
class IdentifierReranker:
    """Reorders hits by `1 / (rank_k + rank)` plus the bonuses above (see the module docstring);
    `Hit.score` becomes that rank score. `rank_k` should be the fusion's RRF constant, so a bonus of
    1 is worth exactly one more first place."""

    rank_k: int = 15
    name_bonus: bool = True
    proximity_bonus: bool = True

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        identifiers = query_identifiers(query) if self.name_bonus else set()
        terms = list(dict.fromkeys(tokenize(query))) if self.proximity_bonus else []
        first = 1.0 / (self.rank_k + 1)
        scored: list[tuple[float, int, Hit]] = []
        for rank, hit in enumerate(hits, start=1):
            score = 1.0 / (self.rank_k + rank)
            if identifiers:
                score += first * _name_score(identifiers, chunk_names(hit))
            if terms:
                score += first * PROXIMITY_BONUS * _proximity(terms, hit)
            scored.append((score, rank, hit))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [hit.model_copy(update={"score": round(score, 6)}) for score, _, hit in scored]
