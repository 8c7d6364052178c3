"""The deterministic PTX checker: rejects what the tables positively know to be illegal, before ptxas.

Guiding rule: a checker that rejects valid PTX is worse than none. Only facts the tables state
(a closed form's modifier slots, a value's minimum target or `.version`, declared registers,
operand counts) produce errors; anything the tables do not know (open forms, mnemonics without
forms, unusual operand shapes) passes, at most with an `info`. Every error says what is wrong,
where, and what is legal instead, so that a model can fix it in one turn.

The opcode analysis (form lookup, modifier slots, requirements) depends only on the opcode text,
the target and the `.version`, so it is cached across instructions and modules; its
target-independent part (which form, which slot each modifier fills) once per opcode text. So are
readings that depend on a statement's text alone: how an operand text splits into operands and
which names sit at typed positions, what a declaration declares, a hint's closest matches. What a
name means is never cached across modules: each module's own declarations answer it.
`clear_memos` forgets all of it (for benchmarks of a cold checker).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress, repeat
from operator import attrgetter, contains
from typing import Literal, cast

from kernelwright.domain import Diagnostic, Severity
from knowledge.ptx.parser import (
    Columns,
    Directive,
    Function,
    Instruction,
    Label,
    Module,
    Operand,
    parse_module,
)
from knowledge.ptx.tables import (
    Form,
    Requirement,
    Slot,
    Tables,
    Target,
    Version,
    load_tables,
    parse_target,
    parse_version,
)

__all__ = ["CHECK_SOURCE", "Codes", "check_ptx", "clear_memos", "resolve_target"]

CHECK_SOURCE = "ptx-check"


class Codes:
    """The stable diagnostic codes of the checker."""

    UNKNOWN_INSTRUCTION = "ptx.unknown_instruction"
    BAD_MODIFIER = "ptx.bad_modifier"
    BAD_TYPE = "ptx.bad_type"
    BAD_STATE_SPACE = "ptx.bad_state_space"
    NEEDS_TARGET = "ptx.needs_target"
    NEEDS_VERSION = "ptx.needs_version"
    UNDECLARED_REGISTER = "ptx.undeclared_register"
    UNDECLARED_SYMBOL = "ptx.undeclared_symbol"
    OPERAND_COUNT = "ptx.operand_count"
    BAD_OPERAND = "ptx.bad_operand"
    DIRECTIVE = "ptx.directive"
    SYNTAX = "ptx.syntax"
    UNKNOWN_FORM = "ptx.unknown_form"


_IDENT = re.compile(r"(?<![\w.$%])(%?[A-Za-z_$][\w$]*)")
_REG_INDEX = re.compile(r"^(.*?)(\d+)$")
_DECL_NAME = re.compile(r"([%$A-Za-z_][\w$]*)\s*(?:<\s*(\d+)\s*>)?")
_ALIGN = re.compile(r"\.align\s+\d+")
_SIMPLE_REG = re.compile(r"(\.\w+)\s+([%$A-Za-z_][\w$]*)(?:<(\d+)>)?")

# Kind and size of each type, for operand checks: b(its), u(nsigned), s(igned), f(loat), p(redicate).
_TYPE_INFO: dict[str, tuple[str, int]] = {
    ".pred": ("p", 1),
    ".b8": ("b", 8),
    ".u8": ("u", 8),
    ".s8": ("s", 8),
    ".b16": ("b", 16),
    ".u16": ("u", 16),
    ".s16": ("s", 16),
    ".f16": ("f", 16),
    ".bf16": ("f", 16),
    ".b32": ("b", 32),
    ".u32": ("u", 32),
    ".s32": ("s", 32),
    ".f32": ("f", 32),
    ".f16x2": ("f", 32),
    ".bf16x2": ("f", 32),
    ".u16x2": ("b", 32),
    ".s16x2": ("b", 32),
    ".tf32": ("f", 32),
    ".b64": ("b", 64),
    ".u64": ("u", 64),
    ".s64": ("s", 64),
    ".f64": ("f", 64),
    ".f32x2": ("f", 64),
    ".b128": ("b", 128),
}


# `.version` texts already parsed (a handful of distinct ones; parsing is pure).
_VERSIONS: dict[str, Version] = {}


def resolve_target(name: str, tables: Tables | None = None) -> Target | None:
    """The table's target for `name`, or a synthetic one for a well-formed but unlisted `sm_NN[a|f]`."""
    tables = tables or load_tables()
    known = tables.targets.get(name)
    if known is not None:
        return known
    parsed = parse_target(name)
    if parsed is None:
        return None
    return Target(name, parsed[0], parsed[1], (0, 0), "unknown")


@dataclass(frozen=True, slots=True)
class _Issue:
    """A diagnostic without its location (cached per opcode)."""

    code: str
    message: str
    hint: str | None
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True)
class _OpcodeResult:
    form: Form | None
    issues: tuple[_Issue, ...]
    chosen: tuple[tuple[str, str], ...]  # (slot name, value)
    known: bool  # the form is closed and matched: operand checks apply
    reading: _FormReading | None = field(default=None, compare=False)  # the target-independent part

    def value(self, slot: str) -> str | None:
        for name, value in self.chosen:
            if name == slot:
                return value
        return None


@dataclass(slots=True)
class _Scope:
    """Names visible inside one function."""

    regs: dict[str, str | None] = field(default_factory=dict)  # exact name -> type
    ranges: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # prefix -> (count, type)
    symbols: set[str] = field(default_factory=set)
    resolved: dict[str, tuple[bool, str | None]] = field(default_factory=dict)  # lookup cache


def check_ptx(
    source: str, *, target: str | None = None, filename: str | None = None, bulk: bool = True
) -> list[Diagnostic]:
    """Check one PTX module; `target` (e.g. `sm_90a`) overrides the module's `.target` for gating.

    Returns diagnostics sorted by position: errors for what is certainly illegal, warnings and
    infos for what may be. An empty list (or one without errors) means the checker found nothing
    wrong; ptxas remains the judge. `bulk=False` turns off the bulk path for long function bodies
    (see `parse_module`): the same diagnostics, slower; the reference the tests compare against.
    """
    return _Checker(load_tables(), parse_module(source, bulk=bulk), target, filename).run()


@lru_cache(maxsize=256)
def _usable_sregs(target: Target | None, version: Version | None) -> frozenset[str]:
    """Special registers (and the sink `_`) usable on this target and `.version`."""
    usable = {"_"}
    for req, names in load_tables().special_register_groups:
        if req.target_ok(target) and req.version_ok(version):
            usable.update(names)
    return frozenset(usable)


