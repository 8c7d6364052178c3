"""The real TT-Metal docs corpus (../shared/corpora/tt-metal): ingest it and find known answers.

Slow (a few seconds to embed ~2,400 chunks) and skipped where the corpus is absent: a user's
checkout has no ../shared.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import rag
from kernelwright.settings import Settings
from rag.ingest import ingest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tt-metal"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}"),
]

EXPECTED = {
    "DRAM loopback example": "tt_metal/examples/dram_loopback.rst",
    "cb_reserve_back": "kernel_apis/circular_buffers/cb_reserve_back.rst",
    "mul_tiles_init": "kernel_apis/compute/mul_tiles.rst",
    "TT_METAL_WATCHER environment variable": "tools/watcher.rst",
    "multicast matmul data reuse across cores": "labs/matmul/lab3/lab3.rst",
    "DPRINT from a kernel": "Debugging/Kernel_Debugging_Tips.md",
}


def test_ingest_and_search_tt_metal_docs(settings: Settings) -> None:
    report = ingest([CORPUS], collection="tt-metal", settings=settings)
    assert report.added > 300 and report.chunks_total > 2000
    again = ingest([CORPUS], collection="tt-metal", settings=settings)
    assert again.unchanged == report.added and again.chunks_written == 0
    for query, expected in EXPECTED.items():
        started = time.monotonic()
        hits = rag.search(query, collection="tt-metal", k=5, settings=settings)
        assert time.monotonic() - started < 2.0
        assert any(expected in hit.source for hit in hits), (query, [h.citation for h in hits])
        assert all(hit.source.startswith("tt-metal/") for hit in hits)
