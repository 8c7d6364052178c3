"""The lexical half of the hybrid store, and the ingest manifest: one SQLite file (`home/rag.sqlite`).

SQLite holds the truth about what is ingested: which collections exist (and the embedding each was
built with), which files went into each (content hash and chunk ids: the manifest that makes
re-ingest incremental), and every chunk's text, heading and line range. Chroma holds only vectors
keyed by the same chunk ids, so a hit from either side is rendered from here.

Lexical search is FTS5 over the *output of the lexical tokenizer* (`rag.lexical.tokenize`), indexed
with a tokenizer that keeps `.`, `_` and `%` inside tokens: `ld.global.nc`, `%tid.x` and
`tl.program_id` stay searchable whole and by their parts, exactly as in the in-memory BM25 index.

A query is searched twice: as its words (OR) and as its pairs of adjacent words (phrases), the second
score added at `PHRASE_WEIGHT` (see `_fts_queries`).

Each chunk is indexed in two columns: `title` (the file's name and the chunk's heading path) and
`body` (its text). BM25 weighs a title match `TITLE_WEIGHT` times a body match: a page named
`cb_wait_front.rst` or a section titled "Unknown symbols and declarations" is *about* those words,
while a body may only mention them in passing. The terms are derived data, so when the tokenizer or
the columns change (`INDEX_VERSION`), the index is rebuilt from the stored chunks on first use; no
re-ingest is needed.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rag.lexical import Chunk, tokenize

__all__ = [
    "BODY_WEIGHT",
    "INDEX_VERSION",
    "PHRASE_WEIGHT",
    "TITLE_WEIGHT",
    "CollectionInfo",
    "FileRecord",
    "FtsStore",
    "StoredChunk",
    "title_terms",
]

INDEX_VERSION = "3"
"""Bump when `tokenize` or the indexed columns change: stores rebuild their terms from the chunks."""
TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0
"""BM25 column weights (measured on `bench/rag_eval.py`'s tuning half: 1, 2, 3 and 5 tried; 2 and 3
tie, 5 loses questions whose words are only in the body)."""

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
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(
    title, body, collection UNINDEXED, tokenize = "unicode61 tokenchars '._%'"
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def title_terms(source: str, heading: str | None) -> str:
    """The indexed title of a chunk: its file's name without the suffix (`cb_wait_front`,
    `cp.async`, `ptx-errors`) and its heading path, as lexical tokens."""
    name = source.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return " ".join(tokenize(stem.replace("-", " ")) + tokenize(heading or ""))


def _body_terms(text: str) -> str:
    return " ".join(tokenize(text))


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


PHRASE_WEIGHT = 0.25
"""How much a query's adjacent-pair phrases count against its single terms (see `_fts_queries`);
chosen on `bench/rag_eval.py`'s tuning half (0.25, 0.5 and 1 tried: phrases lift compiler messages,
which quote ptxas's fixed wording, and at full weight cost questions their recall)."""


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _fts_queries(query: str) -> tuple[str, str]:
    """Two FTS5 OR-queries: the query's tokens, each quoted (tokens contain `.` and `%`), and each
    pair of adjacent tokens as a phrase. BM25 scores the phrases as if they were rare words, so a
    chunk that says "device print" or "unknown symbol" outranks one that holds the same words apart;
    searched on their own and added at `PHRASE_WEIGHT`, they order chunks without drowning the words
    (at full weight, pairs of common words such as "multi core" outvote the rare word that names the
    topic). The index holds the same token stream (`tokenize` of the text, stop-words dropped on both
    sides), so a pair is adjacent in the index exactly when it is adjacent in the text."""
    tokens = tokenize(query)
    terms = " OR ".join(dict.fromkeys(_quote(t) for t in tokens))
    pairs = dict.fromkeys(f"{_quote(a)} + {_quote(b)}" for a, b in itertools.pairwise(tokens) if a != b)
    return terms, " OR ".join(pairs)


def _ensure_index_version(db: sqlite3.Connection) -> None:
    """Rebuild the lexical terms from the stored chunks when they were indexed by another version
    of the tokenizer or columns (an older kernelwright, or a store that predates `meta`)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone()
    if row is not None and row[0] == INDEX_VERSION:
        return
    with db:
        db.execute("DROP TABLE IF EXISTS chunks_fts")  # version 1: one column of terms
        db.execute("DELETE FROM chunk_terms")
        rows = db.execute("SELECT rowid, source, heading, text, collection FROM chunks").fetchall()
        db.executemany(
            "INSERT INTO chunk_terms (rowid, title, body, collection) VALUES (?, ?, ?, ?)",
            ((r[0], title_terms(r[1], r[2]), _body_terms(r[3]), r[4]) for r in rows),
        )
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('index_version', ?)", (INDEX_VERSION,))


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
            _ensure_index_version(connection)
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
            db.executemany("DELETE FROM chunk_terms WHERE rowid = ?", ((r,) for r in rowids))
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
                db.executemany("DELETE FROM chunk_terms WHERE rowid = ?", ((r,) for r in rowids))
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
                    db.execute(
                        "INSERT INTO chunk_terms (rowid, title, body, collection) VALUES (?, ?, ?, ?)",
                        (
                            cursor.lastrowid,
                            title_terms(chunk.source, chunk.heading),
                            _body_terms(chunk.text),
                            collection,
                        ),
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
        """Chunk ids and scores (larger is better) of the best lexical matches, best first: BM25 of the
        query's terms plus `PHRASE_WEIGHT` times BM25 of its adjacent pairs (`_fts_queries`)."""
        terms, phrases = _fts_queries(query)
        if not terms or limit <= 0 or not self.exists():
            return []
        with self._connect() as db:
            rows = db.execute(
                "WITH t AS (SELECT rowid, -bm25(chunk_terms, ?, ?) AS s FROM chunk_terms"
                "  WHERE chunk_terms MATCH ? AND collection = ?),"
                " p AS (SELECT rowid, -bm25(chunk_terms, ?, ?) AS s FROM chunk_terms"
                "  WHERE chunk_terms MATCH ? AND collection = ?)"
                " SELECT c.id, t.s + ? * COALESCE(p.s, 0.0) AS score FROM t"
                " LEFT JOIN p ON p.rowid = t.rowid JOIN chunks c ON c.rowid = t.rowid"
                " ORDER BY score DESC, c.source, c.start_line LIMIT ?",
                (
                    TITLE_WEIGHT,
                    BODY_WEIGHT,
                    terms,
                    collection,
                    TITLE_WEIGHT,
                    BODY_WEIGHT,
                    phrases or terms,
                    collection,
                    PHRASE_WEIGHT if phrases else 0.0,
                    limit,
                ),
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
