"""Ingest files and folders into a collection of the hybrid store, incrementally.

Each file's SHA-256 is compared with the manifest (`rag.fts`): an unchanged file is skipped, a
changed one has its chunks replaced in both stores, and a file that disappeared from under an
ingested folder has its chunks removed. Chroma is written before SQLite, with upserts, so a crash
between the two leaves the manifest on the old hash and the next ingest redoes that file.

Progress is reported through a callback (the CLI draws a progress bar with it); this module never
prints.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chromadb.api.types import Documents, EmbeddingFunction

from kernelwright.errors import ConfigError, UserError
from kernelwright.settings import Settings
from knowledge import guides_dir
from rag.formats import SUPPORTED_SUFFIXES, chunk_file
from rag.fts import FileRecord, FtsStore
from rag.hybrid import BUILTIN_COLLECTION
from rag.lexical import Chunk
from rag.vectors import VectorStore

__all__ = [
    "IngestProgress",
    "IngestReport",
    "ProgressCallback",
    "drop_collection",
    "ingest",
    "ingest_builtin",
    "validate_collection_name",
]

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
_FLUSH_CHUNKS = 512
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv"})

Action = Literal["added", "updated", "unchanged", "removed"]


@dataclass(frozen=True)
class IngestProgress:
    """One file handled: `done` of `total` files so far."""

    done: int
    total: int
    path: str
    action: Action


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class IngestReport:
    collection: str
    added: int
    updated: int
    unchanged: int
    removed: int
    chunks_written: int
    chunks_total: int
    duration_s: float
    reembedded: int = 0
    """Chunks of unchanged files whose vectors were rebuilt for a newer vector layout."""


def validate_collection_name(name: str) -> str:
    """Chroma's rule (3-63 characters of letters, digits, `.`, `_`, `-`; alphanumeric at both ends)."""
    if not _COLLECTION_NAME.match(name) or ".." in name:
        raise UserError(
            f"invalid collection name {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


_LABELS = {
    "kernelwright_hashing": "hashing",
    "onnx_mini_lm_l6_v2": "minilm",
    "kernelwright_minilm": "minilm",
    "kernelwright_openai": "openai",
}


def _embedding_label(embedding: EmbeddingFunction[Documents] | None, settings: Settings) -> str:
    """The `settings.embedding` value a collection is built with (recorded to catch mismatches)."""
    if embedding is None:
        return settings.embedding
    return _LABELS.get(embedding.name(), embedding.name())


def _collect(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(files to ingest, folders whose deleted files are to be removed, explicit files)."""
    files: list[Path] = []
    folders: list[Path] = []
    explicit: list[Path] = []
    for path in paths:
        if path.is_dir():
            folder = path.resolve()
            folders.append(folder)
            for current, dirs, names in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
                files.extend(
                    Path(current) / n for n in sorted(names) if Path(n).suffix.lower() in SUPPORTED_SUFFIXES
                )
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                supported = " ".join(sorted(SUPPORTED_SUFFIXES))
                raise UserError(f"cannot ingest {path}: unsupported file type (supported: {supported})")
            explicit.append(path.resolve())
            files.append(path.resolve())
        else:
            raise UserError(f"cannot ingest {path}: no such file or folder")
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return unique, folders, explicit


def _source(file: Path, folders: Sequence[Path], root: Path | None) -> str:
    """The name hits cite: relative to `root` when given and containing the file; else relative to the
    parent of the ingested folder holding it (so it starts with that folder's name); else the name."""
    if root is not None:
        try:
            return file.relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if file.is_relative_to(folder):
            return file.relative_to(folder.parent).as_posix()
    return file.name


def _chunk_ids(collection: str, path: str, digest: str, count: int) -> list[str]:
    prefix = hashlib.sha256(f"{collection}\0{path}".encode()).hexdigest()[:16]
    return [f"{prefix}-{digest[:8]}-{i:05d}" for i in range(count)]


def drop_collection(collection: str, settings: Settings) -> bool:
    """Delete a collection from both stores; False if it did not exist."""
    fts = FtsStore(settings.rag_db)
    existed = fts.collection(collection) is not None
    VectorStore(settings).drop(collection)
    fts.drop_collection(collection)
    return existed


def _prepare(collection: str, vectors: VectorStore, fts: FtsStore, reset: bool, label: str) -> None:
    """Make both stores hold the collection, consistently and with the expected embedding."""
    if reset:
        vectors.drop(collection)
        fts.drop_collection(collection)
    info = fts.collection(collection)
    in_chroma = vectors.embedding_name(collection)
    if info is not None and info.embedding != label:
        raise ConfigError(
            f"collection {collection!r} was built with the {info.embedding!r} embedding, not {label!r}: "
            f"set KERNELWRIGHT_EMBEDDING={info.embedding}, or rebuild it with `--reset`"
        )
    if info is None or in_chroma is None:
        # One side is missing (first ingest, a deleted chroma folder, another server): start afresh.
        vectors.drop(collection)
        fts.drop_collection(collection)
        vectors.create(collection)
        fts.create_collection(collection, label)


def ingest(
    paths: Sequence[Path],
    *,
    collection: str,
    settings: Settings,
    root: Path | None = None,
    progress: ProgressCallback | None = None,
    embedding: EmbeddingFunction[Documents] | None = None,
    reset: bool = False,
) -> IngestReport:
    """Ingest files and folders (folders: every supported file, recursively) into `collection`.

    `root`: cite sources relative to it (default: relative to each ingested folder's parent).
    `embedding`: use this function instead of the one `settings.embedding` names (tests, services).
    `reset`: drop the collection first (needed to change its embedding).
    """
    started = time.monotonic()
    validate_collection_name(collection)
    files, folders, explicit = _collect(paths)
    fts = FtsStore(settings.rag_db)
    vectors = VectorStore(settings, embedding=embedding)
    _prepare(collection, vectors, fts, reset, _embedding_label(embedding, settings))
    manifest = fts.files(collection)
    reembedded = 0 if vectors.layout_current(collection) else _reembed(collection, vectors, fts, manifest)
    seen = {str(f) for f in files}
    stale = [
        path
        for path in manifest
        if path not in seen
        and (Path(path) in explicit or any(Path(path).is_relative_to(folder) for folder in folders))
    ]
    total = len(files) + len(stale)
    done = 0
    counts: dict[Action, int] = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0}
    written = 0
    pending: list[tuple[FileRecord, list[tuple[str, Chunk]], list[str], Action]] = []

    def report(path: str, action: Action) -> None:
        nonlocal done
        done += 1
        counts[action] += 1
        if progress is not None:
            progress(IngestProgress(done, total, path, action))

    def flush() -> None:
        nonlocal written
        if not pending:
            return
        old_ids = [chunk_id for _, _, old, _ in pending for chunk_id in old]
        vectors.delete(collection, old_ids)
        vectors.upsert(collection, [item for _, items, _, _ in pending for item in items])
        fts.replace_files(collection, [(record, items) for record, items, _, _ in pending])
        for record, items, _, action in pending:
            written += len(items)
            report(record.source, action)
        pending.clear()

    for file in files:
        key = str(file)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        previous = manifest.get(key)
        if previous is not None and previous.sha256 == digest:
            report(previous.source, "unchanged")
            continue
        source = _source(file, folders, root)
        chunks = chunk_file(file, source)
        ids = _chunk_ids(collection, key, digest, len(chunks))
        record = FileRecord(key, source, digest, tuple(ids))
        old = list(previous.chunk_ids) if previous else []
        pending.append((record, list(zip(ids, chunks, strict=True)), old, "updated" if previous else "added"))
        if sum(len(items) for _, items, _, _ in pending) >= _FLUSH_CHUNKS:
            flush()
    flush()
    if stale:
        vectors.delete(collection, [chunk_id for path in stale for chunk_id in manifest[path].chunk_ids])
        fts.replace_files(collection, [], removed=stale)
        for path in stale:
            report(manifest[path].source, "removed")
    info = fts.collection(collection)
    return IngestReport(
        collection=collection,
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        removed=counts["removed"],
        chunks_written=written,
        chunks_total=info.chunks if info else 0,
        duration_s=time.monotonic() - started,
        reembedded=reembedded,
    )


def _reembed(collection: str, vectors: VectorStore, fts: FtsStore, manifest: dict[str, FileRecord]) -> int:
    """Rebuild every vector of `collection` from the chunks SQLite keeps (its layout is outdated).

    The layout stamp is written last: a crash part-way leaves it old, and the next ingest starts over.
    """
    ids = [chunk_id for record in manifest.values() for chunk_id in record.chunk_ids]
    stored = fts.chunks(ids)
    chunks = [(i, Chunk(c.source, c.heading, c.start_line, c.end_line, c.text)) for i, c in stored.items()]
    for start in range(0, len(chunks), _FLUSH_CHUNKS):
        part = chunks[start : start + _FLUSH_CHUNKS]
        vectors.delete(collection, [chunk_id for chunk_id, _ in part])
        vectors.upsert(collection, part)
    vectors.mark_layout_current(collection)
    return len(stored)


def ingest_builtin(
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
    embedding: EmbeddingFunction[Documents] | None = None,
) -> IngestReport:
    """Ingest the built-in knowledge as collection "builtin": the packaged guides (sources: their file
    names) and the PTX tables rendered per instruction (written under `settings.home`, sources
    `ptx-isa/<mnemonic>.md`), cited exactly as the lexical fallback cites them. Once done,
    `default_retriever` searches it with the hybrid store."""
    from knowledge.ptx_docs import ptx_docs_dir, write_ptx_docs

    folder = guides_dir()
    ptx_folder = ptx_docs_dir(settings.home)
    write_ptx_docs(ptx_folder)
    return ingest(
        [folder, ptx_folder],
        collection=BUILTIN_COLLECTION,
        settings=settings,
        root=folder,
        progress=progress,
        embedding=embedding,
    )