def _close(word: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """`difflib.get_close_matches` (memoized: a pure function, and the same hints recur, e.g. a
    misplaced modifier's suggestions on each target)."""
    return list(_close_memo(word, tuple(choices), n, cutoff))


@lru_cache(maxsize=2048)
def _close_memo(word: str, choices: tuple[str, ...], n: int, cutoff: float) -> tuple[str, ...]:
    """`_close`, with the choices the first test of `get_close_matches` (`real_quick_ratio`, a
    bound from the two lengths alone) rejects left out beforehand: the same answer, fewer calls."""
    size = len(word)
    pool = [
        choice
        for choice in choices
        if (2.0 * min(size, len(choice)) / (size + len(choice)) if size + len(choice) else 1.0) >= cutoff
    ]
    return tuple(difflib.get_close_matches(word, pool, n=n, cutoff=cutoff))


def _fmt_version(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def _requirement_issues(
    what: str, req: Requirement, target: Target | None, version: Version | None
) -> list[_Issue]:
    issues: list[_Issue] = []
    if not req.target_ok(target):
        assert target is not None
        hint = f"use .target {req.arch_names[0] if req.arch_names else f'sm_{req.sm}'} or later"
        if req.arch_names:
            hint = f"use .target {req.arch_names[0]} (arch-specific features need the `a` target)"
        if req.ptx is not None:
            hint += f" with .version {_fmt_version(req.ptx)} or later"
        issues.append(
            _Issue(
                Codes.NEEDS_TARGET,
                f"{what} needs {req.target_text()}; this module targets {target.name}",
                hint + ", or use an alternative legal on this target",
            )
        )
    if not req.version_ok(version):
        assert version is not None and req.ptx is not None
        issues.append(
            _Issue(
                Codes.NEEDS_VERSION,
                f"{what} needs PTX ISA .version {_fmt_version(req.ptx)} or later; "
                f"this module declares .version {_fmt_version(version)}",
                f"raise `.version` to {_fmt_version(req.ptx)} or later",
            )
        )
    return issues


def _legal(slot: Slot, target: Target | None, version: Version | None) -> list[str]:
    return [v.value for v in slot.values if v.req.target_ok(target) and v.req.version_ok(version)]


def _match_forms(tables: Tables, base: str, tokens: list[str]) -> list[Form]:
    """The forms of `base` whose name tokens all occur in the opcode (longest names first)."""
    candidates = tables.forms_by_base.get(base, ())
    present = set(tokens)
    found = [f for f in candidates if f.tokens <= present]
    if not found:
        return []
    best = found[0].ntokens
    return [f for f in found if f.ntokens == best]


class _FormReading:
    """How an opcode's tokens fill one form's slots, independent of target and `.version`: the
    steps of the form check, in the order of their issues, each judged per target: a requirement
    (`what`, req), a misplaced modifier (value, the slots filled before it), a missing required
    slot, or an issue that holds everywhere (a broken rule). `plan` caches the fast-path plan of
    the form with these modifiers (see `_plan`), which depends on nothing else."""

    __slots__ = ("chosen", "form", "plan", "result", "steps")

    def __init__(self, form: Form, chosen: tuple[tuple[str, str], ...], steps: tuple[_Step, ...]) -> None:
        self.form = form
        self.chosen = chosen
        self.steps = steps
        self.plan: _Plan | object | None = None
        self.result: _OpcodeResult | None = None  # when there are no steps: the same on every target


_Step = (
    tuple[Literal["req"], str, Requirement]
    | tuple[Literal["misplaced"], str, dict[str, str]]
    | tuple[Literal["missing"], Slot, None]
    | tuple[Literal["issue"], _Issue, None]
)


@lru_cache(maxsize=4096)
def _read_opcode(opcode: str) -> _OpcodeResult | tuple[_FormReading, ...]:
    """The target-independent part of `_analyze`: a final result when the mnemonic is unknown or
    no form matches (neither depends on the target), else the reading of each matching form."""
    tables = load_tables()
    tokens = opcode.split(".")
    base = tokens[0]
    if base not in tables.mnemonics:
        alias = tables.aliases.get(base) or tables.aliases.get(opcode)
        suggestions = [alias] if alias else _close(base, tables.full_names)
        hint = f"did you mean `{suggestions[0]}`?" if suggestions else "check the PTX ISA instruction list"
        if len(suggestions) > 1:
            hint = "did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
        return _OpcodeResult(
            None,
            (_Issue(Codes.UNKNOWN_INSTRUCTION, f"unknown instruction `{base}`", hint),),
            (),
            False,
        )
    forms = _match_forms(tables, base, tokens)
    if not forms:
        return _OpcodeResult(None, _unmatched(tables, base, tokens), (), False)
    return tuple(_read_form(tables, form, tokens) for form in forms)


@lru_cache(maxsize=8192)
def _analyze(opcode: str, target: Target | None, version: Version | None) -> _OpcodeResult:
    read = _read_opcode(opcode)
    if isinstance(read, _OpcodeResult):
        return read
    best: _OpcodeResult | None = None
    for reading in read:
        result = _judge_form(reading, target, version)
        if not any(i.severity == Severity.ERROR for i in result.issues):
            return result
        if best is None or len(result.issues) < len(best.issues):
            best = result
    assert best is not None
    return best


def _unmatched(tables: Tables, base: str, tokens: list[str]) -> tuple[_Issue, ...]:
    """No form of a known mnemonic matched: only tokens unknown everywhere are errors."""
    for token in tokens[1:]:
        if "." + token not in tables.vocabulary and base in tables.forms_by_base:
            names = [f.name for f in tables.forms_by_base[base]]
            guess = _close(".".join(tokens[:2]), names, n=1)
            hint = f"did you mean `{guess[0]}`?" if guess else "forms of `" + base + "`: " + ", ".join(names)
            if not all(f.closed for f in tables.forms_by_base[base]):
                return ()
            return (_Issue(Codes.BAD_MODIFIER, f"unknown modifier `.{token}` in `{'.'.join(tokens)}`", hint),)
    return (
        _Issue(
            Codes.UNKNOWN_FORM,
            f"`{'.'.join(tokens)}` is not a form the PTX tables know; ptxas will judge it",
            None,
            Severity.INFO,
        ),
    )


def _read_form(tables: Tables, form: Form, tokens: list[str]) -> _FormReading:
    """The steps of checking `tokens` against `form` (see `_FormReading`), in the order of the
    issues they may raise."""
    steps: list[_Step] = []
    if not form.req.empty:
        steps.append(("req", f"`{form.name}`", form.req))
    name_tokens = set(form.tokens)
    filled: dict[str, str] = {}
    chosen: list[tuple[str, str]] = []
    for token in tokens[1:]:
        if token in name_tokens:
            name_tokens.discard(token)
            continue
        value = "." + token
        slot = _place(form, value, filled)
        if slot is None:
            if form.closed:
                steps.append(("misplaced", value, dict(filled)))
            continue
        filled[slot.name] = value
        chosen.append((slot.name, value))
        req = slot.index[value]
        if not req.empty:
            steps.append(("req", f"`{value}` on `{form.name}`", req))
    if form.closed:
        for slot in form.slots:
            if slot.required and slot.name not in filled:
                steps.append(("missing", slot, None))
        present = set(filled.values())
        for combo in form.combos:
            if combo.values <= present and not combo.req.empty:
                what = "`" + form.name + "".join(sorted(combo.values)) + "`"
                steps.append(("req", what, combo.req))
        for rule in form.rules:
            if rule.when in present and not (rule.needs_one_of & present):
                code = (
                    Codes.BAD_STATE_SPACE
                    if any(v in tables.state_spaces for v in rule.needs_one_of)
                    else Codes.BAD_MODIFIER
                )
                issue = _Issue(code, rule.message, "add " + " or ".join(sorted(rule.needs_one_of)))
                steps.append(("issue", issue, None))
    return _FormReading(form, tuple(chosen), tuple(steps))


def _judge_form(reading: _FormReading, target: Target | None, version: Version | None) -> _OpcodeResult:
    """The issues of a form reading on this target and `.version`."""
    if not reading.steps:
        if reading.result is None:
            reading.result = _OpcodeResult(reading.form, (), reading.chosen, reading.form.closed, reading)
        return reading.result
    form = reading.form
    issues: list[_Issue] = []
    for step in reading.steps:
        if step[0] == "req":
            issues.extend(_requirement_issues(step[1], step[2], target, version))
        elif step[0] == "misplaced":
            issues.append(_misplaced(load_tables(), form, step[1], step[2], target, version))
        elif step[0] == "missing":
            slot = step[1]
            legal = " ".join(_legal(slot, target, version))
            code = Codes.BAD_TYPE if slot.is_type else Codes.BAD_MODIFIER
            what = "type" if slot.is_type else f"`{slot.name}` modifier"
            issues.append(_Issue(code, f"`{form.name}` needs a {what}", f"legal here: {legal}"))
        else:
            issues.append(step[1])
    return _OpcodeResult(form, tuple(issues), reading.chosen, form.closed, reading)


def _place(form: Form, value: str, filled: dict[str, str]) -> Slot | None:
    for slot in form.slots:
        if value in slot.index and slot.name not in filled:
            return slot
    return None


def _misplaced(
    tables: Tables,
    form: Form,
    value: str,
    filled: dict[str, str],
    target: Target | None,
    version: Version | None,
) -> _Issue:
    """The issue for a modifier no free slot of a closed form accepts."""
    taken = [s for s in form.slots if value in s.index]
    if taken:
        slot = taken[0]
        other = filled.get(slot.name, "")
        if slot.name == "ss" or value in tables.state_spaces:
            return _Issue(
                Codes.BAD_STATE_SPACE,
                f"`{form.name}` takes one state space; got `{other}` and `{value}`",
                "keep exactly one state space",
            )
        code = Codes.BAD_TYPE if slot.is_type else Codes.BAD_MODIFIER
        if other == value:
            return _Issue(code, f"`{value}` is repeated in `{form.name}`", "write each modifier once")
        return _Issue(
            code,
            f"`{other}` and `{value}` conflict in `{form.name}` (both are `{slot.name}`)",
            f"choose one of: {' '.join(_legal(slot, target, version))}",
        )
    type_slot = next((s for s in form.slots if s.is_type), None)
    space_slot = next((s for s in form.slots if s.name == "ss"), None)
    if value in tables.state_spaces or (space_slot is not None and _close(value, space_slot.index, 1, 0.75)):
        if space_slot is None:
            return _Issue(
                Codes.BAD_STATE_SPACE, f"`{form.name}` takes no state space (`{value}`)", f"remove `{value}`"
            )
        legal = _legal(space_slot, target, version)
        guess = _close(value, legal, 1, 0.75)
        hint = (
            (f"did you mean `{guess[0]}`? " if guess else "") + "legal state spaces here: " + " ".join(legal)
        )
        return _Issue(Codes.BAD_STATE_SPACE, f"`{form.name}` cannot use state space `{value}`", hint)
    if value in tables.types and type_slot is not None:
        legal = _legal(type_slot, target, version)
        return _Issue(
            Codes.BAD_TYPE,
            f"`{value}` is not a legal type for `{form.name}`",
            "legal types here: " + " ".join(legal),
        )
    legal_all = [v for s in form.slots for v in _legal(s, target, version)]
    guess = _close(value, legal_all, 1)
    if value not in tables.vocabulary:
        message = f"unknown modifier `{value}` on `{form.name}`"
    else:
        message = f"`{value}` is not a modifier of `{form.name}`"
    hint = (f"did you mean `{guess[0]}`? " if guess else "") + _slots_text(form, target, version)
    return _Issue(Codes.BAD_MODIFIER, message, hint)


def _slots_text(form: Form, target: Target | None, version: Version | None) -> str:
    parts = [f"{s.name}: {' '.join(_legal(s, target, version))}" for s in form.slots if not s.is_type]
    return "modifiers of `" + form.name + "`: " + ("; ".join(parts) if parts else "none")


# ---------------------------------------------------------------------------------------------------

# The fast path's verdicts for an opcode (see `_Checker.plan`).
_EXPAND_MAX = 1 << 14  # larger register ranges are resolved name by name
_LONG_FUNCTION = 24  # instructions before bulk name resolution and the shape memo pay off
_DIGITS = re.compile(r"\d+")
# Every ASCII digit to `0`: a shape keeps the length of each number, a finer split than `\d+` to
# `0` (which `shapes_resolve_alike` reasons about), so equal shapes are still alike there.
_ZERO_DIGITS = str.maketrans("123456789", "000000000")
# ASCII characters that cannot be part of an `_IDENT` run (`[\w.$%]`), to a space.
_NOT_NAME_RUN = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c in "_.$%")})
_NAME_HEAD = re.compile(r"%?[A-Za-z_$][\w$]*")
_OPCODE = attrgetter("opcode")
_GUARD = attrgetter("guard")
_REST = attrgetter("rest")
_PLAIN_NAME = re.compile(r"%?[A-Za-z_$][\w$]*")


