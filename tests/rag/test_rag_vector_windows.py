"""Long chunks embedded as windows for short-input models: every word reaches the vector index, a
search returns each chunk once, and deleting a chunk deletes its windows."""

from __future__ import annotations

from pathlib import Path

from kernelwright.settings import Settings
from rag.embeddings import HashingEmbedding
from rag.ingest import ingest
from rag.lexical import Chunk
from rag.vectors import WINDOW_OVERLAP, WINDOW_WORDS, VectorStore, embedded_texts


def _long_chunk(words: int, last: str) -> Chunk:
    body = " ".join(f"filler{i}" for i in range(words - 1)) + f" {last}"
    return Chunk("docs/long.md", "Guide > Long section", 1, 40, body)


def test_short_chunks_are_one_text_and_long_ones_overlapping_windows() -> None:
    short = Chunk("docs/a.md", "Guide > Short", 1, 2, "Reserve a page in the circular buffer.")
    assert embedded_texts(short) == ["Guide > Short\n\nReserve a page in the circular buffer."]
    chunk = _long_chunk(400, "zanzibar")
    windows = embedded_texts(chunk)
    assert len(windows) == 4  # starts 0, 120, 240, 360
    for window in windows:
        lead, body = window.split("\n\n", 1)
        assert lead == "Guide > Long section" and len(body.split()) <= WINDOW_WORDS
    first, second = (w.split("\n\n", 1)[1].split() for w in windows[:2])
    assert first[-WINDOW_OVERLAP:] == second[:WINDOW_OVERLAP]
    assert windows[-1].endswith("zanzibar") and "filler0 " in windows[0]


def test_windows_are_searched_as_one_chunk_and_deleted_with_it(settings: Settings) -> None:
    store = VectorStore(settings, embedding=HashingEmbedding(), windows=True)
    store.create("notes")
    long = _long_chunk(400, "zanzibar semaphore")
    short = Chunk("docs/short.md", "Guide > Short", 1, 2, "Semaphores order the reader and writer.")
    store.upsert("notes", [("long", long), ("short", short)])
    assert store.count("notes") == 1 + len(embedded_texts(long))
    hits = store.search("notes", "zanzibar semaphore", 5)
    assert [chunk_id for chunk_id, _ in hits] == ["long", "short"]
    assert hits[0][1] >= hits[1][1]
    store.delete("notes", ["long"])
    assert store.count("notes") == 1
    assert [chunk_id for chunk_id, _ in store.search("notes", "zanzibar", 5)] == ["short"]


def test_embeddings_without_an_input_limit_store_one_vector_per_chunk(settings: Settings) -> None:
    store = VectorStore(settings, embedding=HashingEmbedding())
    store.create("plain")
    store.upsert("plain", [("long", _long_chunk(400, "zanzibar"))])
    assert store.count("plain") == 1


def test_a_collection_from_an_older_vector_layout_is_reembedded_by_the_next_ingest(
    settings: Settings, tmp_path: Path
) -> None:
    """No `--reset` needed after the embedding of chunks changes: unchanged files get new vectors."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b"):
        (docs / f"{name}.md").write_text(f"# Topic {name}\n\nCircular buffers hold pages for {name}.\n")
    first = ingest([docs], collection="older", settings=settings, embedding=HashingEmbedding())
    assert first.added == 2 and first.reembedded == 0
    store = VectorStore(settings, embedding=HashingEmbedding())
    assert store.layout_current("older")
    # what an ingest before the layout stamp left: no stamp, and vectors of another layout
    collection = store.client.get_collection("older")
    collection.modify(metadata={"kernelwright_layout": "1"})
    collection.delete(ids=collection.get()["ids"][:1])
    assert store.count("older") == first.chunks_total - 1 and not store.layout_current("older")

    second = ingest([docs], collection="older", settings=settings, embedding=HashingEmbedding())
    assert second.unchanged == 2 and second.chunks_written == 0
    assert second.reembedded == first.chunks_total
    assert store.count("older") == first.chunks_total and store.layout_current("older")
    third = ingest([docs], collection="older", settings=settings, embedding=HashingEmbedding())
    assert third.reembedded == 0
