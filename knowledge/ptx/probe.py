"""Probing the tables against ptxas: every fact expanded into small modules, ptxas as the judge.

The tables are hand-written from the PTX ISA manual; ptxas is what actually assembles the PTX. A
probe turns each table entry into modules whose verdict the table predicts, runs ptxas on them
(check-only, `-arch=compute_NN`, in parallel) and reports where the two disagree:

    min           the form (or one slot value) at its claimed minimum `.version` and target: legal
    version-1     the same, one `.version` lower (where the target itself allows it): illegal
    target-1      one target lower (the generic `sm_NN` for an `sm_NNa` feature): illegal
    bad_modifier  a known modifier of some other instruction added to a closed form: illegal
    wrong_type    a type the form's type slot does not list: illegal
    operand_count one operand too few (or too many): illegal

A table entry is a claim that *some* spelling is legal, so the `min` probe tries a few contexts
(other required types, rules the value triggers) and keeps the first ptxas accepts at the newest
`.version`; an entry no context assembles at all is `unconfirmed` (most likely our operand
synthesis, not the table) and counted apart rather than called a disagreement. Where ptxas proves
a requirement wrong, a search finds the real boundary, and `corrections()` turns it into overlay
entries (`probed/ptxas-X.Y.yaml`) that `load_tables()` applies on top of the hand-written facts.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowledge.ptx.tables import (
    Correction,
    Form,
    Requirement,
    SlotValue,
    Tables,
    Target,
    Version,
    overlay_path,
    requirement_field,
)
from sandbox.diagnostics_parse import parse_ptxas_output

__all__ = [
    "PROBE_LINE",
    "Outcome",
    "PtxasJudge",
    "Subject",
    "Verdict",
    "probe_module",
    "probe_subjects",
    "run_probes",
    "sample_subjects",
    "summarize",
    "write_overlay",
]

# The line of the probed instruction in `probe_module` (1-based).
PROBE_LINE = 12
_MIN_SM = 75  # ptxas 13 assembles nothing older

_MODULE = """.version {version}
.target {target}
.address_size 64