def _names(text: str) -> set[str]:
    r"""`set(_IDENT.findall(text))`, faster on ASCII text: `_IDENT` can only match at the start of a
    maximal run of `[\w.$%]`, as that run's longest `%?[A-Za-z_$][\w$]*` prefix; the runs come
    from one `translate` and `split`, and each distinct run is matched once."""
    if not text.isascii():
        return set(_IDENT.findall(text))
    head = _NAME_HEAD.match
    found: set[str] = set()
    for run in set(text.translate(_NOT_NAME_RUN).split()):
        match = head(run)
        if match is not None:
            found.add(match.group())
    return found


# A declaration's text read into (its type, whether it is a vector, the names it declares with
# their `<N>` counts, the other dotted words in order): see `_parse_declaration`.
_Declaration = tuple[str | None, bool, tuple[tuple[str, int | None], ...], tuple[str, ...]]


class _TableMemo:
    """Per-process memos that depend on one tables object: the types a plain `.reg` may name
    (None when `.reg` itself is unknown or has requirements; see `simple_reg`) and declaration
    texts already read (a pure function of the text and the table's types)."""

    __slots__ = ("declarations", "plain_regs", "tables")

    def __init__(self, tables: Tables) -> None:
        self.tables = tables  # kept alive, so that its id stays its own
        known = ".reg" in tables.directives or ".reg" in tables.state_spaces
        req = tables.directive_reqs.get(".reg") or tables.state_spaces.get(".reg")
        self.plain_regs = (
            None if not known or (req is not None and not req.empty) else tables.register_types & tables.types
        )
        self.declarations: dict[str, _Declaration] = {}


_TABLE_MEMOS: dict[int, _TableMemo] = {}


def _table_memo(tables: Tables) -> _TableMemo:
    memo = _TABLE_MEMOS.get(id(tables))
    if memo is None:
        if len(_TABLE_MEMOS) >= 8:
            _TABLE_MEMOS.clear()
        memo = _TABLE_MEMOS[id(tables)] = _TableMemo(tables)
    return memo


# Plain `.reg` texts (`.b32 %r<16>`) read into (type, name, count), None when not plain: a pure
# parse of the text, memoized per process (the same declarations open most functions).
_SIMPLE_REGS: dict[str, tuple[str, str, int | None] | None] = {}
_NOT_READ = ("", "", None)  # a memo miss (compared by identity)


_BRACKETS = re.compile(r"\[[^\]]*\]")


def _parse_declaration(text: str, types: AbstractSet[str]) -> _Declaration:
    """What `declare` reads in a declaration's text (after its directive name): the first type
    word, whether a vector word occurs, the declared names with their `<N>` counts, and the other
    dotted words in order (which `declare` judges for a `.reg`)."""
    text = text.split("=", 1)[0]
    text = _ALIGN.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    type_name: str | None = None
    vector = False
    names: list[tuple[str, int | None]] = []
    others: list[str] = []
    for word in text.replace(",", " ").split():
        if word.startswith("."):
            if word in types and type_name is None:
                type_name = word
            elif word in (".v2", ".v4", ".v8"):
                vector = True
            else:
                others.append(word)
            continue
        for match in _DECL_NAME.finditer(word):
            count = match.group(2)
            names.append((match.group(1), int(count) if count is not None else None))
    return type_name, vector, tuple(names), tuple(others)


@lru_cache(maxsize=1024)
def _range_names(prefix: str, count: int) -> frozenset[str]:
    """The names `%r0`..`%r<count-1>` a register range declares (for a prefix without a trailing
    digit: what `lookup` finds for them), memoized per process like the opcode analyses (the
    same `.reg` lines recur across functions and modules)."""
    return frozenset([prefix + str(i) for i in range(count)])


