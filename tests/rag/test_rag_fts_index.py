"""The FTS5 side: titles weigh more than bodies, and an index from another version is rebuilt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.fts import INDEX_VERSION, FileRecord, FtsStore, title_terms
from rag.lexical import Chunk, singular


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


def test_title_terms_and_singular() -> None:
    assert title_terms("tt/kernel_apis/cb_wait_front.rst", "cb_wait_front").split()[0] == "cb_wait_front"
    assert "error" in title_terms("ptx-errors.md", None).split()
    assert [singular(w) for w in ("masks", "entries", "address", "status", "axis", "bus", "loads")] == [
        "mask",
        "entry",
        "address",
        "status",
        "axis",
        "bus",
        "load",
    ]


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
