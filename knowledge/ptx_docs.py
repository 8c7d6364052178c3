"""The PTX syntax tables rendered as one short Markdown document per instruction, for retrieval.

The tables (`knowledge.ptx.tables`) are the project's most precise PTX knowledge, but the checker
reads them, not the model. Rendered per instruction (mnemonic, syntax, modifier slots with their
value sets, which values need which target or `.version`, operand shapes, and the ptxas messages
that typically point at it), they become documents the retriever can cite: a diagnostic such as
`Feature 'cp.async' requires .target sm_80 or higher` or `Arguments mismatch for instruction
'mad.lo'` then finds the page of the instruction it is about.

Each document's source is `ptx-isa/<mnemonic>.md` (`::` in a name becomes `__`, which file systems
and citations handle better), stable across runs because rendering is deterministic. Two more pages
cover the special registers and the targets with their minimum `.version`.

The documents are rendered in memory (`ptx_documents`, `ptx_chunks`, used by the lexical fallback)
or written to a folder (`write_ptx_docs`, `ptx_docs_dir`, used when the built-in collection is
ingested into the hybrid store): both cite the same sources and line ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

from knowledge.ptx.tables import Form, Requirement, Slot, Tables, load_tables
from rag.lexical import Chunk, split_markdown

__all__ = [
    "PTX_DOCS_PREFIX",
    "ptx_chunks",
    "ptx_doc_source",
    "ptx_docs_dir",
    "ptx_documents",
    "render_instruction",
    "write_ptx_docs",
]

PTX_DOCS_PREFIX = "ptx-isa"
"""The folder name every rendered document's source starts with."""

# ptxas names a missing required slot after what it holds; the names come from its messages.
_SLOT_MESSAGES: Mapping[str, str] = {
    "rnd": "Rounding modifier required for instruction '{base}'",
    "cmp": "Comparison modifier required for instruction '{base}'",
    "shape": "Shape modifier required for instruction '{base}'",
    "scope": "Scope modifier required for instruction '{base}'",
    "op": "Reduction operation is required for instruction '{base}'",
    "type": "Unexpected instruction types specified for '{name}'",
}
_MAX_VALUES_PER_LINE = 24


def ptx_doc_source(name: str) -> str:
    """`ptx-isa/cp.async.md` for `cp.async`; `tcgen05.wait::ld` becomes `ptx-isa/tcgen05.wait__ld.md`."""
    return f"{PTX_DOCS_PREFIX}/{name.replace('::', '__')}.md"


def _gate(req: Requirement) -> str:
    """The requirement in ptxas's own words, so a diagnostic quoting them finds this text."""
    parts: list[str] = []
    if req.arch_names:
        parts.append(
            "an arch-specific target (" + ", ".join(req.arch_names) + "); not supported on the generic "
            "target of the same number"
        )
    elif req.sm is not None:
        parts.append(f".target sm_{req.sm} or higher")
    if req.ptx is not None:
        parts.append(f"PTX ISA .version {req.ptx[0]}.{req.ptx[1]} or later")
    return ("; and " if req.arch_names else " and ").join(parts)


def _syntax(form: Form) -> str:
    """`mad{.mode}{.rnd}.type d, a, b, c`: required slots as `.slot`, optional ones in braces."""
    head = form.name + "".join(f".{s.name}" if s.required else f"{{.{s.name}}}" for s in form.slots)
    if form.operands is None:
        return head + " ..."
    operands = ", ".join(o.render() for o in form.operands)
    return f"{head} {operands}".rstrip()


def _slot_lines(slot: Slot) -> list[str]:
    """One line per group of values sharing a requirement: ungated values first."""
    groups: dict[str, list[str]] = {}
    for value in slot.values:
        groups.setdefault(_gate(value.req), []).append(value.value)
    label = f"- `{slot.name}`" + (" (required)" if slot.required else " (optional)")
    lines: list[str] = []
    for gate, values in sorted(groups.items(), key=lambda item: (item[0] != "", item[0])):
        shown = " ".join(values[:_MAX_VALUES_PER_LINE])
        if len(values) > _MAX_VALUES_PER_LINE:
            shown += f" (and {len(values) - _MAX_VALUES_PER_LINE} more)"
        if not lines:
            lines.append(f"{label}: {shown}" + (f"; these need {gate}" if gate else ""))
        else:
            lines.append(f"  - needs {gate}: {shown}")
    return lines


