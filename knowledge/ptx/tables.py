"""The PTX syntax tables: YAML facts per architecture family, validated, merged and indexed once.

Each `tables/*.yaml` file holds the facts one architecture family introduced (targets, instruction
forms, special registers, directives), each with its provenance. Loading validates the files with
pydantic (the edge), expands `$group` references and `extend` entries, and freezes everything into
plain dataclasses indexed by dicts and sets, so that the checker does dictionary lookups only.
Adding a family is adding a file: no code changes. A probe can expand every form mechanically:
each slot lists its values, each value its minimum `.version` and target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernelwright.errors import ConfigError

__all__ = [
    "Combo",
    "Correction",
    "Form",
    "OperandSpec",
    "Requirement",
    "Rule",
    "Slot",
    "SlotValue",
    "SpecialRegister",
    "Tables",
    "Target",
    "TypedOperand",
    "Version",
    "build_tables",
    "load_tables",
    "overlay_path",
    "parse_target",
    "parse_version",
    "probed_dir",
    "requirement_field",
    "tables_dir",
    "with_field",
]

Version = tuple[int, int]

_TARGET = re.compile(r"^sm_(\d+)([af]?)$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def tables_dir() -> Path:
    """The folder of the packaged YAML tables (package data next to this module)."""
    return Path(__file__).resolve().parent / "tables"


def probed_dir() -> Path:
    """The folder of the per-ptxas-version overlays that `kernelwright ptx probe --patch` writes."""
    return tables_dir() / "probed"


def overlay_path(ptxas_version: str) -> Path:
    """`probed/ptxas-13.0.yaml` for ptxas `13.0.88`: one overlay per ptxas major.minor."""
    major_minor = ".".join(ptxas_version.split(".")[:2])
    return probed_dir() / f"ptxas-{major_minor}.yaml"


def parse_version(text: str) -> Version | None:
    """`"7.8"` -> (7, 8); None when it is not MAJOR.MINOR."""
    match = _VERSION.match(text.strip())
    return (int(match[1]), int(match[2])) if match else None


def parse_target(name: str) -> tuple[int, str] | None:
    """`"sm_90a"` -> (90, "a"); None when it is not an `sm_NN[a|f]` name."""
    match = _TARGET.match(name.strip())
    return (int(match[1]), match[2]) if match else None


# ---------------------------------------------------------------------------------------------------
# The frozen model the checker uses


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a form or a value needs: a minimum `.version`, a minimum target, or an arch-specific target.

    `arch` holds the base numbers of the arch-specific targets (90 for sm_90a): such a feature works
    on `sm_NNa` and on the family variant `sm_NNf`, never on the generic `sm_NN`.
    """

    ptx: Version | None = None
    sm: int | None = None
    arch: frozenset[int] = frozenset()
    arch_names: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.ptx is None and self.sm is None and not self.arch

    def merge(self, other: Requirement) -> Requirement:
        """The stricter of two requirements (a value inside a gated group needs both)."""
        if other.empty:
            return self
        if self.empty:
            return other
        ptx = max((v for v in (self.ptx, other.ptx) if v is not None), default=None)
        sm = max((v for v in (self.sm, other.sm) if v is not None), default=None)
        if self.arch and other.arch:
            arch = self.arch & other.arch
            names = tuple(n for n in self.arch_names if n in other.arch_names)
        else:
            arch = self.arch or other.arch
            names = self.arch_names or other.arch_names
        return Requirement(ptx, sm, arch, names)

    def target_ok(self, target: Target | None) -> bool:
        """Whether `target` satisfies the target part (an unknown target satisfies everything)."""
        if target is None:
            return True
        if self.sm is not None and target.number < self.sm:
            return False
        return not self.arch or (target.suffix in ("a", "f") and target.number in self.arch)

    def version_ok(self, version: Version | None) -> bool:
        return version is None or self.ptx is None or version >= self.ptx

    def describe(self) -> str:
        """`sm_90+, PTX 7.8` / `sm_90a, PTX 8.0`: a short label for messages and prompts."""
        parts: list[str] = []
        if self.arch_names:
            parts.append("/".join(self.arch_names))
        elif self.sm is not None:
            parts.append(f"sm_{self.sm}+")
        if self.ptx is not None:
            parts.append(f"PTX {self.ptx[0]}.{self.ptx[1]}")
        return ", ".join(parts)

    def target_text(self) -> str:
        if self.arch_names:
            return "an arch-specific target (" + " / ".join(self.arch_names) + ")"
        return f"sm_{self.sm} or later"


