"""The lexical half of the hybrid store, and the ingest manifest: one SQLite file (`home/rag.sqlite`).

SQLite holds the truth about what is ingested: which collections exist (and the embedding each was
built with), which files went into each (content hash and chunk ids: the manifest that makes
re-ingest incremental), and every chunk's text, heading and line range. Chroma holds only vectors
keyed by the same chunk ids, so a hit from either side is rendered from here.

Lexical search is FTS5 over the *output of the lexical tokenizer* (`rag.lexical.tokenize`), indexed
with a tokenizer that keeps `.`, `_` and `%` inside tokens: `ld.global.nc`, `%tid.x` and
`tl.program_id` stay searchable whole and by their parts, exactly as in the in-memory BM25 index.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.lexical import Chunk, tokenize

__all__ = ["CollectionInfo", "FileRecord", "FtsStore", "StoredChunk"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedding TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (collection, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    source TEXT NOT NULL,
    heading TEXT,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_collection ON chunks (collection);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    terms, collection UNINDEXED, tokenize = "unicode61 tokenchars '._%'"
);
"""


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    embedding: str
    files: int
    chunks: int
    created_at: str


@dataclass(frozen=True)
class FileRecord:
    """One manifest row: what was ingested from `path` (absolute) and under which chunk ids."""

    path: str
    source: str
    sha256: str
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class StoredChunk:
    id: str
    collection: str
    source: str
    heading: str | None
    start_line: int
    end_line: int
    text: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fts_query(query: str) -> str:
    """An FTS5 OR-query of the query's tokens, each quoted (tokens contain `.` and `%`)."""
    terms = dict.fromkeys(tokenize(query))
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class FtsStore:
    """The SQLite side. Opens a short-lived connection per operation, so one store may be shared by
    threads and several processes may use the file (SQLite serialises the writers)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            connection.executescript(_SCHEMA)
            with connection:
                yield connection
        finally:
            connection.close()

    def exists(self) -> bool:
        return self.path.is_file()

    # --- collections -------------------------------------------------------------------------

    def collections(self) -> list[CollectionInfo]:
        if not self.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.name, c.embedding, c.created_at,"
                " (SELECT COUNT(*) FROM files f WHERE f.collection = c.name),"
                " (SELECT COUNT(*) FROM chunks k WHERE k.collection = c.name)"
                " FROM collections c ORDER BY c.name"
            ).fetchall()
        return [CollectionInfo(r[0], r[1], r[3], r[4], r[2]) for r in rows]

    def collection(self, name: str) -> CollectionInfo | None:
        return next((c for c in self.collections() if c.name == name), None)

    def create_collection(self, name: str, embedding: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO collections (name, embedding, created_at) VALUES (?, ?, ?)",
                (name, embedding, _now()),
            )

    def drop_collection(self, name: str) -> None:
        with self._connect() as db:
            rowids = [r[0] for r in db.execute("SELECT rowid FROM chunks WHERE collection = ?", (name,))]
            db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", ((r,) for r in rowids))
            db.execute("DELETE FROM chunks WHERE collection = ?", (name,))
            db.execute("DELETE FROM files WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))

    # --- manifest ----------------------------------------------------------------------------

    def files(self, collection: str) -> dict[str, FileRecord]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT path, source, sha256, chunk_ids FROM files WHERE collection = ?", (collection,)
            ).fetchall()
        return {r[0]: FileRecord(r[0], r[1], r[2], tuple(json.loads(r[3]))) for r in rows}

    def replace_files(
        self,
        collection: str,
        records: Sequence[tuple[FileRecord, Sequence[tuple[str, Chunk]]]],
        removed: Iterable[str] = (),
    ) -> None:
        """In one transaction: drop the old chunks of every file in `records` and of every path in
        `removed`, then store the new chunks and manifest rows."""
        with self._connect() as db:
            for path in [*(record.path for record, _ in records), *removed]:
                rowids = [
                    r[0]
                    for r in db.execute(
                        "SELECT rowid FROM chunks WHERE collection = ? AND path = ?", (collection, path)
                    )
                ]
                db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", ((r,) for r in rowids))
                db.execute("DELETE FROM chunks WHERE collection = ? AND path = ?", (collection, path))
                db.execute("DELETE FROM files WHERE collection = ? AND path = ?", (collection, path))
            now = _now()
            for record, chunks in records:
                for chunk_id, chunk in chunks:
                    cursor = db.execute(
                        "INSERT INTO chunks (id, collection, path, source, heading, start_line, end_line,"
                        " text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            chunk_id,
                            collection,
                            record.path,
                            chunk.source,
                            chunk.heading,
                            chunk.start_line,
                            chunk.end_line,
                            chunk.text,
                        ),
                    )
                    terms = " ".join(tokenize(chunk.text) + tokenize(chunk.heading or ""))
                    db.execute(
                        "INSERT INTO chunks_fts (rowid, terms, collection) VALUES (?, ?, ?)",
                        (cursor.lastrowid, terms, collection),
                    )
                db.execute(
                    "INSERT INTO files (collection, path, source, sha256, chunk_ids, ingested_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        collection,
                        record.path,
                        record.source,
                        record.sha256,
                        json.dumps(record.chunk_ids),
                        now,
                    ),
                )

    # --- search ------------------------------------------------------------------------------

    def search(self, query: str, collection: str, limit: int) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores (larger is better) of the best lexical matches, best first."""
        match = _fts_query(query)
        if not match or limit <= 0 or not self.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts"
                " JOIN chunks c ON c.rowid = chunks_fts.rowid"
                " WHERE chunks_fts MATCH ? AND chunks_fts.collection = ?"
                " ORDER BY score DESC, c.source, c.start_line LIMIT ?",
                (match, collection, limit),
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        if not ids:
            return {}
        found: dict[str, StoredChunk] = {}
        with self._connect() as db:
            for start in range(0, len(ids), 500):
                batch = list(ids[start : start + 500])
                marks = ",".join("?" * len(batch))
                for r in db.execute(
                    "SELECT id, collection, source, heading, start_line, end_line, text FROM chunks"
                    f" WHERE id IN ({marks})",
                    batch,
                ):
                    found[r[0]] = StoredChunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
        return found
