"""The FTS5 side: titles weigh more than bodies, adjacent query words count as phrases, words are
stemmed and identifiers are not, and an index from another version is rebuilt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.fts import INDEX_VERSION, FileRecord, FtsStore, title_terms
from rag.lexical import Chunk, stem, tokenize


def _store(tmp_path: Path) -> FtsStore:
    store = FtsStore(tmp_path / "rag.sqlite")
    store.create_collection("docs", "hashing")
    chunks = [
        Chunk("docs/debugging.md", "Debugging > Tools", 1, 3, "Print circular buffers and watch for hangs."),
        Chunk("docs/circular_buffers.md", "Circular buffers", 1, 3, "Reserve space, push, wait and pop."),
    ]
    record = FileRecord("/abs/docs", "docs", "0" * 64, ("a", "b"))
    store.replace_files("docs", [(record, list(zip(["a", "b"], chunks, strict=True)))])
    return store


def test_title_terms_and_stems() -> None:
    assert title_terms("tt/kernel_apis/cb_wait_front.rst", "cb_wait_front").split()[0] == "cb_wait_front"
    assert "error" in title_terms("ptx-errors.md", None).split()
    words = ("masks", "masking", "floating", "float", "configured", "configuration", "address", "status")
    assert [stem(w) for w in words] == [
        "mask",
        "mask",
        "float",
        "float",
        "configur",
        "configur",
        "address",
        "status",
    ]
    # Identifiers, numbered names and CamelCase names stay whole; their word parts are stemmed.
    assert stem("bfp8") == "bfp8" and stem("sm_90") == "sm_90"
    tokens = tokenize("CreateCircularBuffers ld.global.nc noc_async_reads")
    assert "createcircularbuffers" in tokens and "buffer" in tokens
    assert "ld.global.nc" in tokens and "noc_async_reads" in tokens and "reads" in tokens
    # Question words are stop-words: "how much" says nothing about where the answer is.
    assert tokenize("How much SRAM does each core have?") == ["sram", "core"]


def test_a_title_match_outranks_a_body_match(tmp_path: Path) -> None:
    hits = _store(tmp_path).search("circular buffer", "docs", 5)
    assert [chunk_id for chunk_id, _ in hits] == ["b", "a"]


def test_an_old_index_is_rebuilt_from_the_chunks(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with sqlite3.connect(store.path) as db:  # what an older kernelwright left: other terms, no version
        db.execute("DELETE FROM chunk_terms")
        db.execute("DELETE FROM meta")
        db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, collection UNINDEXED)")
    assert [chunk_id for chunk_id, _ in store.search("reserve pop", "docs", 5)] == ["b"]
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone() == (INDEX_VERSION,)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "chunks_fts" not in tables


def test_adjacent_words_count_as_a_phrase(tmp_path: Path) -> None:
    store = FtsStore(tmp_path / "rag.sqlite")
    store.create_collection("docs", "hashing")
    apart = Chunk("docs/a.md", None, 1, 2, "The device reads a print of the log.\nIt goes to a file.")
    together = Chunk("docs/b.md", None, 1, 2, "Use device print to read values.\nThe log goes to a file.")
    # Other chunks, so that BM25's idf of the words (and of the pair) is positive.
    others = [Chunk(f"docs/o{i}.md", None, 1, 1, f"Unrelated text number {i} about tiles.") for i in range(6)]
    chunks = [("apart", apart), ("together", together), *((f"o{i}", c) for i, c in enumerate(others))]
    record = FileRecord("/abs/docs", "docs", "0" * 64, tuple(chunk_id for chunk_id, _ in chunks))
    store.replace_files("docs", [(record, chunks)])
    ranked = store.search("device print", "docs", 5)
    assert [chunk_id for chunk_id, _ in ranked] == ["together", "apart"]
    assert ranked[0][1] > ranked[1][1]
