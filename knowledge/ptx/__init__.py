"""PTX knowledge: syntax tables per architecture family, a fast checker, and prompt-ready summaries.

    check_ptx(source, target=..., filename=...)   Diagnostics for one module, before ptxas
    load_tables()                                  the merged YAML tables (cached)
    legal_forms_text(mnemonics, target, version)   "what is legal on this target", for prompts/RAG
    ptxas_check(source, ...)                       ptxas's own verdict, as the same Diagnostic type

The tables live in `tables/*.yaml`, one file per architecture family; ptxas stays the judge.
"""

from __future__ import annotations

from knowledge.ptx.checker import CHECK_SOURCE, Codes, check_ptx
from knowledge.ptx.ptxas_check import ptxas_check
from knowledge.ptx.render import legal_forms_text
from knowledge.ptx.tables import Tables, load_tables

__all__ = ["CHECK_SOURCE", "Codes", "Tables", "check_ptx", "legal_forms_text", "load_tables", "ptxas_check"]