def _operand_lines(form: Form) -> list[str]:
    if form.operands is None:
        return ["Operands are not described in the tables; see the PTX ISA manual."]
    if not form.operands:
        return ["No operands."]
    low, high = form.operand_range() or (0, 0)
    count = f"{low}" if low == high else f"{low} to {high}"
    lines = [f"{count} operands: " + ", ".join(f"`{o.render()}`" for o in form.operands) + "."]
    for typed in form.typed:
        if typed.position >= len(form.operands):
            continue
        name = form.operands[typed.position].name
        if typed.literal is not None:
            lines.append(f"- operand `{name}` must be `{typed.literal}`.")
        elif typed.slot is not None:
            wider = " (a wider integer register is accepted)" if typed.wider_ok else ""
            lines.append(f"- operand `{name}` must be a register of the `{typed.slot}` type{wider}.")
    return lines


def _message_lines(form: Form, base: str) -> list[str]:
    """The ptxas messages that point at this instruction, with what each means here."""
    lines: list[str] = []
    if form.operands is not None:
        lines.append(
            f"- `Arguments mismatch for instruction '{form.name}'`: an operand's count, kind or size "
            f"does not fit `{_syntax(form)}` (undeclared registers also give `Unknown symbol`)."
        )
    for slot in form.slots:
        template = _SLOT_MESSAGES.get(slot.name)
        if slot.required and template is not None:
            message = template.format(base=base, name=form.name)
            values = " ".join(v.value for v in slot.values[:8])
            # "write", not "add": `add` is an instruction, and every page would match a query about it.
            lines.append(f"- `{message}`: write one of the `{slot.name}` values ({values}).")
    if form.req.arch_names:
        lines.append(
            f"- `Instruction '{form.name}' not supported on .target 'sm_{min(form.req.arch)}'`: "
            f"use `.target {form.req.arch_names[0]}` (and the matching -arch) instead."
        )
    elif form.req.sm is not None:
        lines.append(
            f"- `Feature '{form.name}' requires .target sm_{form.req.sm} or higher`: "
            "raise `.target` or use another instruction."
        )
    if form.req.ptx is not None:
        lines.append(
            f"- `Feature '{form.name}' requires PTX ISA .version {form.req.ptx[0]}.{form.req.ptx[1]} "
            "or later`: raise `.version`."
        )
    lines.extend(_wide_access_lines(form, base))
    if form.closed:
        lines.append(f"- `Unknown modifier`: not one of the {form.name} modifiers listed above.")
    return lines


def _wide_access_lines(form: Form, base: str) -> list[str]:
    """ptxas names a gated `.v8` load or store by its width, not by the modifier: eight 32-bit
    elements are `Feature '256 bit wide load/store'`. Only `ld` and `st` say "load/store"; other
    `.v8` forms (atom, red) are gated under their own names."""
    if base not in ("ld", "st"):
        return []
    lines: list[str] = []
    for slot in form.slots:
        for value in slot.values:
            if slot.name != "vec" or value.value != ".v8":
                continue
            if value.req.sm is not None:
                lines.append(
                    f"- `Feature '256 bit wide load/store' requires .target sm_{value.req.sm} or higher`: "
                    f"`{base}.v8` moves eight 32-bit elements (256 bits wide) at once; use `.v4` "
                    "(128 bits) or raise `.target`."
                )
            if value.req.ptx is not None:
                lines.append(
                    "- `Feature '256 bit wide load/store' requires PTX ISA .version "
                    f"{value.req.ptx[0]}.{value.req.ptx[1]} or later`: `{base}.v8` (256-bit wide access) "
                    "needs a newer `.version`."
                )
    return lines


def render_instruction(name: str, forms: Sequence[Form]) -> str:
    """The Markdown page of instruction `name`. Its parts are labelled paragraphs, not headings, so a
    page (at most about 50 lines) stays one chunk: split per part, the near-identical "errors" and
    "operands" parts of 148 pages would compete with each other instead of their instructions."""
    base = name.split(".", maxsplit=1)[0]
    first = forms[0]
    gate = _gate(first.req)
    lines = [
        f"# PTX instruction {name}",
        "",
        f"`{name}`: {first.summary}.",
        "",
        f"Availability: {'needs ' + gate if gate else 'every target and .version'}.",
    ]
    for form in forms:
        if len(forms) > 1:
            lines += ["", f"Form {form.id}: {form.summary}."]
        lines += ["", f"Syntax of {name}:", "", "```", _syntax(form), "```", ""]
        if form.slots:
            lines.append(
                "Modifier slots (write them in any order, at most one value per slot"
                + (", and no other modifier" if form.closed else "; other modifiers may exist")
                + "):"
            )
            for slot in form.slots:
                lines.extend(_slot_lines(slot))
        else:
            lines.append("No modifiers.")
        for rule in form.rules:
            lines.append(f"- rule: {rule.message}.")
        for combo in form.combos:
            together = " with ".join(sorted(combo.values))
            lines.append(f"- {together} together need {_gate(combo.req)}.")
        lines += ["", f"Operands of {name}:", ""]
        lines.extend(_operand_lines(form))
        messages = _message_lines(form, base)
        if messages:
            lines += ["", f"ptxas errors about {name}:", ""]
            lines.extend(messages)
    return "\n".join(lines) + "\n"


