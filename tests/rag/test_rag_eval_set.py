"""The retrieval evaluation set is well formed, and a small evaluation runs end to end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.rag_eval import (
    KINDS,
    SPLITS,
    Retriever,
    build_collection,
    evaluate,
    goals,
    load_eval_set,
    search_with,
    split_of,
)
from kernelwright.domain import Hit
from kernelwright.settings import Settings
from knowledge.ptx_docs import ptx_documents
from rag.lexical import clean_query

GUIDES = Path(__file__).resolve().parents[2] / "knowledge" / "guides"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tt-metal"


def test_eval_set_is_well_formed() -> None:
    items = load_eval_set()
    assert len(items) >= 60
    assert len({i.id for i in items}) == len(items)
    kinds = Counter(i.kind for i in items)
    assert set(kinds) == set(KINDS)
    assert kinds["compiler-error"] * 3 >= len(items)
    builtin = set(ptx_documents()) | {p.name for p in GUIDES.glob("*.md")}
    for item in items:
        for label in item.relevant:
            if label.source.startswith("tt-metal/"):
                if CORPUS.is_dir():
                    assert (CORPUS / label.source.removeprefix("tt-metal/")).is_file(), label
            else:
                assert label.source in builtin, label
            if label.lines is not None:
                assert 1 <= label.lines[0] <= label.lines[1]


def test_relevance_rules() -> None:
    item = next(i for i in load_eval_set() if i.id == "qu17")  # grid-stride loop, labelled by heading
    label = item.relevant[0]

    def hit(source: str, start: int, end: int, heading: str | None) -> Hit:
        return Hit(source=source, start_line=start, end_line=end, score=1.0, text="", heading=heading)

    assert label.matches(hit("ptx-basics.md", 223, 238, "PTX basics > Grid-stride loop"))
    assert not label.matches(hit("ptx-basics.md", 1, 6, "PTX basics"))
    assert not label.matches(hit("other.md", 223, 238, "PTX basics > Grid-stride loop"))


def test_clean_query_drops_compiler_boilerplate() -> None:
    text = (
        "ptxas k.ptx, line 11; error   : Unknown symbol '%r5'\n"
        "ptxas fatal   : Ptx assembly aborted due to errors"
    )
    assert clean_query(text) == "Unknown symbol '%r5'"
    assert clean_query('k.cu(3): error: identifier "x" is undefined') == 'identifier "x" is undefined'
    assert clean_query("plain question") == "plain question"


def test_small_eval_over_builtin_knowledge(settings: Settings) -> None:
    """A fast subset (built-in sources only, hashing embedding): fused must find most answers."""
    items = [i for i in load_eval_set() if not i.needs_corpus]
    subset = [i for kind in KINDS for i in [x for x in items if x.kind == kind][:4]]
    build_collection(settings, None)

    def run(query: str, mode: Retriever) -> list[Hit]:
        return search_with(settings, query, mode)

    figures = evaluate(subset, run)
    assert figures["fused"]["overall"]["n"] == len(subset)
    assert figures["fused"]["overall"]["recall@5"] >= 0.75
    assert figures["lexical"]["overall"]["recall@5"] >= 0.75
    assert figures["fused"]["overall"]["mrr@10"] >= figures["rrf"]["overall"]["mrr@10"]
    assert sum(figures["fused"][s]["n"] for s in SPLITS if s in figures["fused"]) == len(subset)
    assert set(goals(figures)) >= {"fused_recall@5>=0.95", "fused_mrr@10>=0.85"}


def test_split_is_fixed_and_balanced() -> None:
    items = load_eval_set()
    assert split_of("cb_wait_front") == split_of("cb_wait_front")
    halves = [sum(1 for i in items if i.split == s) for s in SPLITS]
    assert min(halves) >= len(items) // 3  # a real held-out half, not a token one
    for kind in KINDS:
        assert {i.split for i in items if i.kind == kind} == set(SPLITS)


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}")
def test_eval_over_tt_metal_subset(settings: Settings) -> None:
    items = [i for i in load_eval_set() if i.needs_corpus][:6]
    build_collection(settings, CORPUS)

    def run(query: str, mode: Retriever) -> list[Hit]:
        return search_with(settings, query, mode)

    assert evaluate(items, run, modes=("fused",))["fused"]["overall"]["recall@5"] >= 0.5