def _all_declared(
    text: str,
    scope: _Scope,
    lookup: Callable[[str, _Scope], tuple[bool, str | None]],
    long: bool,
    resolving: Iterable[AbstractSet[str]],
) -> bool:
    r"""Whether `lookup` finds every name of `_names(text)`. On ASCII text, the maximal runs of
    `[\w.$%]` that are a declared register (or, in a `long` function, a range member) are removed
    in bulk first: such a run is a whole name (or, for a name like `%1a`, holds none), so only the
    other runs (symbols, special registers, literals) are matched and looked up one by one.
    `resolving` are more runs known to resolve (each one's name, its longest `_NAME_HEAD` prefix,
    is found, or it has none): removed in bulk too."""
    if not text.isascii():
        return all(lookup(name, scope)[0] for name in set(_IDENT.findall(text)))
    runs = set(text.translate(_NOT_NAME_RUN).split())
    runs.difference_update(scope.regs)
    for prefix, (count, _) in scope.ranges.items() if long else ():
        if runs and count <= _EXPAND_MAX and prefix and not prefix[-1].isdigit():
            # `difference`, not `difference_update`: it walks the smaller of the two sets.
            runs = runs.difference(_range_names(prefix, count))
    for known in resolving:
        if runs:
            runs = runs.difference(known)
    head = _NAME_HEAD.match
    for run in runs:
        match = head(run)
        if match is not None and not lookup(match.group(), scope)[0]:
            return False
    return True


@lru_cache(maxsize=64)
def _sreg_runs(sregs: frozenset[str]) -> frozenset[str]:
    r"""Runs of `[\w.$%]` whose name is a usable special register: each plain name and its
    `.x`/`.y`/`.z` components (`%tid.x` is the name `%tid` in a run)."""
    plain = [name for name in sregs if _NAME_HEAD.fullmatch(name)]
    return frozenset([*plain, *(name + axis for name in plain for axis in (".x", ".y", ".z"))])


@lru_cache(maxsize=64)
def _untyped_shapes(sregs: frozenset[str]) -> frozenset[str]:
    """Digit-free shapes of the special registers (fixed per target and `.version`)."""
    return frozenset(_DIGITS.sub("0", name) for name in sregs)


_SLOW = object()
_NO_OPERAND_CHECK = object()
_OPERAND_PIECE = re.compile(r"(?:\[[^\]]*\]|\{[^}]*\}|\([^)]*\)|[^,\[{(])+")


class _Plan:
    """The operand checks of one closed form with its modifiers resolved, as plain tuples:
    (is an address, vector size or 0) per operand, and for each typed operand the register types
    it rejects. Built once per opcode spelling, so checking an instruction is a split and a few
    dict and set lookups. `memo` holds the plan's reading of each operand text it has seen and
    `shape_memo` that of each digit-free shape (see `_operand_reading`): a property of the text
    and the form only, never of what a module's names mean."""

    __slots__ = ("high", "low", "memo", "shape_memo", "shaped", "shapes", "typed")

    def __init__(
        self,
        low: int,
        high: int,
        shapes: tuple[tuple[bool, int], ...],
        typed: tuple[tuple[int, frozenset[str]], ...],
    ) -> None:
        self.low = low
        self.high = high
        self.shapes = shapes
        self.shaped = any(address or size for address, size in shapes)
        self.typed = typed
        self.memo: dict[str, _Reading] = {}
        self.shape_memo: dict[str, _Reading] = {}


# A plan's reading of an operand text: None when the operands' count or shapes are wrong, else the
# (name, register types it rejects) pairs its type check looks up.
_Reading = tuple[tuple[str, frozenset[str]], ...] | None
_UNREAD: _Reading = (("", frozenset()),)  # a memo miss (compared by identity)


_READINGS_MAX = 4096  # operand texts remembered per plan (a long-lived service sees unbounded ones)


def _operand_reading(rest: str, plan: _Plan) -> _Reading:
    """What `check_operands` would look at in an operand text, for this plan: None when the count,
    an address or a vector shape is wrong (it would report that whatever the names mean), else the
    (name, register types it rejects) pairs of the typed operands, exactly the names its type check
    looks up. Callers memoize it per plan (`_Plan.memo`): the same operand texts recur."""
    bracket = "[" in rest
    if bracket or "{" in rest or "(" in rest:
        operands = [p.strip() for p in _OPERAND_PIECE.findall(rest)]
    else:
        operands = [p.strip() for p in rest.split(",")]
    if "" in operands:
        operands = [t for t in operands if t]
    count = len(operands)
    found: tuple[tuple[str, frozenset[str]], ...] | None = None
    if plan.low <= count <= plan.high:
        found = ()
        if plan.shaped or bracket:
            for (address, size), text in zip(plan.shapes, operands, strict=False):
                if address != (text[0] == "[") or (
                    size and not (text[0] == "{" and text[-1] == "}" and text.count(",") == size - 1)
                ):
                    found = None
                    break
        if found is not None:
            checks: list[tuple[str, frozenset[str]]] = []
            for position, wrong in plan.typed:
                if position >= count:
                    continue
                for piece in operands[position].split("|"):
                    name = piece.strip().lstrip("!-")
                    if name.startswith("%") or name[:1].isalpha():
                        checks.append((name, wrong))
            found = tuple(checks)
    return found


# Plans per (target, .version): one dict for every module with that header, so that finding an
# opcode's plan is one dict lookup (`_plan` is the builder; both are per-process memos).
_PLAN_TABLES: dict[tuple[Target | None, Version | None], dict[str, _Plan | object]] = {}


def _plans_for(target: Target | None, version: Version | None) -> dict[str, _Plan | object]:
    key = (target, version)
    plans = _PLAN_TABLES.get(key)
    if plans is None:
        if len(_PLAN_TABLES) >= 64:
            _PLAN_TABLES.clear()
        plans = _PLAN_TABLES[key] = {"": _SLOW}
    elif len(plans) >= 8192:
        plans.clear()
        plans[""] = _SLOW
    return plans


def _shape_reading(shape: str, plan: _Plan) -> _Reading:
    r"""The reading of a digit-free operand shape (see `bulk_flags`), memoized per plan like any
    operand text: digits do not change a reading's structure, and its names are keyed as
    `shape_typing` keys them (`\d+` to `0`), so that a name's type is its shape's."""
    memo = plan.shape_memo
    if len(memo) >= _READINGS_MAX:
        memo.clear()
    reading = _operand_reading(shape, plan)
    if reading:
        reading = tuple((_DIGITS.sub("0", name), wrong) for name, wrong in reading)
    memo[shape] = reading
    return reading


def clear_memos() -> None:
    """Forget every per-process memo (opcode analyses, plans and their operand readings, register
    range names, table-derived sets): what a fresh process would start from, short of reloading
    the tables. For benchmarks of a cold checker."""
    _analyze.cache_clear()
    _read_opcode.cache_clear()
    _plan.cache_clear()
    _PLAN_TABLES.clear()
    _range_names.cache_clear()
    _untyped_shapes.cache_clear()
    _sreg_runs.cache_clear()
    _close_memo.cache_clear()
    _usable_sregs.cache_clear()
    _TABLE_MEMOS.clear()
    _SIMPLE_REGS.clear()
    _VERSIONS.clear()


@lru_cache(maxsize=8192)
def _plan(opcode: str, target: Target | None, version: Version | None) -> _Plan | object:
    """The fast-path plan of an opcode spelling, memoized like `_analyze` (opcode spellings repeat
    massively across instructions and modules; the plan holds no diagnostics)."""
    result = _analyze(opcode, target, version)
    if result.issues:
        return _SLOW
    reading = result.reading
    if reading is not None and reading.plan is not None:
        return reading.plan
    plan = _build_plan(result)
    if reading is not None:
        reading.plan = plan
    return plan


def _build_plan(result: _OpcodeResult) -> _Plan | object:
    form = result.form
    if form is None or not result.known or form.operands is None:
        return _NO_OPERAND_CHECK
    vec = result.value("vec") if result.chosen else None
    size = int(vec[2:]) if vec is not None else 0
    shapes = tuple((spec.address, size if spec.vector else 0) for spec in form.operands)
    typed: list[tuple[int, frozenset[str]]] = []
    for spec in form.typed:
        expected = spec.literal or (result.value(spec.slot) if spec.slot else None)
        if expected is None or expected not in _TYPE_INFO:
            continue
        typed.append((spec.position, _INCOMPATIBLE[expected, spec.wider_ok]))
    return _Plan(form.min_operands, form.max_operands, shapes, tuple(typed))