.visible .entry probe(.param .u64 probe_param)
{{
.reg .pred %p<8>; .reg .b16 %rs<8>; .reg .b32 %r<16>; .reg .b64 %rd<16>;
.reg .f32 %f<16>; .reg .f64 %fd<8>;{extra}
.shared .align 16 .b8 probe_smem[256];
ld.param.u64 %rd1, [probe_param];
// probe
{instruction}
$LT:
ret;
}}
"""


def probe_module(instruction: str, target: str, version: Version) -> str:
    """A complete module around one instruction, placed on `PROBE_LINE`."""
    extra = " .reg .b128 %q<4>;" if "%q" in instruction else ""
    return _MODULE.format(
        version=f"{version[0]}.{version[1]}", target=target, extra=extra, instruction=instruction
    )


# ---------------------------------------------------------------------------------------------------
# ptxas, in parallel, cached


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    message: str  # the first error message, for reports


class PtxasJudge:
    """Runs ptxas check-only on modules; identical (module, target) pairs run once per process."""

    def __init__(self, ptxas: Path, workers: int | None = None) -> None:
        self.ptxas = ptxas
        self.workers = workers or max(2, 2 * (os.cpu_count() or 1))
        self.runs = 0
        self._cache: dict[tuple[str, str], Verdict] = {}
        self._lock = threading.Lock()
        self._serial = itertools.count()
        self._folder = tempfile.TemporaryDirectory(prefix="kw-probe-")

    def close(self) -> None:
        self._folder.cleanup()

    def judge(self, source: str, target: str) -> Verdict:
        key = (source, target)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha1(f"{target}\n{source}".encode()).hexdigest()[:12]
        path = Path(self._folder.name) / f"{digest}-{next(self._serial)}.ptx"
        path.write_text(source, encoding="utf-8")
        done = subprocess.run(
            [str(self.ptxas), f"-arch={target.replace('sm_', 'compute_', 1)}", str(path), "-o", "/dev/null"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        path.unlink(missing_ok=True)
        errors = [d for d in parse_ptxas_output(done.stdout + done.stderr) if d.is_error]
        verdict = Verdict(done.returncode == 0, errors[0].message if errors else "")
        with self._lock:
            self.runs += 1
            self._cache[key] = verdict
        return verdict


# ---------------------------------------------------------------------------------------------------
# What to probe


@dataclass(frozen=True, slots=True)
class Subject:
    """One table entry: a form (slot None), one value of one slot, or a special register."""

    form: str
    slot: str | None = None
    value: str | None = None
    sreg: str | None = None

    @property
    def id(self) -> str:
        if self.sreg is not None:
            return f"sreg {self.sreg}"
        return self.form + (f" {self.slot}={self.value}" if self.slot else "")


@dataclass(slots=True)
class Outcome:
    """The probes of one subject: each (kind, target, version, expected, accepted, message)."""

    subject: Subject
    family: str
    probes: list[dict[str, Any]] = field(default_factory=list)
    unconfirmed: bool = False
    corrections: list[Correction] = field(default_factory=list)

    def disagreements(self) -> list[dict[str, Any]]:
        return [p for p in self.probes if p["expected"] != p["accepted"]]


def probe_subjects(tables: Tables, families: Sequence[str] | None = None) -> list[Subject]:
    """Every probeable entry of the tables: each form, each of its slot values, gated registers."""
    found: list[Subject] = []
    for form in sorted(tables.forms_by_id.values(), key=lambda f: f.id):
        if families and form.family not in families:
            continue
        found.append(Subject(form.id))
        for slot in form.slots:
            for value in slot.values:
                found.append(Subject(form.id, slot.name, value.value))
    if not families or any(f in ("sm_75", "sm_90") for f in families):
        for name in sorted(tables.special_registers):
            if name.startswith("%") and not name.startswith(("%envreg", "%pm")):
                found.append(Subject("mov", sreg=name))
    return found


# ---------------------------------------------------------------------------------------------------
# Building instructions

_REG_BY_TYPE: dict[str, str] = {
    ".pred": "%p1",
    ".f32": "%f1",
    ".f64": "%fd1",
    ".b128": "%q1",
    ".f32x2": "%rd2",
}
_IMMEDIATES: dict[str, str] = {
    "membermask": "-1",
    "mask": "-1",
    "n": "0",
    "count": "1",
    "cp_size": "16",
    "size": "16",
    "src_size": "16",
    "imm": "0",
    "immLut": "0xf0",
    "index": "0",
    "hint": "0",
    "offset": "0",
}


def _register(type_name: str | None) -> str:
    if type_name is None:
        return "%r1"
    if type_name in _REG_BY_TYPE:
        return _REG_BY_TYPE[type_name]
    digits = "".join(c for c in type_name if c.isdigit())
    size = int(digits) if digits else 32
    if type_name.endswith(("x2", "x4")) or type_name in (".tf32",):
        return "%r1"
    if size <= 16:
        return "%rs1"
    return "%rd1" if size == 64 else "%r1"


# Untyped operands of forms with several type slots: the slot whose type each operand holds.
_OPERAND_SLOTS: dict[str, tuple[str, ...]] = {
    "d": ("dtype",),
    "a": ("atype", "stype"),
    "b": ("btype", "stype", "atype"),
    "c": ("ctype", "dtype"),
}


def _instruction(
    form: Form, choices: dict[str, str], operand_delta: int = 0, *, wide: bool = True, optional: bool = False
) -> str | None:
    """`name.mods operands;` for the chosen slot values (slot order); None if operands are unknown.

    `wide`: untyped operands take the form's type (else a 32-bit register); `optional`: write the
    optional operands too. Both are guesses a probe tries in turn, since the tables do not say.
    """
    extras = [v for k, v in choices.items() if k.startswith("!")]  # deliberate mistakes
    tokens = [form.name, *extras] + [choices[s.name] for s in form.slots if s.name in choices]
    opcode = ".".join(t.lstrip(".") for t in tokens)
    if form.operands is None:
        return None
    typed = {t.position: t for t in form.typed}
    first_type = next((choices[s.name] for s in form.slots if s.is_type and s.name in choices), None)
    vec = choices.get("vec")
    operands: list[str] = []
    for index, spec in enumerate(form.operands):
        if spec.optional and not optional and operand_delta <= 0:
            break
        entry = typed.get(index)
        kind = (entry.literal or choices.get(entry.slot or "")) if entry is not None else None
        if kind is None and entry is None:
            kind = next((choices[n] for n in _OPERAND_SLOTS.get(spec.name, ()) if n in choices), None)
            if kind is None and (wide or not form.typed):
                kind = first_type
        if spec.address:
            operands.append("[%rd1]")
        elif spec.vector and vec is not None:
            reg = _register(kind)
            operands.append("{" + ", ".join(reg[:-1] + str(i + 1) for i in range(int(vec[2:]))) + "}")
        elif spec.name in _IMMEDIATES:
            operands.append(_IMMEDIATES[spec.name])
        elif spec.name in ("p", "q"):
            operands.append("%p1")
        elif spec.name in ("policy", "state"):
            operands.append("%rd2")
        elif spec.name == "target":
            operands.append("$LT")
        else:
            operands.append(_register(kind if wide or entry is not None else None))
    if operand_delta < 0:
        if not operands:
            return None
        operands.pop()
    elif operand_delta > 0:
        operands.append(operands[-1] if operands else "%r1")
    return opcode + (" " + ", ".join(operands) if operands else "") + ";"


def _candidates(form: Form, subject: Subject, limit: int = 10) -> list[tuple[str, dict[str, str]]]:
    """Instruction texts that spell the subject, most likely first (deduplicated, at most `limit`)."""
    found: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    for optional in (False, True):
        for choices in _contexts(form, subject):
            for wide in (True, False):
                text = _instruction(form, choices, wide=wide, optional=optional)
                if text is not None and text not in seen:
                    seen.add(text)
                    found.append((text, choices))
    return found[:limit]


_PREFERRED_TYPES = (".f32", ".b32", ".u32", ".s32", ".f64", ".b64", ".u64", ".s64", ".f16", ".b16")


def _weakest(form: Form, slot_name: str) -> list[str]:
    """A required slot's values, weakest requirement first (the ones to build a context from)."""
    slot = next(s for s in form.slots if s.name == slot_name)

    def key(v: SlotValue) -> tuple[Version, int, int, int]:
        rank = _PREFERRED_TYPES.index(v.value) if v.value in _PREFERRED_TYPES else len(_PREFERRED_TYPES)
        return (v.req.ptx or (0, 0), v.req.sm or 0, len(v.req.arch), rank)

    return [v.value for v in sorted(slot.values, key=key)]


