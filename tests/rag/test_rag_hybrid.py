"""The hybrid store: incremental ingest, fused search, the reranker hook, collections, fallbacks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import rag
from kernelwright.domain import Hit
from kernelwright.errors import ConfigError, UnknownNameError, UserError
from kernelwright.settings import Settings
from rag.fts import FtsStore
from rag.hybrid import RRF_K, HybridRetriever, diversify, is_technical, reciprocal_rank_fusion
from rag.ingest import IngestProgress, drop_collection, ingest, ingest_builtin
from rag.lexical import LexicalIndex
from rag.retriever import Retriever, default_retriever

DOCS = {
    "guide/cuda.md": "# CUDA\n\n## Shared memory\n\nUse `__syncthreads()` between tile loads.\n\n"
    "```cuda\n__shared__ float tile[32][32];\n\n__syncthreads();\n```\n",
    "guide/ptx.rst": "PTX\n===\n\nLoads\n-----\n\nUse ``ld.global.nc`` for read-only data.\n\n"
    ".. code-block:: ptx\n\n   ld.global.nc.f32 %f1, [%rd4];\n",
    "guide/notes.txt": "Circular buffers connect reader and compute kernels.\n",
    "guide/kernel.cu": "__global__ void scale(float* x, float a, int n) {\n  x[threadIdx.x] *= a;\n}\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "docs"


def test_ingest_then_search_finds_the_right_files(corpus: Path, settings: Settings) -> None:
    events: list[IngestProgress] = []
    report = ingest([corpus], collection="mydocs", settings=settings, progress=events.append)
    assert (report.added, report.updated, report.unchanged, report.removed) == (4, 0, 0, 0)
    assert [e.done for e in events] == [1, 2, 3, 4] and events[-1].total == 4
    assert report.chunks_total > 0
    hits = rag.search("ld.global.nc read-only", collection="mydocs", k=3, settings=settings)
    assert hits[0].source == "docs/guide/ptx.rst" and hits[0].collection == "mydocs"
    assert hits[0].heading == "PTX > Loads"
    lines = (corpus / "guide/ptx.rst").read_text().split("\n")
    assert hits[0].text == "\n".join(lines[hits[0].start_line - 1 : hits[0].end_line])
    assert hits[0].score > 0
    top = rag.search("__syncthreads shared tile", collection="mydocs", k=1, settings=settings)[0]
    assert top.source == "docs/guide/cuda.md" and "__shared__ float tile" in top.text
    assert rag.search("scale kernel", collection="mydocs", k=4, settings=settings)[0].heading == "scale"


def test_reingest_is_incremental(corpus: Path, settings: Settings) -> None:
    ingest([corpus], collection="mydocs", settings=settings)
    (corpus / "guide/notes.txt").write_text("Semaphores order the data movement kernels.\n", encoding="utf-8")
    (corpus / "guide/kernel.cu").unlink()
    (corpus / "guide/new.md").write_text("# New\n\nWarp shuffles reduce without shared memory.\n")
    report = ingest([corpus], collection="mydocs", settings=settings)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 2, 1)
    sources = {
        h.source
        for h in rag.search("semaphores circular scale warp", collection="mydocs", k=10, settings=settings)
    }
    assert "docs/guide/kernel.cu" not in sources
    assert {"docs/guide/notes.txt", "docs/guide/new.md"} <= sources
    notes = rag.search("circular buffers", collection="mydocs", k=10, settings=settings)
    assert all("Circular buffers connect" not in h.text for h in notes)  # the old chunk is gone
    again = ingest([corpus], collection="mydocs", settings=settings)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 4, 0)
    assert again.chunks_total == report.chunks_total
    assert settings.rag_db.is_file() and (settings.home / "chroma").is_dir()


def test_explicit_file_and_errors(corpus: Path, settings: Settings) -> None:
    report = ingest([corpus / "guide/cuda.md"], collection="one", settings=settings)
    assert report.added == 1
    assert rag.search("syncthreads", collection="one", k=1, settings=settings)[0].source == "cuda.md"
    with pytest.raises(UserError, match="invalid collection name"):
        ingest([corpus], collection="x", settings=settings)
    with pytest.raises(UserError, match="no such file"):
        ingest([corpus / "missing"], collection="one", settings=settings)
    (corpus / "data.bin").write_bytes(b"\0")
    with pytest.raises(UserError, match="unsupported file type"):
        ingest([corpus / "data.bin"], collection="one", settings=settings)
    with pytest.raises(UnknownNameError, match="known collections: builtin, one"):
        rag.search("x", collection="nope", settings=settings)
    other = settings.model_copy(update={"embedding": "openai"})
    with pytest.raises(ConfigError, match="--reset"):
        ingest([corpus / "guide/cuda.md"], collection="one", settings=other)
    assert drop_collection("one", settings) is True
    assert FtsStore(settings.rag_db).collection("one") is None


def test_rrf_and_reranker_hook(corpus: Path, settings: Settings) -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])
    assert [item for item, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    weighted = reciprocal_rank_fusion([["a", "b"], ["b"]], weights=(1.0, 0.5))
    assert weighted[0] == ("b", pytest.approx(1 / (RRF_K + 2) + 0.5 / (RRF_K + 1)))

    class Reverse:
        def __init__(self) -> None:
            self.seen = 0

        def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
            self.seen = len(hits)
            return list(reversed(hits))

    ingest([corpus], collection="mydocs", settings=settings)
    plain = rag.search("kernels memory", collection="mydocs", k=2, settings=settings)
    reverse = Reverse()
    reranked = rag.search("kernels memory", collection="mydocs", k=2, settings=settings, reranker=reverse)
    assert reverse.seen > 2 and reranked != plain


def test_builtin_works_without_ingest_and_hybrid_after(settings: Settings) -> None:
    retriever = default_retriever(settings)
    assert isinstance(retriever, LexicalIndex)
    assert not settings.rag_db.exists()  # checking created nothing
    lexical = rag.search("cvta.to.global", collection="builtin", k=2, settings=settings)
    assert lexical and lexical[0].source.endswith(".md")
    report = ingest_builtin(settings)
    assert report.added >= 5
    retriever = default_retriever(settings)
    assert isinstance(retriever, HybridRetriever) and isinstance(retriever, Retriever)
    hits = retriever.search("cvta.to.global ld.param", k=3)
    assert hits[0].collection == "builtin" and hits[0].source == "ptx-basics.md"
    assert "/" not in hits[0].source  # cited like the lexical retriever cites guides


def _hit(source: str, text: str, start: int = 1) -> Hit:
    return Hit(source=source, start_line=start, end_line=start + 1, score=1.0, text=text)


def test_diversify_defers_a_page_published_twice_but_not_template_siblings() -> None:
    page = "Semaphores coordinate the sender and receiver cores of the multicast reader " * 3
    rst = _hit("docs/examples/data_mcast.rst", page + "\n.. code-block:: cpp")
    md = _hit("tech_reports/examples/data_mcast.md", page + "\n```cpp")
    other = _hit("docs/examples/data_reuse.rst", "Reuse tiles already in L1 instead of reading DRAM again.")
    assert [h.source for h in diversify([rst, md, other], 3)] == [rst.source, other.source, md.source]
    assert [h.source for h in diversify([rst, md, other], 2)] == [rst.source, other.source]
    # Pages rendered from one template share most words but are about different instructions.
    template = "Syntax of {0}: {0}.type d, a, b. ptxas errors about {0}: Arguments mismatch for {0}."
    low, high = _hit("ptx-isa/min.md", template.format("min")), _hit("ptx-isa/max.md", template.format("max"))
    assert diversify([low, high, other], 3) == [low, high, other]
    # Two sections of one file are not copies of each other either.
    first, second = _hit("guide/a.md", page, 1), _hit("guide/a.md", page, 20)
    assert diversify([first, second], 2) == [first, second]


def test_register_names_are_technical_queries() -> None:
    """A %-register is as exact a token as a mnemonic: BM25, not the vectors, decides it."""
    assert is_technical("%laneid") and is_technical("%tid.x") and is_technical("cb_wait_front")
    assert not is_technical("How do I mask out-of-bounds loads?")
    assert not is_technical("it is right 100% of the time")
