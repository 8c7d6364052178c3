"""The vector half of the hybrid store: a Chroma client, embedded or remote.

Embedded (`PersistentClient` under `home/chroma`) by default; a `chroma run` server when
`settings.chroma_url` is set (compose). Chroma keeps only the vectors (plus enough metadata to be
readable on its own); texts and line ranges are rendered from SQLite (`rag.fts`). Telemetry is off:
kernelwright runs offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from kernelwright.errors import ConfigError
from kernelwright.settings import Settings
from rag import embeddings as _embeddings  # registers kernelwright's embedding functions with Chroma
from rag.lexical import Chunk

__all__ = ["VectorStore", "open_client"]

_MAX_BATCH = 1000


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
            get_or_create=True,
        )

    def drop(self, name: str) -> None:
        try:
            self.client.delete_collection(name)
        except NotFoundError:
            return

    def upsert(self, name: str, items: Sequence[tuple[str, Chunk]]) -> None:
        if not items:
            return
        collection = self.open(name)
        batch = min(_MAX_BATCH, self.client.get_max_batch_size())
        for start in range(0, len(items), batch):
            part = items[start : start + batch]
            metadatas: list[Metadata] = [
                {
                    "source": chunk.source,
                    "heading": chunk.heading or "",
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                }
                for _, chunk in part
            ]
            collection.upsert(
                ids=[chunk_id for chunk_id, _ in part],
                documents=[_embedded_text(chunk) for _, chunk in part],
                metadatas=metadatas,
            )

    def delete(self, name: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        collection = self.open(name)
        for start in range(0, len(ids), _MAX_BATCH):
            collection.delete(ids=list(ids[start : start + _MAX_BATCH]))

    def count(self, name: str) -> int:
        return self.open(name).count()

    def search(self, name: str, query: str, limit: int) -> list[tuple[str, float]]:
        """Chunk ids and cosine similarities of the nearest chunks, best first."""
        collection = self.open(name)
        total = collection.count()
        if total == 0 or limit <= 0:
            return []
        result: Any = collection.query(
            query_texts=[query], n_results=min(limit, total), include=["distances"]
        )
        ids: list[str] = result["ids"][0]
        distances: list[float] = result["distances"][0] if result.get("distances") else [0.0] * len(ids)
        return [(chunk_id, 1.0 - float(d)) for chunk_id, d in zip(ids, distances, strict=True)]


def _embedded_text(chunk: Chunk) -> str:
    """What is embedded: the heading path adds the topic a short chunk may not name itself."""
    return f"{chunk.heading}\n\n{chunk.text}" if chunk.heading else chunk.text