NO_REQUIREMENT = Requirement()


@dataclass(frozen=True, slots=True)
class SlotValue:
    value: str
    req: Requirement


@dataclass(frozen=True, slots=True)
class Slot:
    """One unordered modifier position of a form: at most one of `values`, mandatory if `required`."""

    name: str
    required: bool
    values: tuple[SlotValue, ...]
    index: Mapping[str, Requirement]

    @property
    def is_type(self) -> bool:
        return "type" in self.name


@dataclass(frozen=True, slots=True)
class OperandSpec:
    name: str
    address: bool
    vector: bool
    optional: bool

    def render(self) -> str:
        text = f"[{self.name}]" if self.address else f"{{{self.name}}}" if self.vector else self.name
        return text + ("?" if self.optional else "")


@dataclass(frozen=True, slots=True)
class TypedOperand:
    """Operand `position` must hold a register of the type in slot `slot` (or the literal `literal`)."""

    position: int
    slot: str | None
    literal: str | None
    wider_ok: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """When modifier `when` is present, one of `needs_one_of` must be too."""

    when: str
    needs_one_of: frozenset[str]
    message: str


@dataclass(frozen=True, slots=True)
class Combo:
    """A requirement that applies only when all `values` appear together (e.g. `.relu` with `.s32`)."""

    values: frozenset[str]
    req: Requirement


@dataclass(frozen=True, slots=True)
class Form:
    """One instruction form: its dotted name, modifier slots, operands and requirements."""

    id: str
    name: str
    tokens: frozenset[str]
    ntokens: int
    summary: str
    closed: bool
    slots: tuple[Slot, ...]
    operands: tuple[OperandSpec, ...] | None
    typed: tuple[TypedOperand, ...]
    rules: tuple[Rule, ...]
    combos: tuple[Combo, ...]
    req: Requirement
    family: str
    min_operands: int = 0
    max_operands: int = 0

    @property
    def values(self) -> frozenset[str]:
        return frozenset(v for slot in self.slots for v in slot.index)

    def operand_range(self) -> tuple[int, int] | None:
        if self.operands is None:
            return None
        return sum(1 for o in self.operands if not o.optional), len(self.operands)


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    number: int
    suffix: str
    min_ptx: Version
    family: str


@dataclass(frozen=True, slots=True)
class SpecialRegister:
    name: str
    vector: bool
    req: Requirement


@dataclass(frozen=True)
class Tables:
    """Everything the checker and the renderer need, indexed for constant-time lookups."""

    forms_by_base: Mapping[str, tuple[Form, ...]]
    forms_by_id: Mapping[str, Form]
    mnemonics: frozenset[str]
    aliases: Mapping[str, str]
    vocabulary: frozenset[str]
    targets: Mapping[str, Target]
    target_options: frozenset[str]
    versions: frozenset[Version]
    max_version: Version
    special_registers: Mapping[str, SpecialRegister]
    directives: frozenset[str]
    directive_reqs: Mapping[str, Requirement]
    state_spaces: Mapping[str, Requirement]
    types: frozenset[str]
    register_types: frozenset[str]
    families: tuple[str, ...]
    full_names: tuple[str, ...] = field(default=())
    corrections: tuple[Correction, ...] = field(default=())
    # The special registers grouped by their requirement (a handful of groups): which are usable
    # on a target and `.version` is then a few requirement tests, not one per register.
    special_register_groups: tuple[tuple[Requirement, frozenset[str]], ...] = field(default=())

    def target(self, name: str) -> Target | None:
        """A known target by name; unknown `sm_NN[a|f]` names are resolved as best we can."""
        return self.targets.get(name)


@dataclass(frozen=True, slots=True)
class Correction:
    """One fact ptxas proved different from the hand-written tables (an overlay entry).

    `field` is `ptx` (minimum `.version`), `sm` (minimum generic target), `arch` (arch-specific
    targets; `now` empty = not arch-specific after all) or `add` (a value the slot lacked). `was`
    holds the hand-written fact it replaces: an overlay entry whose `was` no longer matches the
    hand-written table is stale and is not applied, so a later hand fix always wins.
    """

    form: str
    slot: str | None
    value: str | None
    field: str
    was: str
    now: str
    evidence: str
    provenance: str

    def key(self) -> tuple[str, str, str, str]:
        return (self.form, self.slot or "", self.value or "", self.field)

    def describe(self) -> str:
        where = self.form + (f" {self.slot}={self.value}" if self.slot else "")
        return f"{where}: {self.field} {self.was or '-'} -> {self.now or '-'} ({self.evidence})"