class _Checker:
    def __init__(self, tables: Tables, module: Module, target: str | None, filename: str | None) -> None:
        self.tables = tables
        self.module = module
        self.override = target
        self.filename = filename
        self.found: list[tuple[int, Diagnostic]] = []
        self.target: Target | None = None
        self.version: Version | None = None
        self.module_symbols: set[str] = set()
        self.usable_sregs: frozenset[str] = frozenset()
        self.analyses: dict[str, _OpcodeResult] = {}
        self.plans: dict[str, _Plan | object] = {}  # set from the header (see `run`)
        self.plain_regs = _table_memo(tables).plain_regs
        # Operand verdicts of bulk-checked functions, per shape typing (see `bulk_clean`).
        self.verdicts: dict[frozenset[tuple[str, str | None]], dict[tuple[str, str], bool]] = {}

    # -- reporting
    def add(
        self, pos: int, code: str, message: str, hint: str | None, severity: Severity = Severity.ERROR
    ) -> None:
        line, column = self.module.line_col(pos)
        self.found.append(
            (
                pos,
                Diagnostic(
                    code=code,
                    message=message,
                    severity=severity,
                    file=self.filename,
                    line=line,
                    column=column,
                    hint=hint,
                    source=CHECK_SOURCE,
                ),
            )
        )

    def run(self) -> list[Diagnostic]:
        self.check_header()
        self.usable_sregs = _usable_sregs(self.target, self.version)
        self.plans = _plans_for(self.target, self.version)
        for fn in self.module.functions:
            self.module_symbols.add(fn.name)
        for fn in self.module.functions:
            self.check_function(fn)
        for statement in self.module.stray:
            if isinstance(statement, Instruction):
                self.add(
                    statement.pos,
                    Codes.SYNTAX,
                    f"instruction `{statement.opcode}` outside a function body",
                    "instructions belong inside `.entry name(...) { ... }` or `.func`",
                )
        if self.module.unbalanced is not None:
            self.add(
                self.module.unbalanced,
                Codes.SYNTAX,
                "unmatched `}`",
                "check the braces of the function bodies",
            )
        self.found.sort(key=lambda item: item[0])
        return [d for _, d in self.found]

    # -- module header
    def check_header(self) -> None:
        tables = self.tables
        header = self.module.header
        version_dir = target_dir = size_dir = None
        others: list[Directive] = []
        for directive in header:  # the first of each, in one pass
            name = directive.name
            if name == ".version":
                version_dir = version_dir or directive
            elif name == ".target":
                target_dir = target_dir or directive
            elif name == ".address_size":
                size_dir = size_dir or directive
            else:
                others.append(directive)
        if version_dir is None:
            self.add(
                0,
                Codes.DIRECTIVE,
                "missing `.version` directive",
                f"start the module with `.version {_fmt_version(tables.max_version)}` (or the one you need)",
            )
        else:
            version = _VERSIONS.get(version_dir.text)
            if version is None:
                version = parse_version(version_dir.text)
                if version is not None and len(_VERSIONS) < 256:
                    _VERSIONS[version_dir.text] = version
            if version is None or version not in tables.versions:
                maxv = _fmt_version(tables.max_version)
                if version is not None and version > tables.max_version:
                    message = f"unsupported .version {version_dir.text}; this ptxas supports up to {maxv}"
                else:
                    message = f"unsupported .version {version_dir.text!r}"
                self.add(version_dir.pos, Codes.DIRECTIVE, message, f"use a PTX ISA version such as {maxv}")
            else:
                self.version = version
            if header and header[0] is not version_dir:
                self.add(
                    header[0].pos,
                    Codes.DIRECTIVE,
                    "`.version` must be the first directive of the module",
                    "move `.version` to the top",
                )
        target_name: str | None = None
        if target_dir is None:
            self.add(
                0, Codes.DIRECTIVE, "missing `.target` directive", "add `.target sm_XX` after `.version`"
            )
        else:
            names = [t.strip() for t in target_dir.text.split(",") if t.strip()]
            for option in names[1:]:
                if option not in tables.target_options:
                    self.add(
                        target_dir.pos,
                        Codes.DIRECTIVE,
                        f"unknown .target option `{option}`",
                        "options: " + " ".join(sorted(tables.target_options)),
                    )
            target_name = names[0] if names else ""
            if target_name not in tables.targets:
                guess = _close(target_name, tables.targets, 1)
                hint = (f"did you mean `{guess[0]}`? " if guess else "") + "targets look like sm_80, sm_90a"
                self.add(target_dir.pos, Codes.DIRECTIVE, f"unknown .target `{target_name}`", hint)
        effective = self.override or target_name
        if effective:
            self.target = resolve_target(effective, tables)
            known = tables.targets.get(effective)
            if known is not None and self.version is not None and self.version < known.min_ptx:
                pos = target_dir.pos if target_dir is not None else 0
                self.add(
                    pos,
                    Codes.NEEDS_VERSION,
                    f"PTX .version {_fmt_version(self.version)} does not support .target {effective}",
                    f"{effective} needs .version {_fmt_version(known.min_ptx)} or later",
                )
        if size_dir is not None:
            if size_dir.text not in ("32", "64"):
                self.add(size_dir.pos, Codes.DIRECTIVE, f"bad .address_size {size_dir.text!r}", "use 64")
            elif size_dir.text == "32" and self.target is not None and self.target.number >= 90:
                self.add(
                    size_dir.pos,
                    Codes.DIRECTIVE,
                    "32-bit addressing is not supported on sm_90 or later",
                    "use `.address_size 64`",
                )
        for directive in others:
            self.check_directive(directive, None)

    # -- declarations
    def simple_reg(self, text: str, scope: _Scope) -> bool:
        """Record a plain `.reg .b32 %r<16>` / `.reg .pred %p` of a function body, in one match:
        exactly what `check_directive` records for it, when `.reg` is a known directive without
        requirements (False: the caller takes the general path)."""
        parsed = _SIMPLE_REGS.get(text, _NOT_READ)
        if parsed is _NOT_READ:
            if len(_SIMPLE_REGS) >= 4096:
                _SIMPLE_REGS.clear()
            match = _SIMPLE_REG.fullmatch(text)
            parsed = _SIMPLE_REGS[text] = (
                None if match is None else (match[1], match[2], None if match[3] is None else int(match[3]))
            )
        if parsed is None:
            return False
        reg_type, name, count = parsed
        plain = self.plain_regs
        if plain is None or reg_type not in plain:
            return False
        if count is not None:
            scope.ranges[name] = (count, reg_type)
        else:
            scope.regs[name] = reg_type
        return True

    def check_directive(self, directive: Directive, scope: _Scope | None) -> None:
        tables = self.tables
        name = directive.name
        if name == ".reg" and scope is not None and self.simple_reg(directive.text, scope):
            return
        if name not in tables.directives and name not in tables.state_spaces:
            guess = _close(name, tables.directives | set(tables.state_spaces), 1)
            self.add(
                directive.pos,
                Codes.DIRECTIVE,
                f"unknown directive `{name}`",
                f"did you mean `{guess[0]}`?" if guess else None,
            )
            return
        req = tables.directive_reqs.get(name) or tables.state_spaces.get(name)
        if req is not None and not req.empty:
            for issue in _requirement_issues(f"`{name}`", req, self.target, self.version):
                self.add(directive.pos, issue.code, issue.message, issue.hint)
        if name in (".loc", ".file", ".pragma", ".section", ".callprototype", ".alias", ".entry", ".func"):
            return
        self.declare(directive, scope)

    def declare(self, directive: Directive, scope: _Scope | None) -> None:
        """Record the names a declaration introduces (and check a `.reg` type)."""
        text = directive.text
        if scope is not None and directive.name == ".reg":
            # `.reg .b32 %r<16>` / `.reg .pred %p`: what the general path below records, in one match.
            match = _SIMPLE_REG.fullmatch(text)
            if match is not None and match[1] in self.tables.register_types and match[1] in self.tables.types:
                if match[3] is not None:
                    scope.ranges[match[2]] = (int(match[3]), match[1])
                else:
                    scope.regs[match[2]] = match[1]
                return
        if directive.name in (".visible", ".extern", ".weak", ".common") and (
            ".func" in text or ".entry" in text
        ):
            match = re.search(r"\.(?:entry|func)\s*(?:\([^)]*\)\s*)?([A-Za-z_$%][\w$]*)", text)
            if match:
                self.module_symbols.add(match.group(1))
            return
        memo = _table_memo(self.tables).declarations
        parsed = memo.get(text)
        if parsed is None:
            if len(memo) >= 4096:
                memo.clear()
            parsed = memo[text] = _parse_declaration(text, self.tables.types)
        type_name, vector, names, others = parsed
        if directive.name == ".reg":
            for word in others:
                if word not in self.tables.state_spaces and word not in (".ptr",):
                    guess = _close(word, self.tables.register_types, 1)
                    self.add(
                        directive.pos,
                        Codes.BAD_TYPE,
                        f"`{word}` is not a register type",
                        f"did you mean `{guess[0]}`?" if guess else "use .b32, .f32, .pred, ...",
                    )
        if directive.name == ".reg" and type_name is not None and type_name not in self.tables.register_types:
            self.add(
                directive.pos,
                Codes.BAD_TYPE,
                f"`{type_name}` is not a register type",
                "register types: " + " ".join(sorted(self.tables.register_types)),
            )
        reg_type = None if vector else type_name
        for decl, count in names:
            if scope is None:
                self.module_symbols.add(decl)
            elif directive.name == ".reg":
                if count is not None:
                    scope.ranges[decl] = (count, reg_type)
                else:
                    scope.regs[decl] = reg_type
            else:
                scope.symbols.add(decl)

    # -- functions
    def check_function(self, fn: Function) -> None:
        if fn.rows is not None:
            flagged = self.bulk_flags(fn.rows, fn.params)
            if flagged is not None:
                scope, indices = flagged
                if indices:
                    check = self.check_instruction
                    for ins in fn.instructions_at(indices):
                        check(ins, scope)
                return
        scope = _Scope()
        scope.symbols.update(fn.params)
        body = fn.body
        simple_reg = self.simple_reg
        instructions: list[Instruction] = []
        for statement in body:
            if type(statement) is Instruction:
                instructions.append(statement)
            elif type(statement) is Label:
                scope.symbols.add(statement.name)
            else:
                directive = cast(Directive, statement)
                if not (directive.name == ".reg" and simple_reg(directive.text, scope)):
                    self.check_directive(directive, scope)
        if not instructions:
            return
        # Every name in every operand, in one regex pass over the joined operand texts (a name
        # cannot span the separator; no operand text holds a `;`): only a function that uses an
        # undeclared name pays for finding where, and only on the instructions that mention one.
        joined = ";".join(map(_REST, instructions))
        lookup = self.lookup
        long = len(instructions) >= _LONG_FUNCTION
        if long:
            self.resolve_ranges(scope)  # short functions resolve the few names they use one by one
        resolved = scope.resolved
        unknown = [name for name in _names(joined).difference(resolved) if not lookup(name, scope)[0]]
        # In a long function, instructions that differ only in their numbers (`%r12` for `%r7`,
        # an offset, a literal) get the same operand verdict when every name with the same
        # "shape" resolves alike (see `_shapes_resolve_alike`): judge each (opcode, shape) once.
        shapes: list[str] | None = None
        if long and self.shapes_resolve_alike(scope):
            shapes = joined.translate(_ZERO_DIGITS).split(";")
        if shapes is not None and not unknown:
            self.check_by_shape(instructions, shapes, scope)
            return
        verdicts: dict[tuple[str, str], bool] = {}
        plans = self.plans
        slow = self.check_instruction
        operands_ok = self.operands_ok
        for index, ins in enumerate(instructions):
            opcode = ins.opcode
            plan = plans.get(opcode)
            if plan is None:
                plan = plans[opcode] = self.plan(opcode)
            if (
                plan is _SLOW
                or (unknown and any(name in ins.rest for name in unknown))
                or (ins.guard is not None and not self.guard_ok(ins.guard, scope))
            ):
                slow(ins, scope)
                continue
            if plan is _NO_OPERAND_CHECK:
                continue
            assert isinstance(plan, _Plan)
            if shapes is None:
                ok = operands_ok(ins.rest, plan, scope)
            else:
                key = (opcode, shapes[index])
                verdict = verdicts.get(key)
                if verdict is None:
                    verdict = verdicts[key] = operands_ok(ins.rest, plan, scope)
                ok = verdict
            if not ok:
                slow(ins, scope)

    def resolving(self, params: list[str], scope: _Scope) -> list[AbstractSet[str]]:
        """Runs that certainly resolve in this function, for `_all_declared`: module symbols,
        usable special registers, and the function's symbols when they are all plain names."""
        resolving: list[AbstractSet[str]] = [self.module_symbols, _sreg_runs(self.usable_sregs)]
        if not any("%" in param[1:] for param in params):
            # Labels and declared names are plain (their runs are their names); a parameter
            # like `a%b` is not (its name is `a`): then symbols take the one-by-one path.
            resolving.append(scope.symbols)
        return resolving

    def bulk_flags(self, rows: Columns, params: list[str]) -> tuple[_Scope, list[int]] | None:
        """For a body the parser kept as bulk rows (see `Function`): its scope and the indices of
        the rows whose full check (`check_instruction`) may report something, decided without
        building statements; None when a declaration has a diagnostic (the caller then takes
        the statement path for the whole body).

        A row is flagged when its opcode has issues, its guard is not a declared predicate, its
        operand text holds a name `lookup` does not find, or its operands fail `operands_ok`
        (judged once per distinct opcode and operand text, or per digit-free shape where
        `shape_typing` allows it). The full check of an unflagged row reports nothing, and the
        caller checks the flagged ones in order, so the diagnostics are the statement path's."""
        scope = _Scope()
        dnames, dtexts, guards, opcodes, rests, labels = rows
        if not opcodes:
            return scope, []
        scope.symbols.update(params)
        mark = len(self.found)
        simple_reg = self.simple_reg
        for name, text in compress(zip(dnames, dtexts, strict=True), dnames):
            if not (name == ".reg" and simple_reg(text.strip(), scope)):
                self.check_directive(Directive(0, name, text.strip()), scope)
        if len(self.found) != mark:
            del self.found[mark:]  # the statement path reports them, in place
            return None
        scope.symbols.update(labels)
        scope.symbols.discard("")
        distinct = set(opcodes)
        distinct.discard("")
        if not distinct:
            return scope, []
        plans = self.plans
        bad_opcodes: set[str] = set()
        for opcode in distinct:
            plan = plans.get(opcode)
            if plan is None:
                plan = plans[opcode] = self.plan(opcode)
            if plan is _SLOW:
                bad_opcodes.add(opcode)
        named_guards = set(guards)
        named_guards.discard("")
        bad_guards = {guard for guard in named_guards if not self.guard_ok(guard, scope)}
        long = len(opcodes) - opcodes.count("") >= _LONG_FUNCTION
        joined = ";".join(rests)
        lookup = self.lookup
        unknown: list[str] = []
        if not _all_declared(joined, scope, lookup, long, self.resolving(params, scope)):
            unknown = [name for name in _names(joined) if not lookup(name, scope)[0]]
        typing = self.shape_typing(scope) if long else None
        bad_keys: set[tuple[str, str]] = set()
        keys: Iterable[tuple[str, str]]
        if typing is None:
            keys = zip(opcodes, rests, strict=True)
            operands_ok = self.operands_ok
            for key in set(keys):
                plan = plans[key[0]]
                if isinstance(plan, _Plan) and not operands_ok(key[1], plan, scope):
                    bad_keys.add(key)
            keys = zip(opcodes, rests, strict=True)
        else:
            # One verdict per (opcode, shape), shared by the functions of the module with the
            # same typing. Shapes: digits to `0`, then runs of zeros shortened (`%r12` and `%r7`
            # alike), a split between the digit-exact text and `shape_typing`'s `\d+` to `0`.
            shapes = joined.translate(_ZERO_DIGITS).replace("00", "0").replace("00", "0").split(";")
            memo = self.verdicts.get(typing)
            if memo is None:
                memo = self.verdicts[typing] = {}
            types = dict(typing).get
            for key in set(zip(opcodes, shapes, strict=True)).difference(memo):
                plan = plans[key[0]]
                if type(plan) is not _Plan:
                    memo[key] = True
                    continue
                reading = plan.shape_memo.get(key[1], _UNREAD)
                if reading is _UNREAD:
                    reading = _shape_reading(key[1], plan)
                ok = reading is not None
                for name, wrong in reading or ():
                    if types(name) in wrong:
                        ok = False
                        break
                memo[key] = ok
            bad_keys = {key for key, ok in memo.items() if not ok}
            keys = zip(opcodes, shapes, strict=True)
        if not (bad_opcodes or bad_guards or unknown or bad_keys):
            return scope, []
        # The flagged rows, in order (each test over all rows at C speed; non-instruction rows
        # have an empty opcode, guard and operand text, which no test flags).
        rows_at = range(len(opcodes))
        flagged: set[int] = set()
        for bad, column in ((bad_opcodes, opcodes), (bad_guards, guards), (bad_keys, keys)):
            if bad:
                flagged.update(compress(rows_at, map(bad.__contains__, column)))
        for name in unknown:
            flagged.update(compress(rows_at, map(contains, rests, repeat(name))))
        return scope, sorted(flagged)

    def resolve_ranges(self, scope: _Scope) -> None:
        """Resolve the members of each register range in bulk (what `lookup` answers for `%r7`
        given `%r<N>`, when the prefix does not end in a digit); exact registers win, as in
        `lookup`. Only a long function uses enough of them to pay for this."""
        resolved = scope.resolved
        for prefix, (count, reg_type) in scope.ranges.items():
            if count <= _EXPAND_MAX and prefix and not prefix[-1].isdigit():
                resolved.update(dict.fromkeys([prefix + str(i) for i in range(count)], (True, reg_type)))
        for name, reg_type in scope.regs.items():
            resolved[name] = (True, reg_type)

    def check_by_shape(self, instructions: list[Instruction], shapes: list[str], scope: _Scope) -> None:
        """A long function with no undeclared name: judge each distinct opcode, guard and
        (opcode, shape) once, then give the full check exactly the instructions the per-instruction
        loop would have given it, in order (so the diagnostics and their order are the same)."""
        opcodes = list(map(_OPCODE, instructions))
        plans = self.plans
        bad_opcodes: set[str] = set()
        for opcode in set(opcodes).difference(plans):
            plans[opcode] = self.plan(opcode)
        for opcode in set(opcodes):
            if plans[opcode] is _SLOW:
                bad_opcodes.add(opcode)
        guards = set(map(_GUARD, instructions))
        guards.discard(None)
        bad_guards = {g for g in guards if g is not None and not self.guard_ok(g, scope)}
        keys = list(zip(opcodes, shapes, strict=True))
        bad_keys: set[tuple[str, str]] = set()
        operands_ok = self.operands_ok
        for key, ins in dict(zip(keys, instructions, strict=True)).items():
            plan = plans[key[0]]
            if isinstance(plan, _Plan) and not operands_ok(ins.rest, plan, scope):
                bad_keys.add(key)
        if not (bad_opcodes or bad_guards or bad_keys):
            return
        slow = self.check_instruction
        for ins, key in zip(instructions, keys, strict=True):
            if key[0] in bad_opcodes or ins.guard in bad_guards or key in bad_keys:
                slow(ins, scope)

    def shapes_resolve_alike(self, scope: _Scope) -> bool:
        """Whether two names that differ only in their digit runs always get the same type from
        `lookup`, so that an operand verdict depends on an instruction's digit-free shape only
        (see `shape_typing`)."""
        return self.shape_typing(scope) is not None

    def shape_typing(self, scope: _Scope) -> frozenset[tuple[str, str | None]] | None:
        """The type of each typed name's digit-free shape, when two names that differ only in
        their digit runs always get the same type from `lookup`; None when they may not.

        Shapes of typed names: each register range `%r<N>` (prefix without a trailing digit:
        `%r0`), each exact register. They must not share a shape with a differently typed
        register nor with an untyped name (symbol, label, parameter, special register). Names of
        a range's shape past its count are undeclared: such instructions take the full check
        (see `unknown`) and never reach the memo. Declared names the name pattern cannot see
        disable the memo. Operand verdicts depend on the opcode, the shape and this mapping only,
        so two functions with the same mapping can share them.
        """
        typed: dict[str, str | None] = {}
        for prefix, (_, reg_type) in scope.ranges.items():
            if not _PLAIN_NAME.fullmatch(prefix) or prefix[-1].isdigit():
                return None
            shape = _DIGITS.sub("0", prefix) + "0"
            if typed.get(shape, reg_type) != reg_type:
                return None
            typed[shape] = reg_type
        for name, reg_type in scope.regs.items():
            if not _PLAIN_NAME.fullmatch(name):
                return None
            shape = _DIGITS.sub("0", name)
            if typed.get(shape, reg_type) != reg_type:
                return None
            typed[shape] = reg_type
        untyped = _untyped_shapes(self.usable_sregs)
        # A name's shape starts with its first character (a digit only if the name's does, and
        # typed shapes never do): only names with a typed shape's first character can collide.
        firsts = {shape[0] for shape in typed}
        for name in (*scope.symbols, *self.module_symbols):
            if name[:1] in firsts and _DIGITS.sub("0", name) in typed:
                return None
        if any(shape in untyped for shape in typed):
            return None
        return frozenset(typed.items())

    def plan(self, opcode: str) -> _Plan | object:
        """What the fast path checks for this opcode: `_SLOW` when the opcode alone has issues (the
        full check reports them), `_NO_OPERAND_CHECK` when only names and the guard can be wrong."""
        return _plan(opcode, self.target, self.version) if opcode else _SLOW

    def guard_ok(self, guard: str, scope: _Scope) -> bool:
        """Whether `check_guard` would stay silent (a declared `.pred` or untyped name)."""
        name = guard.lstrip("!")
        found, reg_type = scope.resolved.get(name) or self.lookup(name, scope)
        return found and (reg_type is None or reg_type == ".pred")

    def operands_ok(self, rest: str, plan: _Plan, scope: _Scope) -> bool:
        """Whether `check_operands` would stay silent: count, brackets, vector sizes and register
        types, on the operand texts alone (positions are only needed for a diagnostic)."""
        reading = plan.memo.get(rest, _UNREAD)
        if reading is _UNREAD:
            memo = plan.memo
            if len(memo) >= _READINGS_MAX:
                memo.clear()
            reading = memo[rest] = _operand_reading(rest, plan)
        if reading is None:
            return False
        if reading:
            resolved = scope.resolved
            for name, wrong in reading:
                found, reg_type = resolved.get(name) or self.lookup(name, scope)
                if found and reg_type in wrong:
                    return False
        return True

    def check_instruction(self, ins: Instruction, scope: _Scope) -> None:
        if not ins.opcode:
            self.add(
                ins.pos,
                Codes.SYNTAX,
                "cannot parse this statement",
                "write `[@p] opcode.modifiers operands;`",
            )
            return
        result = self.analyses.get(ins.opcode)
        if result is None:
            result = self.analyses[ins.opcode] = _analyze(ins.opcode, self.target, self.version)
        for issue in result.issues:
            self.add(ins.opcode_pos, issue.code, issue.message, issue.hint, issue.severity)
        if ins.guard is not None:
            self.check_guard(ins, scope)
        resolved = scope.resolved
        for name in _IDENT.findall(ins.rest):
            hit = resolved.get(name)
            if hit is None:
                hit = self.lookup(name, scope)
            if not hit[0]:
                operand = next((o for o in ins.operands if name in o.text), ins.operands[0])
                self.unknown_name(name, operand, scope)
        form = result.form
        if form is None or not result.known or form.operands is None:
            return
        self.check_operands(ins, form, result, scope)

    def check_guard(self, ins: Instruction, scope: _Scope) -> None:
        name = ins.guard.lstrip("!") if ins.guard else ""
        found, reg_type = self.lookup(name, scope)
        if not found:
            self.add(
                ins.guard_pos,
                Codes.UNDECLARED_REGISTER,
                f"undeclared predicate `{name}`",
                "declare it, e.g. `.reg .pred %p<4>;`",
            )
        elif reg_type is not None and reg_type != ".pred":
            self.add(
                ins.guard_pos,
                Codes.BAD_OPERAND,
                f"guard `{name}` is a {reg_type} register, not a predicate",
                "guards take a .pred register: `@%p1` (set it with setp)",
            )

    def lookup(self, name: str, scope: _Scope) -> tuple[bool, str | None]:
        """(declared?, type) of a register or symbol name (memoized per function)."""
        cached = scope.resolved.get(name)
        if cached is not None:
            return cached
        result: tuple[bool, str | None] = (False, None)
        if name in scope.regs:
            result = (True, scope.regs[name])
        else:
            # `%r12` -> (`%r`, 12): what `_REG_INDEX` splits, without a regex on ASCII names.
            if name.isascii():
                prefix = name.rstrip("0123456789")
                index = name[len(prefix) :]
            else:
                match = _REG_INDEX.match(name)
                prefix, index = match.group(1, 2) if match is not None else (name, "")
            entry = scope.ranges.get(prefix) if index else None
            if entry is not None and int(index) < entry[0]:
                result = (True, entry[1])
            elif name in scope.symbols or name in self.module_symbols or name in self.usable_sregs:
                result = (True, None)
        scope.resolved[name] = result
        return result

    def unknown_name(self, name: str, operand: Operand, scope: _Scope) -> None:
        text = operand.text
        sreg = self.tables.special_registers.get(name)
        pos = operand.pos + max(text.find(name), 0)
        if sreg is not None:
            if not sreg.req.empty:
                for issue in _requirement_issues(f"`{name}`", sreg.req, self.target, self.version):
                    self.add(pos, issue.code, issue.message, issue.hint)
            return
        if name.startswith("%"):
            hint = self.register_hint(name, scope)
            self.add(pos, Codes.UNDECLARED_REGISTER, f"undeclared register `{name}`", hint)
        else:
            known = list(scope.symbols | self.module_symbols)
            guess = _close(name, known, 1)
            hint = f"did you mean `{guess[0]}`?" if guess else "declare it (a .param, a variable or a label)"
            self.add(pos, Codes.UNDECLARED_SYMBOL, f"unknown symbol `{name}`", hint)

    def register_hint(self, name: str, scope: _Scope) -> str:
        match = _REG_INDEX.match(name)
        if match is not None and match.group(1) in scope.ranges:
            count = scope.ranges[match.group(1)][0]
            prefix = match.group(1)
            return (
                f"`.reg ... {prefix}<{count}>` declares {prefix}0..{prefix}{count - 1}; "
                f"raise the count to {int(match.group(2)) + 1} or more"
            )
        if name in self.tables.special_registers or name.split(".", 1)[0] in self.tables.special_registers:
            return "special register"
        guess = _close(
            name, list(scope.regs) + [p + "0" for p in scope.ranges] + list(self.tables.special_registers), 1
        )
        return (f"did you mean `{guess[0]}`? " if guess else "") + "declare it, e.g. `.reg .b32 %r<8>;`"

    def check_operands(self, ins: Instruction, form: Form, result: _OpcodeResult, scope: _Scope) -> None:
        assert form.operands is not None
        low, high = form.min_operands, form.max_operands
        count = len(ins.operands)
        if not low <= count <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            shape = ", ".join(o.render() for o in form.operands)
            self.add(
                ins.opcode_pos,
                Codes.OPERAND_COUNT,
                f"`{form.name}` takes {wanted} operand{'s' if high != 1 else ''}; got {count}",
                f"operands: {shape}" if shape else "it takes no operands",
            )
            return
        vec = result.value("vec") if result.chosen else None
        for spec, operand in zip(form.operands, ins.operands, strict=False):
            text = operand.text
            is_address = text[0] == "["
            if spec.address == is_address and not (spec.vector and vec is not None):
                continue
            if spec.address and not is_address:
                self.add(
                    operand.pos,
                    Codes.BAD_OPERAND,
                    f"operand `{spec.name}` of `{form.name}` must be an address in brackets, got `{text}`",
                    f"write `[{text}]`",
                )
            elif not spec.address and is_address:
                self.add(
                    operand.pos,
                    Codes.BAD_OPERAND,
                    f"operand `{spec.name}` of `{form.name}` is a value, not an address: `{text}`",
                    "load the value with `ld` first, or remove the brackets",
                )
            elif spec.vector and vec is not None:
                size = int(vec[2:])
                elements = text[1:-1].split(",") if text.startswith("{") and text.endswith("}") else None
                if elements is None or len(elements) != size:
                    got = f"{len(elements)} registers" if elements is not None else f"`{text}`"
                    self.add(
                        operand.pos,
                        Codes.BAD_OPERAND,
                        f"`{vec}` needs a vector of {size} registers `{{...}}`; got {got}",
                        "e.g. {" + ", ".join(f"%f{i}" for i in range(size)) + "}",
                    )
        for typed in form.typed:
            if typed.position >= count:
                continue
            expected: str | None = typed.literal or (result.value(typed.slot) if typed.slot else None)
            if expected is None or expected not in _TYPE_INFO:
                continue
            operand = ins.operands[typed.position]
            for piece in operand.text.split("|"):
                name = piece.strip().lstrip("!-")
                if not name.startswith("%") and not name[:1].isalpha():
                    continue
                found, reg_type = self.lookup(name, scope)
                if not found or reg_type is None or reg_type not in _TYPE_INFO:
                    continue
                if not _compatible(expected, reg_type, typed.wider_ok):
                    self.add(
                        operand.pos,
                        Codes.BAD_OPERAND,
                        f"`{name}` is a {reg_type} register; `{ins.opcode}` needs {expected} here",
                        _type_hint(expected),
                    )


def _compatible(expected: str, actual: str, wider_ok: bool) -> bool:
    ek, es = _TYPE_INFO[expected]
    ak, asz = _TYPE_INFO[actual]
    if ek == "p" or ak == "p":
        return ek == ak
    if wider_ok:
        if asz < es:
            return False
        return not (ak == "f" and ek == "f" and asz != es)
    if asz != es:
        return False
    if ek == "b" or ak == "b":
        return True
    if ek == "f" or ak == "f":
        return ek == ak
    return True


def _type_hint(expected: str) -> str:
    kind, size = _TYPE_INFO[expected]
    if kind == "p":
        return "use a .pred register"
    if kind == "f":
        return f"use a {expected} or .b{size} register (convert with cvt or mov.b{size} first)"
    return f"use a {size}-bit integer or .b{size} register (convert with cvt first)"


# The register types `check_operands` rejects where a type is wanted: a property of the fixed type
# table above, computed once when the module loads (like the table itself).
_INCOMPATIBLE: dict[tuple[str, bool], frozenset[str]] = {
    (expected, wider_ok): frozenset(t for t in _TYPE_INFO if not _compatible(expected, t, wider_ok))
    for expected in _TYPE_INFO
    for wider_ok in (False, True)
}