def _contexts(form: Form, subject: Subject, limit: int = 4) -> list[dict[str, str]]:
    """Slot choices that contain the subject's value, in the order worth trying."""
    base: dict[str, str] = {}
    varying: list[tuple[str, list[str]]] = []
    for slot in form.slots:
        if slot.name == subject.slot:
            continue
        if slot.required:
            options = _weakest(form, slot.name)
            base[slot.name] = options[0]
            if len(options) > 1:
                varying.append((slot.name, options))
    if subject.slot is not None and subject.value is not None:
        base[subject.slot] = subject.value
    found: list[dict[str, str]] = [dict(base)]
    for name, options in varying:
        for option in options[1:]:
            found.append({**base, name: option})
            if len(found) >= limit:
                break
        if len(found) >= limit:
            break
    for choices in found:
        for rule in form.rules:
            if rule.when in choices.values() and not (rule.needs_one_of & set(choices.values())):
                need = sorted(rule.needs_one_of)[0]
                free = next((s for s in form.slots if need in s.index and s.name not in choices), None)
                if free is not None:
                    choices[free.name] = need
    return found


def _effective(form: Form, choices: dict[str, str]) -> Requirement:
    req = form.req
    present = set(choices.values())
    for slot in form.slots:
        value = choices.get(slot.name)
        if value is not None and value in slot.index:
            req = req.merge(slot.index[value])
    for combo in form.combos:
        if combo.values <= present:
            req = req.merge(combo.req)
    return req


# ---------------------------------------------------------------------------------------------------
# Targets and versions around a requirement


def _generic_targets(tables: Tables) -> list[Target]:
    return sorted(
        (t for t in tables.targets.values() if t.suffix == "" and t.number >= _MIN_SM), key=lambda t: t.number
    )


def _minimum(tables: Tables, req: Requirement) -> tuple[Target, Version] | None:
    if req.arch:
        target = tables.targets.get(f"sm_{min(req.arch)}a")
    else:
        need = max(req.sm or 0, _MIN_SM)
        target = next((t for t in _generic_targets(tables) if t.number >= need), None)
    if target is None:
        return None
    return target, max(req.ptx or (0, 0), target.min_ptx)


def _lower_version(tables: Tables, version: Version) -> Version | None:
    lower = [v for v in tables.versions if v < version]
    return max(lower) if lower else None


def _lower_target(tables: Tables, req: Requirement, target: Target) -> Target | None:
    if req.arch:
        return tables.targets.get(f"sm_{target.number}")
    if req.sm is None or req.sm <= _MIN_SM:
        return None
    lower = [t for t in _generic_targets(tables) if t.number < req.sm]
    return lower[-1] if lower else None