def _special_registers_page(tables: Tables) -> str:
    groups: dict[str, list[str]] = {}
    for register in tables.special_registers.values():
        suffix = " (.x .y .z)" if register.vector else ""
        groups.setdefault(_gate(register.req), []).append(register.name + suffix)
    lines = [
        "# PTX special registers",
        "",
        "Special registers are read-only and can only be read with `mov` (for example "
        "`mov.u32 %r1, %tid.x;`); an arithmetic instruction rejects them with `Special register "
        "argument not allowed`. A name not listed here gives `Unknown symbol`.",
        "",
    ]
    for gate, names in sorted(groups.items(), key=lambda item: (item[0] != "", item[0])):
        lines.append(f"- {'needs ' + gate if gate else 'every target'}: " + ", ".join(names))
    return "\n".join(lines) + "\n"


def _targets_page(tables: Tables) -> str:
    lines = [
        "# PTX targets and their minimum .version",
        "",
        "A module's `.version` must be at least the minimum of its `.target`; otherwise ptxas says "
        "`PTX .version X does not support .target sm_NN`. An unknown name gives `Unsupported .target`, "
        "and a `.version` newer than ptxas gives `Unsupported .version`. Targets ending in `a` "
        "(sm_90a, sm_100a) are arch-specific: they unlock instructions such as wgmma and setmaxnreg "
        "that the generic target rejects.",
        "",
        "In the instruction pages, `[x]` is an address operand, `{x}` a vector of registers "
        "(`.v2`/`.v4`) and `x?` an optional operand.",
        "",
        f"The newest .version these tables know is {tables.max_version[0]}.{tables.max_version[1]}.",
        "",
    ]
    by_number = sorted(tables.targets.values(), key=lambda t: (t.number, t.suffix))
    lines.extend(f"- `{t.name}`: .version {t.min_ptx[0]}.{t.min_ptx[1]} or later" for t in by_number)
    return "\n".join(lines) + "\n"


@cache
def ptx_documents() -> dict[str, str]:
    """Every rendered page by source (`ptx-isa/<mnemonic>.md`), in name order; cached per process."""
    tables = load_tables()
    by_name: dict[str, list[Form]] = {}
    for form in tables.forms_by_id.values():
        by_name.setdefault(form.name, []).append(form)
    pages = {
        ptx_doc_source(name): render_instruction(name, sorted(forms, key=lambda f: f.id))
        for name, forms in sorted(by_name.items())
    }
    pages[f"{PTX_DOCS_PREFIX}/special-registers.md"] = _special_registers_page(tables)
    pages[f"{PTX_DOCS_PREFIX}/targets.md"] = _targets_page(tables)
    return pages


def ptx_chunks() -> list[Chunk]:
    """The pages cut into chunks exactly as ingesting the written files would cut them."""
    return [chunk for source, text in ptx_documents().items() for chunk in split_markdown(text, source)]


def write_ptx_docs(folder: Path) -> list[Path]:
    """Write the pages into `folder` (named as their sources, minus the prefix); unchanged files are
    not rewritten, so an incremental ingest skips them, and pages no longer rendered are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source, text in ptx_documents().items():
        path = folder / source.removeprefix(PTX_DOCS_PREFIX + "/")
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    _remove_stale(folder, written)
    return written


def _remove_stale(folder: Path, keep: Iterable[Path]) -> None:
    kept = set(keep)
    for path in folder.glob("*.md"):
        if path not in kept:
            path.unlink()


def ptx_docs_dir(home: Path) -> Path:
    """Where the pages are written for ingest: `<home>/cache/ptx-isa` (its name is the prefix of
    their sources, since ingest cites files relative to the ingested folder's parent)."""
    return home / "cache" / PTX_DOCS_PREFIX
