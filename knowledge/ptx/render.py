"""Rendering the tables as knowledge: what is legal on a target, compactly, for prompts and RAG.

Only the forms of the instructions a kernel uses are rendered, with the values legal on the given
target and `.version`, and the values that would need a newer one listed apart (so the model
learns both what to write and what to avoid).
"""

from __future__ import annotations

from collections.abc import Iterable

from knowledge.ptx.checker import resolve_target
from knowledge.ptx.tables import Form, Target, Version, load_tables, parse_version

__all__ = ["legal_forms_text"]


def legal_forms_text(mnemonics: Iterable[str], target: str, version: str | None = None) -> str:
    """Compact text of the legal forms of `mnemonics` (e.g. `ld`, `cp.async`, `mma`) on `target`."""
    tables = load_tables()
    resolved = resolve_target(target, tables)
    parsed = parse_version(version) if version else None
    header = f"PTX forms legal on {target}" + (f" with .version {version}" if version else "")
    lines = [header + " (modifiers may appear in any order; `?` marks optional operands):"]
    seen: set[str] = set()
    for raw in mnemonics:
        name = raw.strip().lstrip(".")
        if not name:
            continue
        base = name.split(".")[0]
        forms = [
            f
            for f in tables.forms_by_base.get(base, ())
            if name in (f.name, base) or f.name.startswith(name + ".") or name.startswith(f.name + ".")
        ]
        if not forms:
            known = base in tables.mnemonics
            lines.append(
                f"- {name}: " + ("no detailed form in the tables" if known else "not a PTX instruction")
            )
            continue
        for form in sorted(forms, key=lambda f: f.name):
            if form.id in seen:
                continue
            seen.add(form.id)
            lines.extend(_form_lines(form, resolved, parsed))
    return "\n".join(lines)


def _form_lines(form: Form, target: Target | None, version: Version | None) -> list[str]:
    status = ""
    if not form.req.target_ok(target) or not form.req.version_ok(version):
        status = f"  [NOT available: needs {form.req.describe()}]"
    elif not form.req.empty:
        status = f"  [needs {form.req.describe()}]"
    lines = [f"- {form.name}: {form.summary}{status}"]
    if form.operands is not None:
        lines.append("    operands: " + (", ".join(o.render() for o in form.operands) or "none"))
    for slot in form.slots:
        legal = [v.value for v in slot.values if v.req.target_ok(target) and v.req.version_ok(version)]
        newer = [
            f"{v.value} ({v.req.describe()})"
            for v in slot.values
            if not (v.req.target_ok(target) and v.req.version_ok(version))
        ]
        text = f"    {slot.name}{' (required)' if slot.required else ''}: {' '.join(legal) or '-'}"
        if newer:
            text += " | not here: " + " ".join(newer)
        lines.append(text)
    if not form.closed:
        lines.append("    (other modifiers exist; see the PTX ISA)")
    return lines
