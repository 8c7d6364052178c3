"""The default reranker: exact names beat neighbours that merely contain the token; proximity."""

from __future__ import annotations

from kernelwright.domain import Hit
from rag.rerank import IdentifierReranker, chunk_names, query_identifiers


def _hit(source: str, text: str = "", heading: str | None = None, score: float = 1.0) -> Hit:
    return Hit(source=source, start_line=1, end_line=3, score=score, text=text, heading=heading)


def test_query_identifiers() -> None:
    assert query_identifiers("Feature 'cp.async' requires .target sm_80 or higher") >= {"cp.async", "sm_80"}
    assert "sync" in query_identifiers("Instruction 'vote' without '.sync' is not supported")
    assert "vote" in query_identifiers("Instruction 'vote' without '.sync' is not supported")
    assert {"tt::tt_metal::createkernel", "createkernel"} <= query_identifiers("tt::tt_metal::CreateKernel")
    assert "setruntimeargs" in query_identifiers("SetRuntimeArgs")
    # camelCase inside a sentence is mostly proper nouns, not page names
    assert query_identifiers("In what order do NoC commands complete across command buffers?") == set()


def test_chunk_names() -> None:
    assert chunk_names(_hit("ptx-isa/cp.async.md", heading="PTX instruction cp.async")) == {"cp.async"}
    assert "exp_tile" in chunk_names(_hit("docs/compute/exp.rst", heading="Compute > exp_tile"))
    # a heading that mentions a name among other words does not name the chunk
    assert chunk_names(_hit("a/memory.rst", heading="Memory > Access via the NoC")) == {"memory"}


def test_exact_name_beats_a_neighbour_that_contains_the_token() -> None:
    hits = [
        _hit("ptx-isa/cp.async.wait_all.md", "cp.async.wait_all waits", "PTX instruction cp.async.wait_all"),
        _hit(
            "ptx-isa/cp.async.commit_group.md",
            "cp.async.commit_group",
            "PTX instruction cp.async.commit_group",
        ),
        _hit("ptx-isa/cp.async.md", "cp.async copies", "PTX instruction cp.async"),
    ]
    reranked = IdentifierReranker().rerank("Feature 'cp.async' requires .target sm_80 or higher", hits)
    assert reranked[0].source == "ptx-isa/cp.async.md"
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    # without a name in the query, the order is kept
    plain = IdentifierReranker(proximity_bonus=False).rerank("asynchronous copies", hits)
    assert [h.source for h in plain] == [h.source for h in hits]


def test_proximity_prefers_terms_close_together() -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    far = _hit("far.md", f"print {filler} circular {filler} buffer")
    near = _hit("near.md", f"{filler} print the circular buffer {filler}")
    reranked = IdentifierReranker(name_bonus=False).rerank("print circular buffer", [far, near])
    assert reranked[0].source == "near.md"
    assert IdentifierReranker().rerank("anything", []) == []