# ---------------------------------------------------------------------------------------------------
# The YAML schema (pydantic, at the edge only)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Gated(_Strict):
    values: list[str]
    ptx: str | None = None
    sm: str | None = None
    arch: list[str] | None = None


_Item = str | _Gated


class _Slot(_Strict):
    name: str
    required: bool = False
    values: list[_Item]


class _Rule(_Strict):
    when: str
    needs_one_of: list[str]
    message: str


class _Combo(_Strict):
    values: list[str]
    ptx: str | None = None
    sm: str | None = None
    arch: list[str] | None = None


class _Form(_Strict):
    name: str
    id: str | None = None
    summary: str = ""
    closed: bool = True
    slots: list[_Slot] = Field(default_factory=list)
    operands: list[str] | None = None
    typed: list[str] = Field(default_factory=list)
    rules: list[_Rule] = Field(default_factory=list)
    combos: list[_Combo] = Field(default_factory=list)
    ptx: str | None = None
    sm: str | None = None
    arch: list[str] | None = None


class _Extend(_Strict):
    form: str
    slot: str
    values: list[_Item]


class _TargetFact(_Strict):
    name: str
    ptx: str


class _Toolkit(_Strict):
    max_version: str
    versions: list[str]
    assembles_from: str


class _Sreg(_Strict):
    values: list[str]
    vector: bool = False
    ptx: str | None = None
    sm: str | None = None


class _Directives(_Strict):
    module: list[str] = Field(default_factory=list)
    function: list[str] = Field(default_factory=list)
    gated: list[_Gated] = Field(default_factory=list)


class _Types(_Strict):
    fundamental: list[str]
    register_types: list[str] = Field(alias="register")


class _Family(_Strict):
    family: str
    provenance: str
    toolkit: _Toolkit | None = None
    targets: list[_TargetFact] = Field(default_factory=list)
    target_options: list[str] = Field(default_factory=list)
    directives: _Directives | None = None
    state_spaces: list[_Gated] = Field(default_factory=list)
    types: _Types | None = None
    special_registers: list[_Sreg] = Field(default_factory=list)
    groups: dict[str, list[_Item]] = Field(default_factory=dict)
    modifiers: list[str] = Field(default_factory=list)
    mnemonics: list[_Gated] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    instructions: list[_Form] = Field(default_factory=list)
    extend: list[_Extend] = Field(default_factory=list)


class _Correction(_Strict):
    form: str
    slot: str | None = None
    value: str | None = None
    field: str
    was: str = ""
    now: str = ""
    evidence: str = ""


class _Overlay(_Strict):
    ptxas: str
    provenance: str
    corrections: list[_Correction] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Building


def _version(text: str | None, where: str) -> Version | None:
    if text is None:
        return None
    parsed = parse_version(text)
    if parsed is None:
        raise ConfigError(f"PTX table {where}: bad PTX version {text!r} (write MAJOR.MINOR, quoted)")
    return parsed


def _sm(text: str | None, where: str) -> int | None:
    if text is None:
        return None
    parsed = parse_target(text)
    if parsed is None:
        raise ConfigError(f"PTX table {where}: bad target {text!r} (write sm_NN)")
    return parsed[0]


def _requirement(ptx: str | None, sm: str | None, arch: list[str] | None, where: str) -> Requirement:
    numbers: set[int] = set()
    for name in arch or ():
        parsed = parse_target(name)
        if parsed is None or parsed[1] != "a":
            raise ConfigError(f"PTX table {where}: arch targets are sm_NNa names, not {name!r}")
        numbers.add(parsed[0])
    return Requirement(_version(ptx, where), _sm(sm, where), frozenset(numbers), tuple(arch or ()))


class _Builder:
    """Expands groups and gated items into (value, requirement) pairs."""

    def __init__(self, groups: Mapping[str, list[_Item]]) -> None:
        self._groups = groups

    def expand(
        self, items: Iterable[_Item], where: str, outer: Requirement = NO_REQUIREMENT
    ) -> list[SlotValue]:
        found: list[SlotValue] = []
        for item in items:
            if isinstance(item, str):
                if item.startswith("$"):
                    group = self._groups.get(item[1:])
                    if group is None:
                        raise ConfigError(f"PTX table {where}: unknown group {item!r}")
                    found.extend(self.expand(group, where, outer))
                else:
                    found.append(SlotValue(_modifier(item, where), outer))
            else:
                req = outer.merge(_requirement(item.ptx, item.sm, item.arch, where))
                found.extend(self.expand(item.values, where, req))
        return found


