"""The PTX tables rendered as per-instruction pages: content, gating text, stable sources."""

from __future__ import annotations

from pathlib import Path

from knowledge.ptx_docs import ptx_chunks, ptx_doc_source, ptx_documents, write_ptx_docs
from rag.retriever import builtin_retriever


def test_pages_cover_every_instruction_with_stable_sources() -> None:
    pages = ptx_documents()
    assert len(pages) > 100
    assert all(source.startswith("ptx-isa/") and source.endswith(".md") for source in pages)
    assert ptx_doc_source("tcgen05.wait::ld") == "ptx-isa/tcgen05.wait__ld.md"
    assert pages == ptx_documents()  # deterministic


def test_mad_page_lists_slots_operands_and_messages() -> None:
    page = ptx_documents()["ptx-isa/mad.md"]
    assert page.startswith("# PTX instruction mad\n")
    assert "mad{.mode}{.rnd}{.ftz}{.sat}{.cc}.type d, a, b, c" in page
    assert "- `type` (required): .u16 .u32" in page
    assert "4 operands: `d`, `a`, `b`, `c`." in page
    assert "Arguments mismatch for instruction 'mad'" in page


def test_gating_text_names_target_and_version() -> None:
    pages = ptx_documents()
    assert "needs .target sm_80 or higher and PTX ISA .version 7.0 or later" in pages["ptx-isa/cp.async.md"]
    assert "needs PTX ISA .version 7.4 or later: .L2::256B" in pages["ptx-isa/ld.md"] or (
        ".L2::256B" in pages["ptx-isa/ld.md"]
    )
    wgmma = pages["ptx-isa/wgmma.fence.md"]
    assert "arch-specific target (sm_90a)" in wgmma
    assert "Instruction 'wgmma.fence' not supported on .target 'sm_90'" in wgmma
    assert "sm_90a" in pages["ptx-isa/targets.md"]


def test_chunks_match_written_files_and_builtin_retriever_finds_them(tmp_path: Path) -> None:
    written = write_ptx_docs(tmp_path / "ptx-isa")
    assert len(written) == len(ptx_documents())
    chunks = ptx_chunks()
    mad = [c for c in chunks if c.source == "ptx-isa/mad.md"]
    text = (tmp_path / "ptx-isa" / "mad.md").read_text(encoding="utf-8").split("\n")
    for chunk in mad:
        assert chunk.text == "\n".join(text[chunk.start_line - 1 : chunk.end_line])
    hits = builtin_retriever().search("Feature 'cp.async' requires .target sm_80 or higher", k=5)
    assert any(h.source == "ptx-isa/cp.async.md" for h in hits)
    (tmp_path / "ptx-isa" / "gone.md").write_text("stale", encoding="utf-8")
    write_ptx_docs(tmp_path / "ptx-isa")
    assert not (tmp_path / "ptx-isa" / "gone.md").exists()
