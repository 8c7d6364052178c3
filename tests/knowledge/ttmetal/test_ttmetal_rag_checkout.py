"""A user's tt-metal checkout ingests with its programming_examples: kernels and host .cpp are searchable."""

from __future__ import annotations

import shutil
from pathlib import Path

import rag
from kernelwright.settings import Settings
from rag.ingest import ingest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "ttmetal"


def test_checkout_with_programming_examples_ingests(settings: Settings, tmp_path: Path) -> None:
    checkout = tmp_path / "tt-metal"
    examples = checkout / "tt_metal" / "programming_examples"
    shutil.copytree(EXAMPLES / "eltwise_add_multi", examples / "eltwise_add_multi")
    (checkout / "README.md").write_text(
        "# TT-Metalium\n\nProgramming examples live in tt_metal/programming_examples.\n"
    )
    report = ingest([checkout], collection="tt-metal", settings=settings)
    assert report.added >= 4
    hits = rag.search(
        "split_work_to_cores start_tile SetRuntimeArgs", collection="tt-metal", k=5, settings=settings
    )
    assert any(h.source.endswith("programming_examples/eltwise_add_multi/eltwise_add.cpp") for h in hits), [
        h.citation for h in hits
    ]
    hits = rag.search(
        "noc_async_write_tile cb_pop_front writer", collection="tt-metal", k=5, settings=settings
    )
    assert any("kernels/dataflow/write_tiles.cpp" in h.source for h in hits), [h.citation for h in hits]