def _modifier(value: str, where: str) -> str:
    if not value.startswith(".") or "." in value[1:]:
        raise ConfigError(f"PTX table {where}: modifier {value!r} must be one `.token` (no inner dots)")
    return value


def _operand(text: str) -> OperandSpec:
    optional = text.endswith("?")
    core = text.rstrip("?")
    address = core.startswith("[") and core.endswith("]")
    vector = core.startswith("{") and core.endswith("}")
    name = core.strip("[]{}")
    return OperandSpec(name, address, vector, optional)


def _typed(
    entries: list[str], operands: tuple[OperandSpec, ...] | None, where: str
) -> tuple[TypedOperand, ...]:
    if not entries:
        return ()
    if operands is None:
        raise ConfigError(f"PTX table {where}: `typed` needs `operands`")
    names = [o.name for o in operands]
    found: list[TypedOperand] = []
    for entry in entries:
        head, _, kind = entry.partition(":")
        wider = head.endswith("+")
        name = head.rstrip("+")
        if name not in names:
            raise ConfigError(f"PTX table {where}: typed operand {name!r} is not an operand")
        literal = kind if kind.startswith(".") else None
        slot = None if literal else (kind or "type")
        found.append(TypedOperand(names.index(name), slot, literal, wider))
    return tuple(found)


def _form(raw: _Form, builder: _Builder, family: str, extra: Mapping[str, list[SlotValue]]) -> Form:
    form_id = raw.id or raw.name
    where = f"{family}:{form_id}"
    slots: list[Slot] = []
    for raw_slot in raw.slots:
        values = builder.expand(raw_slot.values, where) + list(extra.get(raw_slot.name, ()))
        slots.append(_slot(raw_slot.name, raw_slot.required, values))
    known = {s.name for s in slots}
    for name, values in extra.items():
        if name not in known:
            slots.append(_slot(name, False, list(values)))
    operands = tuple(_operand(o) for o in raw.operands) if raw.operands is not None else None
    rules = tuple(Rule(r.when, frozenset(r.needs_one_of), r.message) for r in raw.rules)
    tokens = raw.name.split(".")
    return Form(
        id=form_id,
        name=raw.name,
        tokens=frozenset(tokens),
        ntokens=len(tokens),
        summary=raw.summary,
        closed=raw.closed,
        slots=tuple(slots),
        operands=operands,
        typed=_typed(raw.typed, operands, where),
        rules=rules,
        combos=tuple(
            Combo(frozenset(_modifier(v, where) for v in c.values), _requirement(c.ptx, c.sm, c.arch, where))
            for c in raw.combos
        ),
        req=_requirement(raw.ptx, raw.sm, raw.arch, where),
        family=family,
        min_operands=sum(1 for o in operands if not o.optional) if operands is not None else 0,
        max_operands=len(operands) if operands is not None else 0,
    )


def _slot(name: str, required: bool, values: list[SlotValue]) -> Slot:
    index: dict[str, Requirement] = {}
    for v in values:
        # A value listed twice keeps its weakest requirement: never stricter than the facts say.
        previous = index.get(v.value)
        if previous is None or _weaker(v.req, previous):
            index[v.value] = v.req
    return Slot(name, required, tuple(SlotValue(k, r) for k, r in index.items()), index)


def _weaker(a: Requirement, b: Requirement) -> bool:
    return (a.ptx or (0, 0)) <= (b.ptx or (0, 0)) and (a.sm or 0) <= (b.sm or 0) and not a.arch


def _read(path: Path) -> _Family:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return _Family.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"PTX table {path.name} is invalid: {exc}") from exc


def requirement_field(req: Requirement, name: str) -> str:
    """One part of a requirement as overlay text: `ptx` "7.8", `sm` "sm_90", `arch` "sm_90a,sm_100a"."""
    if name == "ptx":
        return f"{req.ptx[0]}.{req.ptx[1]}" if req.ptx is not None else ""
    if name == "sm":
        return f"sm_{req.sm}" if req.sm is not None else ""
    if name == "arch":
        return ",".join(req.arch_names)
    return ""