# ---------------------------------------------------------------------------------------------------
# Running one subject


class _Prober:
    def __init__(self, tables: Tables, judge: PtxasJudge, provenance: str) -> None:
        self.tables = tables
        self.judge = judge
        self.provenance = provenance
        self.types = sorted(tables.types)
        self.vocabulary = sorted(
            v for v in tables.vocabulary if v not in tables.types and v not in tables.state_spaces
        )

    def accepted(self, instruction: str, target: Target, version: Version) -> Verdict:
        return self.judge.judge(probe_module(instruction, target.name, version), target.name)

    def record(
        self, outcome: Outcome, kind: str, instruction: str, target: Target, version: Version, expected: bool
    ) -> Verdict:
        verdict = self.accepted(instruction, target, version)
        outcome.probes.append(
            {
                "kind": kind,
                "instruction": instruction,
                "target": target.name,
                "version": f"{version[0]}.{version[1]}",
                "expected": expected,
                "accepted": verdict.ok,
                "message": verdict.message,
            }
        )
        return verdict

    def run(self, subject: Subject) -> Outcome:
        if subject.sreg is not None:
            return self.run_sreg(subject)
        form = self.tables.forms_by_id[subject.form]
        outcome = Outcome(subject, form.family)
        newest = max(self.tables.versions)
        chosen: tuple[str, dict[str, str], Requirement, Target, Version] | None = None
        unsatisfied: tuple[str, dict[str, str], Requirement, Target, Version] | None = None
        for instruction, choices in _candidates(form, subject):
            req = _effective(form, choices)
            low = _minimum(self.tables, req)
            if low is None:
                continue
            target, version = low
            if self.accepted(instruction, target, version).ok:
                chosen = (instruction, choices, req, target, version)
                break
            if unsatisfied is None and self.accepted(instruction, target, newest).ok:
                unsatisfied = (instruction, choices, req, target, version)
        if chosen is None and unsatisfied is None:
            outcome.unconfirmed = True
            return outcome
        if chosen is None:
            assert unsatisfied is not None
            instruction, choices, req, target, version = unsatisfied
            self.record(outcome, "min", instruction, target, version, True)
            real = self.search_version_up(instruction, target, version)
            if real is not None:
                self.correct(
                    outcome,
                    form,
                    subject,
                    req,
                    "ptx",
                    f"{real[0]}.{real[1]}",
                    f"ptxas rejects it at .version {version[0]}.{version[1]} on {target.name}, "
                    f"accepts it from {real[0]}.{real[1]}",
                )
            return outcome
        instruction, choices, req, target, version = chosen
        self.record(outcome, "min", instruction, target, version, True)
        self.lower_probes(outcome, form, subject, instruction, choices, req, target, version)
        if subject.slot is None and form.closed:
            self.mistakes(outcome, form, choices, target, version)
        return outcome

    def lower_probes(
        self,
        outcome: Outcome,
        form: Form,
        subject: Subject,
        instruction: str,
        choices: dict[str, str],
        req: Requirement,
        target: Target,
        version: Version,
    ) -> None:
        lowest = target
        below = _lower_target(self.tables, req, target)
        if below is not None:
            at = max(req.ptx or (0, 0), below.min_ptx)
            if self.record(outcome, "target-1", instruction, below, at, False).ok:
                if req.arch:
                    lowest = below
                    evidence = f"ptxas accepts it on the generic {below.name}"
                    self.correct(outcome, form, subject, req, "arch", "", evidence)
                    if (req.sm or 0) < below.number:
                        self.correct(outcome, form, subject, req, "sm", f"sm_{below.number}", evidence)
                else:
                    lowest = self.search_target_down(instruction, req, below)
                    now = "" if lowest.number <= _MIN_SM else lowest.name
                    self.correct(outcome, form, subject, req, "sm", now, f"ptxas accepts it on {lowest.name}")
        if req.ptx is not None and req.ptx == version:
            lower = _lower_version(self.tables, version)
            if (
                lower is not None
                and lower >= target.min_ptx
                and self.record(outcome, "version-1", instruction, target, lower, False).ok
            ):
                real = self.search_version_down(instruction, lowest, lower)
                self.correct(
                    outcome,
                    form,
                    subject,
                    req,
                    "ptx",
                    f"{real[0]}.{real[1]}",
                    f"ptxas accepts it at .version {real[0]}.{real[1]} on {lowest.name}",
                )

    def mistakes(
        self, outcome: Outcome, form: Form, choices: dict[str, str], target: Target, version: Version
    ) -> None:
        pick = random.Random(form.id)
        values = form.values | {"." + t for t in form.name.split(".")[1:]}
        foreign = [v for v in self.vocabulary if v not in values and "::" not in v]
        if foreign:
            modifier = pick.choice(foreign)
            bad = _instruction(form, {**choices, "!bad": modifier})
            if bad is not None and self.record(outcome, "bad_modifier", bad, target, version, False).ok:
                outcome.corrections.append(
                    Correction(
                        form.id,
                        "accepted",
                        modifier,
                        "add",
                        "",
                        "",
                        f"ptxas accepts {bad!r} on {target.name}",
                        self.provenance,
                    )
                )
        type_slot = next((s for s in form.slots if s.is_type and s.name in choices), None)
        if type_slot is not None:
            others = [t for t in self.types if t not in type_slot.index and t in self.tables.register_types]
            if others:
                wrong = pick.choice(others)
                text = _instruction(form, {**choices, type_slot.name: wrong})
                if text is not None and self.record(outcome, "wrong_type", text, target, version, False).ok:
                    outcome.corrections.append(
                        Correction(
                            form.id,
                            type_slot.name,
                            wrong,
                            "add",
                            "",
                            "",
                            f"ptxas accepts {text!r} on {target.name}",
                            self.provenance,
                        )
                    )
        if form.operands:
            fewer = _instruction(form, choices, operand_delta=-1)
            if fewer is not None and form.min_operands > 0:
                self.record(outcome, "operand_count", fewer, target, version, False)
            elif form.min_operands == 0 and form.max_operands == 0:
                more = _instruction(form, choices, operand_delta=1)
                if more is not None:
                    self.record(outcome, "operand_count", more, target, version, False)

    def run_sreg(self, subject: Subject) -> Outcome:
        assert subject.sreg is not None
        sreg = self.tables.special_registers[subject.sreg]
        outcome = Outcome(subject, "special_registers")
        wide = "64" in subject.sreg or subject.sreg in ("%globaltimer", "%gridid")
        operand = subject.sreg + (".x" if sreg.vector else "")
        instruction = f"mov.{'u64 %rd3' if wide else 'u32 %r3'}, {operand};"
        low = _minimum(self.tables, sreg.req)
        if low is None:
            return outcome
        target, version = low
        if not self.accepted(instruction, target, version).ok:
            if not self.accepted(instruction, target, max(self.tables.versions)).ok:
                outcome.unconfirmed = True
                return outcome
            self.record(outcome, "min", instruction, target, version, True)
            return outcome
        self.record(outcome, "min", instruction, target, version, True)
        if sreg.req.ptx is not None and sreg.req.ptx == version:
            lower = _lower_version(self.tables, version)
            if lower is not None and lower >= target.min_ptx:
                self.record(outcome, "version-1", instruction, target, lower, False)
        below = _lower_target(self.tables, sreg.req, target)
        if below is not None:
            at = max(sreg.req.ptx or (0, 0), below.min_ptx)
            self.record(outcome, "target-1", instruction, below, at, False)
        return outcome

    # -- boundary searches (ptxas proves the real minimum)
    def search_version_down(self, instruction: str, target: Target, accepted: Version) -> Version:
        best = accepted
        for version in sorted((v for v in self.tables.versions if v < accepted), reverse=True):
            if version < target.min_ptx or not self.accepted(instruction, target, version).ok:
                break
            best = version
        return best

    def search_version_up(self, instruction: str, target: Target, rejected: Version) -> Version | None:
        for version in sorted(v for v in self.tables.versions if v > rejected):
            if self.accepted(instruction, target, version).ok:
                return version
        return None

    def search_target_down(self, instruction: str, req: Requirement, accepted: Target) -> Target:
        best = accepted
        for target in reversed([t for t in _generic_targets(self.tables) if t.number < accepted.number]):
            at = max(req.ptx or (0, 0), target.min_ptx)
            if not self.accepted(instruction, target, at).ok:
                break
            best = target
        return best

    def correct(
        self,
        outcome: Outcome,
        form: Form,
        subject: Subject,
        req: Requirement,
        name: str,
        now: str,
        evidence: str,
    ) -> None:
        """Attribute a proven boundary to the entry that set it: the value's own gate, else the form's.

        A requirement ptxas raises for one value (rejected at the claimed minimum) belongs to that
        value even when it had no gate of its own: the form's other spellings were proven apart.
        """
        slot_name: str | None = None
        value: str | None = None
        owner = form.req
        effective = requirement_field(req, name)
        if subject.slot is not None and subject.value is not None:
            slot = next(s for s in form.slots if s.name == subject.slot)
            own = slot.index[subject.value]
            raising = now > effective if name == "ptx" else False
            if (requirement_field(own, name) == effective and effective) or raising:
                slot_name, value, owner = subject.slot, subject.value, own
        was = requirement_field(owner, name)
        if slot_name is None and was != effective:
            return  # set by another chosen value or a combo: not this subject's fact
        if was == now:
            return
        outcome.corrections.append(
            Correction(form.id, slot_name, value, name, was, now, evidence, self.provenance)
        )


