"""The vector half of the hybrid store: a Chroma client, embedded or remote.

Embedded (`PersistentClient` under `home/chroma`) by default; a `chroma run` server when
`settings.chroma_url` is set (compose). Chroma keeps only the vectors (plus enough metadata to be
readable on its own); texts and line ranges are rendered from SQLite (`rag.fts`). Telemetry is off:
kernelwright runs offline.

A sentence model reads a bounded input (MiniLM: 256 word pieces, about 150 words of technical text)
and silently drops the rest, and a fifth of the TT-Metal chunks are longer than that: a fact at the
end of a long section was invisible to vector search. For such embeddings (`WINDOWED_EMBEDDINGS`) a
long chunk is embedded as overlapping windows of `WINDOW_WORDS` words, each led by the chunk's
heading; window vectors are stored under `<chunk id>#<n>` with the chunk's id in their metadata, and
a search returns each chunk once, at its best window's similarity.

How chunks become vectors (`LAYOUT_VERSION`) is stamped on each collection's metadata: a collection
built under an older layout (e.g. MiniLM before windows) is re-embedded by the next ingest, from the
chunks SQLite keeps, without `--reset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata, Where
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from kernelwright.errors import ConfigError
from kernelwright.settings import Settings
from rag import embeddings as _embeddings  # registers kernelwright's embedding functions with Chroma
from rag.lexical import Chunk

__all__ = [
    "LAYOUT_VERSION",
    "WINDOWED_EMBEDDINGS",
    "WINDOW_OVERLAP",
    "WINDOW_WORDS",
    "VectorStore",
    "embedded_texts",
    "open_client",
]

_MAX_BATCH = 1000
WINDOWED_EMBEDDINGS = frozenset({"kernelwright_minilm", "onnx_mini_lm_l6_v2"})
"""Chroma names of embedding functions with a short input limit (see the module docstring)."""
WINDOW_WORDS = 150
WINDOW_OVERLAP = 30
"""Words per window and words shared by consecutive windows (a sentence cut at one window's end is
whole in the next)."""
LAYOUT_VERSION = "2"
"""Bump when what is embedded for a chunk changes (2: heading-led overlapping windows)."""
_LAYOUT_KEY = "kernelwright_layout"
_WINDOW_MARK = "#"
_CANDIDATES_PER_RESULT = 3


def open_client(settings: Settings) -> ClientAPI:
    """An embedded client under `settings.chroma_dir`, or an HTTP client to `settings.chroma_url`."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"KERNELWRIGHT_CHROMA_URL must look like http://host:8000, got {settings.chroma_url!r}"
        )
    ssl = url.scheme == "https"
    return chromadb.HttpClient(
        host=url.hostname, port=url.port or (443 if ssl else 8000), ssl=ssl, settings=chroma_settings
    )


