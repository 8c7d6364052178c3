"""Ingest and search timings of the hybrid store on the TT-Metal docs corpus, and hit@5 on known
questions (each names the file that answers it), lexical-only vs fused.

    python bench/rag_ttmetal.py [--corpus ../shared/corpora/tt-metal] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import rag
from kernelwright.settings import Settings
from rag.fts import FtsStore
from rag.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = {
    "DRAM loopback example": "tt_metal/examples/dram_loopback.rst",
    "cb_reserve_back": "circular_buffers/cb_reserve_back.rst",
    "mul_tiles_init": "kernel_apis/compute/mul_tiles.rst",
    "TT_METAL_WATCHER environment variable": "tools/watcher.rst",
    "multicast matmul data reuse across cores": "labs/matmul/lab3/lab3.rst",
    "DPRINT from a kernel": "Debugging/Kernel_Debugging_Tips.md",
    "how to create a circular buffer on the host": "CircularBuffers.rst",
    "noc_async_read_tile": "data_movement",
    "eltwise binary add example compute kernel": "examples/eltwise_binary.rst",
    "SFPI custom smoothstep": "custom_sfpi_smoothstep.rst",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "tt-metal")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(_env_file=None, home=Path(home))
        started = time.perf_counter()
        report = ingest([args.corpus], collection="tt-metal", settings=settings)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        ingest([args.corpus], collection="tt-metal", settings=settings)
        warm = time.perf_counter() - started
        print(
            f"ingest: {report.added} files, {report.chunks_total} chunks, {cold:.2f} s cold;"
            f" re-ingest {warm:.3f} s"
        )
        fts = FtsStore(settings.rag_db)
        rag.search("warm up", collection="tt-metal", k=5, settings=settings)
        fused_hits = lexical_hits = 0
        latencies: list[float] = []
        for query, expected in QUESTIONS.items():
            for _ in range(args.repeat):
                started = time.perf_counter()
                hits = rag.search(query, collection="tt-metal", k=5, settings=settings)
                latencies.append(time.perf_counter() - started)
            fused_hits += any(expected in h.source for h in hits)
            lexical = fts.chunks([i for i, _ in fts.search(query, "tt-metal", 5)])
            lexical_hits += any(expected in c.source for c in lexical.values())
        latencies.sort()
        print(
            f"search: median {statistics.median(latencies) * 1000:.1f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms over {len(latencies)} queries"
        )
        print(f"hit@5: fused {fused_hits}/{len(QUESTIONS)}, lexical only {lexical_hits}/{len(QUESTIONS)}")


if __name__ == "__main__":
    main()