def with_field(req: Requirement, name: str, text: str, where: str = "overlay") -> Requirement:
    """`req` with one part replaced by its overlay text (empty text removes that part)."""
    if name == "ptx":
        return Requirement(_version(text or None, where), req.sm, req.arch, req.arch_names)
    if name == "sm":
        return Requirement(req.ptx, _sm(text or None, where), req.arch, req.arch_names)
    if name == "arch":
        names = [n for n in text.split(",") if n]
        arch = _requirement(None, None, names, where)
        return Requirement(req.ptx, req.sm, arch.arch, arch.arch_names)
    raise ConfigError(f"PTX overlay {where}: unknown field {name!r}")


def _read_overlay(path: Path) -> _Overlay:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return _Overlay.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"PTX overlay {path.name} is invalid: {exc}") from exc


def _apply_overlay(forms: dict[str, Form], overlay: _Overlay, where: str) -> list[Correction]:
    """Apply the corrections whose `was` still matches the hand-written facts (others are stale)."""
    applied: list[Correction] = []
    for raw in overlay.corrections:
        form = forms.get(raw.form)
        if form is None:
            continue
        correction = Correction(
            raw.form, raw.slot, raw.value, raw.field, raw.was, raw.now, raw.evidence, overlay.provenance
        )
        if raw.slot is None:
            if requirement_field(form.req, raw.field) != raw.was:
                continue
            forms[raw.form] = replace(form, req=with_field(form.req, raw.field, raw.now, where))
            applied.append(correction)
            continue
        slots = list(form.slots)
        position = next((i for i, s in enumerate(slots) if s.name == raw.slot), None)
        if position is None and raw.field == "add":
            # A modifier ptxas accepts that no slot lists gets a slot of its own (named by the probe).
            slots.append(Slot(raw.slot, False, (), {}))
            position = len(slots) - 1
        if position is None or raw.value is None:
            continue
        slot = slots[position]
        if raw.field == "add":
            if raw.value in slot.index:
                continue
            values = [*slot.values, SlotValue(_modifier(raw.value, where), NO_REQUIREMENT)]
        else:
            old = slot.index.get(raw.value)
            if old is None or requirement_field(old, raw.field) != raw.was:
                continue
            new = with_field(old, raw.field, raw.now, where)
            values = [SlotValue(v.value, new if v.value == raw.value else v.req) for v in slot.values]
        slots[position] = _slot(slot.name, slot.required, values)
        forms[raw.form] = replace(form, slots=tuple(slots))
        applied.append(correction)
    return applied