@dataclass
class VectorStore:
    """Chunk vectors per collection. `embedding` overrides the function a collection is opened or
    created with (tests inject an SDK client over a mock transport this way); by default a new
    collection gets `make_embedding(settings)` and an existing one rebuilds its own from its config."""

    settings: Settings
    embedding: EmbeddingFunction[Documents] | None = None
    windows: bool | None = None
    """Embed long chunks as windows: None decides by the collection's embedding function."""
    _client: ClientAPI | None = None

    @property
    def client(self) -> ClientAPI:
        if self._client is None:
            self._client = open_client(self.settings)
        return self._client

    def names(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def embedding_name(self, name: str) -> str | None:
        """The name of the embedding function a collection was built with (None: no such collection)."""
        try:
            collection = self.client.get_collection(name)
        except NotFoundError:
            return None
        config = collection.configuration_json.get("embedding_function") or {}
        value = config.get("name")
        return str(value) if value is not None else None

    def open(self, name: str) -> Collection:
        ef_name = self.embedding_name(name)
        if ef_name is not None:
            _embeddings.check_embedding_usable(ef_name)
        if self.embedding is not None:
            return self.client.get_collection(name, embedding_function=self.embedding)  # type: ignore[arg-type]
        return self.client.get_collection(name)

    def create(self, name: str) -> Collection:
        embedding = self.embedding or _embeddings.make_embedding(self.settings)
        return self.client.create_collection(
            name,
            embedding_function=embedding,  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
            metadata={_LAYOUT_KEY: LAYOUT_VERSION},
            get_or_create=True,
        )

    def layout_current(self, name: str) -> bool:
        """Whether the collection's vectors were made under this `LAYOUT_VERSION`."""
        metadata = self.client.get_collection(name).metadata or {}
        return metadata.get(_LAYOUT_KEY) == LAYOUT_VERSION

    def mark_layout_current(self, name: str) -> None:
        collection = self.client.get_collection(name)
        collection.modify(metadata={**(collection.metadata or {}), _LAYOUT_KEY: LAYOUT_VERSION})

    def drop(self, name: str) -> None:
        try:
            self.client.delete_collection(name)
        except NotFoundError:
            return

    def _windowed(self, collection: Collection) -> bool:
        if self.windows is not None:
            return self.windows
        config = collection.configuration_json.get("embedding_function") or {}
        return str(config.get("name")) in WINDOWED_EMBEDDINGS

    def upsert(self, name: str, items: Sequence[tuple[str, Chunk]]) -> None:
        if not items:
            return
        collection = self.open(name)
        windowed = self._windowed(collection)
        entries: list[tuple[str, str, Metadata]] = []
        for chunk_id, chunk in items:
            metadata: Metadata = {
                "source": chunk.source,
                "heading": chunk.heading or "",
                "start_line": chunk.start_line,
                "end_line": chunk.end_line,
                "chunk": chunk_id,
            }
            texts = embedded_texts(chunk) if windowed else [_embedded_text(chunk)]
            for index, text in enumerate(texts):
                entry_id = chunk_id if index == 0 else f"{chunk_id}{_WINDOW_MARK}{index}"
                entries.append((entry_id, text, metadata))
        batch = min(_MAX_BATCH, self.client.get_max_batch_size())
        for start in range(0, len(entries), batch):
            part = entries[start : start + batch]
            collection.upsert(
                ids=[entry_id for entry_id, _, _ in part],
                documents=[text for _, text, _ in part],
                metadatas=[metadata for _, _, metadata in part],
            )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        """Delete chunks' vectors, their extra windows included (found by the `chunk` metadata)."""
        if not ids:
            return
        collection = self.open(name)
        for start in range(0, len(ids), _MAX_BATCH):
            part = list(ids[start : start + _MAX_BATCH])
            collection.delete(ids=part)
            among: dict[Literal["$in", "$nin"], list[str | int | float | bool]] = {"$in": list(part)}
            owners: Where = {"chunk": among}
            collection.delete(where=owners)

    def count(self, name: str) -> int:
        return self.open(name).count()

    def search(self, name: str, query: str, limit: int) -> list[tuple[str, float]]:
        """Chunk ids and cosine similarities of the nearest chunks, best first (a chunk embedded as
        several windows counts once, at its nearest window)."""
        collection = self.open(name)
        total = collection.count()
        if total == 0 or limit <= 0:
            return []
        wanted = limit * _CANDIDATES_PER_RESULT if self._windowed(collection) else limit
        result: Any = collection.query(
            query_texts=[query], n_results=min(wanted, total), include=["distances"]
        )
        ids: list[str] = result["ids"][0]
        distances: list[float] = result["distances"][0] if result.get("distances") else [0.0] * len(ids)
        best: dict[str, float] = {}
        for entry_id, distance in zip(ids, distances, strict=True):
            best.setdefault(entry_id.split(_WINDOW_MARK, 1)[0], 1.0 - float(distance))
        return list(best.items())[:limit]


def embedded_texts(chunk: Chunk, words: int = WINDOW_WORDS, overlap: int = WINDOW_OVERLAP) -> list[str]:
    """What is embedded for `chunk` by a model with a short input: one text when it is short, else
    overlapping windows of `words` words, each led by the heading path (the topic a window in the
    middle of a section would not name). Chunk ids never contain `#`, so window ids cannot clash."""
    tokens = chunk.text.split()
    if len(tokens) <= words:
        return [_embedded_text(chunk)]
    lead = f"{chunk.heading}\n\n" if chunk.heading else ""
    step = max(1, words - overlap)
    starts = range(0, max(1, len(tokens) - overlap), step)
    return [lead + " ".join(tokens[start : start + words]) for start in starts]


def _embedded_text(chunk: Chunk) -> str:
    """What is embedded: the heading path adds the topic a short chunk may not name itself."""
    return f"{chunk.heading}\n\n{chunk.text}" if chunk.heading else chunk.text
