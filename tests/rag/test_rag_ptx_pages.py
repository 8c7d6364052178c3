"""What the rendered PTX pages say so that ptxas's own words find them (facts from the tables)."""

from __future__ import annotations

from knowledge.ptx_docs import ptx_chunks, ptx_documents
from rag.lexical import LexicalIndex


def test_v8_loads_and_stores_are_named_as_ptxas_names_them() -> None:
    pages = ptx_documents()
    for name in ("ld", "st"):
        page = pages[f"ptx-isa/{name}.md"]
        assert "`Feature '256 bit wide load/store' requires .target sm_100 or higher`" in page
        assert "`Feature '256 bit wide load/store' requires PTX ISA .version 8.8 or later`" in page
    # atom and red have `.v8` too, but ptxas does not call those a load/store.
    assert not [s for s, text in pages.items() if "256 bit wide" in text and s not in _LOAD_STORE]


_LOAD_STORE = {"ptx-isa/ld.md", "ptx-isa/st.md"}


def test_boilerplate_does_not_name_an_instruction() -> None:
    """Every page's advice once said "add one of the type values": a query about `add` matched all
    of them. The advice says "write" now, and `add` finds its own page first."""
    pages = ptx_documents()
    assert not [s for s, text in pages.items() if "add one of" in text]
    index = LexicalIndex(ptx_chunks())
    hits = index.search("Arguments mismatch for instruction 'add'", k=3)
    assert hits[0].source == "ptx-isa/add.md"
    hits = index.search("Feature '256 bit wide load/store' requires .target sm_100 or higher", k=2)
    assert {h.source for h in hits} == _LOAD_STORE