def build_tables(paths: Iterable[Path], overlays: Iterable[Path] = ()) -> Tables:
    """Validate, merge and index the given family files, then apply probed overlays on top.

    The overlays hold only what ptxas proved (see `Correction`); the hand-written family files stay
    as written, so a reviewer sees every probed change apart from the facts it corrects.
    """
    families = [_read(p) for p in sorted(paths)]
    groups: dict[str, list[_Item]] = {}
    for fam in families:
        groups.update(fam.groups)
    builder = _Builder(groups)

    extra: dict[str, dict[str, list[SlotValue]]] = {}
    for fam in families:
        for ext in fam.extend:
            values = builder.expand(ext.values, f"{fam.family}:extend:{ext.form}")
            extra.setdefault(ext.form, {}).setdefault(ext.slot, []).extend(values)

    forms: dict[str, Form] = {}
    for fam in families:
        for raw in fam.instructions:
            form = _form(raw, builder, fam.family, extra.get(raw.id or raw.name, {}))
            if form.id in forms:
                raise ConfigError(f"PTX table {fam.family}: form {form.id!r} is defined twice")
            forms[form.id] = form
    missing = set(extra) - set(forms)
    if missing:
        raise ConfigError(f"PTX tables extend unknown forms: {sorted(missing)}")
    corrections: list[Correction] = []
    for path in overlays:
        corrections.extend(_apply_overlay(forms, _read_overlay(path), path.name))

    by_base: dict[str, list[Form]] = {}
    for form in forms.values():
        by_base.setdefault(form.name.split(".")[0], []).append(form)
    forms_by_base = {k: tuple(sorted(v, key=lambda f: -f.ntokens)) for k, v in by_base.items()}

    toolkit = next((f.toolkit for f in families if f.toolkit is not None), None)
    if toolkit is None:
        raise ConfigError("PTX tables: no family file declares `toolkit` (versions)")
    versions = frozenset(v for v in (_version(t, "toolkit") for t in toolkit.versions) if v)
    max_version = _version(toolkit.max_version, "toolkit")
    assert max_version is not None

    targets: dict[str, Target] = {}
    for fam in families:
        for fact in fam.targets:
            parsed = parse_target(fact.name)
            min_ptx = _version(fact.ptx, fam.family)
            if parsed is None or min_ptx is None:
                raise ConfigError(f"PTX table {fam.family}: bad target {fact.name!r}")
            targets[fact.name] = Target(fact.name, parsed[0], parsed[1], min_ptx, fam.family)

    sregs: dict[str, SpecialRegister] = {}
    directives: set[str] = set()
    directive_reqs: dict[str, Requirement] = {}
    spaces: dict[str, Requirement] = {}
    types: set[str] = set()
    reg_types: set[str] = set()
    vocabulary: set[str] = set()
    mnemonics: set[str] = set()
    aliases: dict[str, str] = {}
    options: set[str] = set()
    for fam in families:
        for sreg in fam.special_registers:
            req = _requirement(sreg.ptx, sreg.sm, None, fam.family)
            for name in sreg.values:
                sregs[name] = SpecialRegister(name, sreg.vector, req)
        if fam.directives is not None:
            directives.update(fam.directives.module, fam.directives.function)
            for gated in fam.directives.gated:
                req = _requirement(gated.ptx, gated.sm, gated.arch, fam.family)
                for name in gated.values:
                    directive_reqs[name] = req
        for gated in fam.state_spaces:
            req = _requirement(gated.ptx, gated.sm, gated.arch, fam.family)
            for name in gated.values:
                spaces[name] = req
        if fam.types is not None:
            types.update(fam.types.fundamental)
            reg_types.update(fam.types.register_types)
        vocabulary.update(fam.modifiers)
        for gated in fam.mnemonics:
            mnemonics.update(name.split(".")[0] for name in gated.values)
        aliases.update(fam.aliases)
        options.update(fam.target_options)
    for form in forms.values():
        mnemonics.add(form.name.split(".")[0])
        vocabulary.update(form.values)
        vocabulary.update("." + t for t in form.name.split(".")[1:])
    vocabulary.update(types)
    vocabulary.update(spaces)

    return Tables(
        forms_by_base=forms_by_base,
        forms_by_id=forms,
        mnemonics=frozenset(mnemonics),
        aliases=aliases,
        vocabulary=frozenset(vocabulary),
        targets=targets,
        target_options=frozenset(options),
        versions=versions,
        max_version=max_version,
        special_registers=sregs,
        directives=frozenset(directives),
        directive_reqs=directive_reqs,
        state_spaces=spaces,
        types=frozenset(types),
        register_types=frozenset(reg_types),
        families=tuple(f.family for f in families),
        full_names=tuple(sorted({f.name for f in forms.values()} | mnemonics)),
        corrections=tuple(corrections),
        special_register_groups=_group_by_requirement(sregs),
    )


def _group_by_requirement(
    sregs: Mapping[str, SpecialRegister],
) -> tuple[tuple[Requirement, frozenset[str]], ...]:
    groups: dict[Requirement, set[str]] = {}
    for name, sreg in sregs.items():
        groups.setdefault(sreg.req, set()).add(name)
    return tuple((req, frozenset(names)) for req, names in groups.items())


def _newest_overlay() -> Path | None:
    def key(path: Path) -> tuple[int, ...]:
        digits = re.findall(r"\d+", path.stem)
        return tuple(int(d) for d in digits)

    found = sorted(probed_dir().glob("ptxas-*.yaml"), key=key)
    return found[-1] if found else None


@lru_cache(maxsize=8)
def load_tables(ptxas_version: str | None = None, *, probed: bool = True) -> Tables:
    """The packaged tables, loaded and indexed once per process (per overlay choice).

    With `probed`, the overlay of `ptxas_version` (e.g. `13.0.88` -> probed/ptxas-13.0.yaml) is
    applied, or, without a version, the newest overlay: the tables describe the newest toolkit, and
    finding the installed ptxas would cost a process start on every first load. `probed=False`
    gives the hand-written facts alone (what the probe measures before patching).
    """
    overlays: list[Path] = []
    if probed:
        chosen = overlay_path(ptxas_version) if ptxas_version else _newest_overlay()
        if chosen is not None and chosen.exists():
            overlays.append(chosen)
    return build_tables(tables_dir().glob("*.yaml"), overlays)
