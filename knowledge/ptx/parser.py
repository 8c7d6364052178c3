"""A small, forgiving PTX parser: statements with their positions, grouped into functions.

It does not build an AST of expressions; it splits a module into the pieces the checker needs
(header directives, declarations, labels, instructions with guard, opcode tokens and operands)
in one linear scan, so that checking hundreds of modules stays cheap. Comments are blanked out
first (keeping line and column positions). Unknown constructs are kept as directives or
instructions and left to the checker to judge, never dropped silently.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

__all__ = ["Directive", "Function", "Instruction", "Label", "Module", "Operand", "Statement", "parse_module"]

_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.S)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_NOT_NEWLINE = re.compile(r"[^\n]")
_SKIP = re.compile(r"[ \t\r\n\f\v]*")
_LABEL = re.compile(r"([A-Za-z_$][\w$]*)\s*:(?!:)")
_DIRECTIVE = re.compile(r"\.[A-Za-z_][\w:]*")
_INSTRUCTION = re.compile(r"(?:@\s*(!?)\s*([%$\w]+)\s*)?([A-Za-z_][\w]*(?:\.[\w:]+)*)")
# Directives that end at the end of their line (they take no semicolon).
_LINE_DIRECTIVES = frozenset(
    {
        ".version",
        ".target",
        ".address_size",
        ".file",
        ".loc",
        ".maxntid",
        ".reqntid",
        ".minnctapersm",
        ".maxnctapersm",
        ".maxnreg",
        ".reqnctapercluster",
        ".explicitcluster",
        ".maxclusterrank",
        ".noreturn",
    }
)


@dataclass(slots=True)
class Operand:
    text: str
    pos: int


class Instruction:
    """One instruction statement; its `operands` are built on first use (the checker's statement
    cache answers most statements without looking at them)."""

    __slots__ = ("_operands", "_parts", "guard", "guard_pos", "opcode", "opcode_pos", "pos", "rest", "text")

    def __init__(
        self,
        pos: int,
        opcode: str,
        opcode_pos: int,
        guard: str | None,
        guard_pos: int,
        parts: tuple[tuple[str, int], ...],
        rest: str = "",
        text: str = "",
    ) -> None:
        self.pos = pos
        self.opcode = opcode
        self.opcode_pos = opcode_pos
        self.guard = guard
        self.guard_pos = guard_pos
        self._parts = parts
        self._operands: list[Operand] | None = None
        self.rest = rest  # the operand text as written
        self.text = text  # the whole statement as written (the checker's cache key)

    @property
    def operands(self) -> list[Operand]:
        if self._operands is None:
            base = self.pos
            self._operands = [Operand(t, base + o) for t, o in self._parts]
        return self._operands


@dataclass(slots=True)
class Directive:
    pos: int
    name: str
    text: str  # the statement after the directive name, without the terminator


@dataclass(slots=True)
class Label:
    pos: int
    name: str


Statement = Instruction | Directive | Label


@dataclass(slots=True)
class Function:
    header: Directive
    name: str
    body: list[Statement] = field(default_factory=list)
    params: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Module:
    """The parsed module; `line_col` turns a character offset into a 1-based (line, column)."""

    text: str
    line_starts: list[int]
    header: list[Directive] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    stray: list[Statement] = field(default_factory=list)  # instructions or labels outside functions
    unbalanced: int | None = None  # position of an unmatched brace

    def line_col(self, pos: int) -> tuple[int, int]:
        index = bisect_right(self.line_starts, pos) - 1
        return index + 1, pos - self.line_starts[index] + 1


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    if text.startswith('"'):
        return text
    return _NOT_NEWLINE.sub(" ", text)


_OPERAND = re.compile(r"(?:\[[^\]]*\]|\{[^}]*\}|\([^)]*\)|[^,\[{(])+")


def _split_operands(text: str, base: int) -> list[Operand]:
    """Operands split on top-level commas (not inside [], {} or ())."""
    if "[" not in text and "{" not in text and "(" not in text:
        pieces = text.split(",")
    else:
        pieces = [m.group() for m in _OPERAND.finditer(text)]
    found: list[Operand] = []
    offset = 0
    for piece in pieces:
        stripped = piece.strip()
        if stripped:
            found.append(Operand(stripped, base + text.find(stripped, offset)))
        offset += len(piece)
    return found


_PARAM_NAME = re.compile(r"([%$\w]+)\s*(?:\[[^\]]*\])?\s*$")


def _params(header: str) -> list[str]:
    """Names of the `.param` declarations in a function header (return and argument lists)."""
    names: list[str] = []
    for group in re.findall(r"\(([^()]*)\)", header):
        for piece in group.split(","):
            match = _PARAM_NAME.search(piece.strip())
            if match and ".param" in piece:
                names.append(match.group(1))
    return names


_FUNC_NAME = re.compile(r"\.(?:entry|func)\s*(?:\([^)]*\)\s*)?([A-Za-z_$%][\w$]*)")


def parse_module(source: str) -> Module:
    """Split `source` into header directives and functions (one linear scan)."""
    if "/" not in source:
        text = source
    elif '"' not in source and "/*" not in source:
        # Line comments only (nvcc's output): dropping them keeps every line and every column
        # before them, which is all a diagnostic can point at.
        text = _LINE_COMMENT.sub("", source)
    else:
        text = _COMMENT.sub(_blank, source)
    line_starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        line_starts.append(pos + 1)
        pos = find("\n", pos + 1)
    module = Module(text, line_starts)
    n = len(text)
    pos = 0
    depth = 0
    function: Function | None = None
    pending: Function | None = None
    skip = _SKIP.match
    while True:
        pos = skip(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            break
        c = text[pos]
        if c == "{":
            depth += 1
            if pending is not None and depth == 1:
                function, pending = pending, None
            pos += 1
            continue
        if c == "}":
            depth -= 1
            if depth < 0:
                module.unbalanced = pos
                depth = 0
            elif depth == 0:
                function = None
            pos += 1
            continue
        if c == ";":
            pos += 1
            continue
        if c == ".":
            match = _DIRECTIVE.match(text, pos)
            name = match.group() if match else "."
            start = match.end() if match else pos + 1
            if name in _LINE_DIRECTIVES:
                end_line = find("\n", pos)
                end_line = n if end_line == -1 else end_line
                semi = find(";", pos, end_line)
                end = end_line if semi == -1 else semi
                statement = Directive(pos, name, text[start:end].strip())
                pos = end + 1
            elif name == ".section":
                brace = find("{", pos)
                close = find("}", brace) if brace != -1 else -1
                pos = n if close == -1 else close + 1
                continue
            else:
                semi = find(";", pos)
                semi = n if semi == -1 else semi
                brace = find("{", pos, semi)
                body = text[start : brace if brace != -1 else semi]
                if brace != -1 and (".entry" in body or ".func" in body or name in (".entry", ".func")):
                    statement = Directive(pos, name, body.strip())
                    func_match = _FUNC_NAME.search(text, pos, brace)
                    pending = Function(statement, func_match.group(1) if func_match else "?")
                    pending.params = _params(body)
                    module.functions.append(pending)
                    pos = brace
                    continue
                statement = Directive(pos, name, body.strip())
                pos = semi + 1
            if function is not None:
                function.body.append(statement)
            else:
                module.header.append(statement)
            continue
        label = _LABEL.match(text, pos)
        if label is not None:
            statement_label = Label(pos, label.group(1))
            (function.body if function is not None else module.stray).append(statement_label)
            pos = label.end()
            continue
        semi = find(";", pos)
        semi = n if semi == -1 else semi
        brace = find("}", pos, semi)
        if brace != -1 and find("{", pos, brace) == -1:
            semi = brace  # a missing semicolon before a closing brace: stop at the brace
        instruction = _instruction(text, pos, semi)
        (function.body if function is not None else module.stray).append(instruction)
        pos = semi + 1 if semi < n and text[semi] == ";" else semi
    return module


_ParsedStatement = tuple[str, int, str | None, int, tuple[tuple[str, int], ...], str]
_STATEMENTS: dict[str, _ParsedStatement] = {}
_STATEMENTS_MAX = 100_000


def _instruction(text: str, pos: int, end: int) -> Instruction:
    """One instruction statement; identical statement texts are split once (offsets are relative)."""
    statement = text[pos:end]
    parsed = _STATEMENTS.get(statement)
    if parsed is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
        parsed = _STATEMENTS[statement] = _split_statement(statement)
    opcode, opcode_off, guard, guard_off, operands, rest = parsed
    return Instruction(
        pos,
        opcode,
        pos + opcode_off,
        guard,
        pos + guard_off,
        operands,
        rest,
        statement,
    )


def _split_statement(statement: str) -> _ParsedStatement:
    match = _INSTRUCTION.match(statement)
    if match is None:
        return (statement.split(None, 1)[0] if statement.strip() else "", 0, None, 0, (), "")
    guard = None
    guard_off = 0
    if match.group(2) is not None:
        guard = ("!" if match.group(1) else "") + match.group(2)
        guard_off = match.start(2)
    rest_start = match.end(3)
    rest = statement[rest_start:]
    operands = _split_operands(rest, rest_start) if rest.strip() else []
    return (match.group(3), match.start(3), guard, guard_off, tuple((o.text, o.pos) for o in operands), rest)