def run_probes(
    tables: Tables,
    judge: PtxasJudge,
    subjects: Iterable[Subject],
    *,
    provenance: str,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Probe every subject (subjects in parallel; each subject's probes in sequence)."""
    prober = _Prober(tables, judge, provenance)
    with ThreadPoolExecutor(max_workers=judge.workers) as pool:
        outcomes = list(pool.map(prober.run, subjects))
    if on_done is not None:
        for outcome in outcomes:
            on_done(outcome)
    return outcomes


# ---------------------------------------------------------------------------------------------------
# The overlay


def write_overlay(corrections: Iterable[Correction], ptxas_version: str, path: Path | None = None) -> Path:
    """Merge `corrections` into the overlay of `ptxas_version` (one entry per form/slot/value/field)."""
    path = path or overlay_path(ptxas_version)
    entries: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    if path.exists():
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for raw in data.get("corrections", []):
            key = (raw["form"], raw.get("slot") or "", raw.get("value") or "", raw["field"])
            entries[key] = raw
    for correction in corrections:
        entry: dict[str, Any] = {"form": correction.form}
        if correction.slot is not None:
            entry["slot"] = correction.slot
            entry["value"] = correction.value
        entry.update(field=correction.field, was=correction.was, now=correction.now)
        entry["evidence"] = correction.evidence
        entries[correction.key()] = entry
    document = {
        "ptxas": ptxas_version,
        "provenance": f"probed: ptxas {ptxas_version}",
        "corrections": [entries[k] for k in sorted(entries)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Corrections ptxas proved to the hand-written PTX tables (written by `kernelwright ptx probe\n"
        "# --patch`; applied on top of tables/*.yaml by load_tables(); an entry whose `was` no longer\n"
        "# matches the hand-written fact is stale and ignored).\n"
    )
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=110), encoding="utf-8")
    return path


def sample_subjects(subjects: Sequence[Subject], count: int | None, seed: int = 0) -> list[Subject]:
    """A deterministic sample (CI probes a few dozen entries; the benchmark probes them all)."""
    if count is None or count >= len(subjects):
        return list(subjects)
    return sorted(random.Random(seed).sample(list(subjects), count), key=lambda s: s.id)


def summarize(outcomes: Sequence[Outcome], ptxas_version: str) -> dict[str, Any]:
    """The report of one probe run, keyed by the ptxas version that judged it."""
    probes = [p for o in outcomes for p in o.probes]
    agreed = sum(1 for p in probes if p["expected"] == p["accepted"])
    kinds: dict[str, dict[str, int]] = {}
    for p in probes:
        entry = kinds.setdefault(p["kind"], {"probes": 0, "agree": 0})
        entry["probes"] += 1
        entry["agree"] += int(p["expected"] == p["accepted"])
    return {
        "ptxas": ptxas_version,
        "subjects": len(outcomes),
        "unconfirmed": sum(1 for o in outcomes if o.unconfirmed),
        "unconfirmed_subjects": [o.subject.id for o in outcomes if o.unconfirmed],
        "probes": len(probes),
        "agree": agreed,
        "agreement_pct": round(100.0 * agreed / len(probes), 2) if probes else 100.0,
        "by_kind": kinds,
        "disagreements": [
            {
                "subject": o.subject.id,
                "family": o.family,
                "table_says": "legal" if p["expected"] else "illegal",
                "ptxas_says": "legal" if p["accepted"] else "illegal",
                **{k: p[k] for k in ("kind", "instruction", "target", "version", "message")},
            }
            for o in outcomes
            for p in o.disagreements()
        ],
        "corrections": [c.describe() for o in outcomes for c in o.corrections],
    }
