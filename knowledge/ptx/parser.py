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
from dataclasses import dataclass
from itertools import accumulate

__all__ = [
    "Columns",
    "Directive",
    "Function",
    "Instruction",
    "Label",
    "Module",
    "Operand",
    "Statement",
    "parse_module",
]

_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*.*?\*/', re.S)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_QUOTE_BEFORE_COMMENT = re.compile(r'"[^\n]*//')
_NOT_NEWLINE = re.compile(r"[^\n]")
_SKIP = re.compile(r"[ \t\r\n\f\v]*")
_LABEL = re.compile(r"([A-Za-z_$][\w$]*)\s*:(?!:)")
_DIRECTIVE = re.compile(r"\.[A-Za-z_][\w:]*")
_INSTRUCTION = re.compile(r"(?:@\s*(!?)\s*([%$\w]+)\s*)?([A-Za-z_][\w]*(?:\.[\w:]+)*)")
# The common statements in one match (one regex call each), after the whitespace before them:
# - groups 1-2, a `;`-terminated directive with no `{` before its `;` (declarations, mostly): the
#   span and text the general path gives it, unless it is a line directive or `.section` (the
#   caller checks);
# - groups 3-7, an instruction: guard, opcode, operand text, up to the first `;`, with no brace in
#   between except balanced `{...}` vector operands. That is exactly the span the general path
#   takes (it stops at a `}` only when no `{` precedes it); anything else (a missing `;`, a stray
#   brace) does not match and takes the general path. The lookahead is the negation of `_LABEL`,
#   which the general path tries first.
_FAST_STATEMENT = re.compile(
    r"[ \t\r\n\f\v]*(?:(\.[A-Za-z_][\w:]*+)([^;{]*+);|(?![A-Za-z_$][\w$]*+\s*:(?!:))"
    r"(@\s*(!?)\s*([%$\w]++)\s*)?([A-Za-z_]\w*+(?:\.[\w:]++)*+)((?:[^;{}]++|\{[^;{}]*+\})*+);)"
)

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


def _body_item(guard_text: str, bang: str) -> str:
    """One statement of a function body (see `_bulk_rows`): a `;`-terminated directive other than
    a line directive or `.section` (the loop's fast directive: name, text), an instruction (the
    loop's fast instruction: [guard text, `!`,] guard name, opcode, operand text), a label
    (`_LABEL`), a brace or a stray `;`, or anything else (junk: the body is not plain). The two
    groups before the guard name are captured or not as given, nothing else differs."""
    return (
        r"[ \t\r\n\f\v]*(?:(\.(?!(?:"
        + "|".join(sorted((d[1:] for d in (*_LINE_DIRECTIVES, ".section")), key=len, reverse=True))
        + r")(?![\w:]))[A-Za-z_][\w:]*+)([^;{]*+);|(?![A-Za-z_$][\w$]*+\s*:(?!:))"
        + guard_text
        + r"@\s*"
        + bang
        + r"!?)\s*([%$\w]++)\s*)?([A-Za-z_]\w*+(?:\.[\w:]++)*+)((?:[^;{}]++|\{[^;{}]*+\})*+);"
        r"|([A-Za-z_$][\w$]*)\s*:(?!:)|([{};])|(\S))"
    )


# With positions (`finditer`): groups 3-7 as in `_FAST_STATEMENT` (see `_matched_instruction`).
_BODY_ITEM = re.compile(_body_item("(", "("))
# For `findall` rows, without the two groups only positions need: directive name and text, guard
# name, opcode, operand text, label, brace, junk.
_BODY_ROW = re.compile(_body_item("(?:", "(?:"))
_BRACE, _JUNK = 6, 7
# A line directive (`.version 8.0`, `.target sm_90`) after the whitespace before it: its name and
# its text up to the end of the line or a `;`, as the statement loop's general path reads it.
_LINE_DIRECTIVE = re.compile(
    r"[ \t\r\n\f\v]*(\.(?:"
    + "|".join(sorted((d[1:] for d in _LINE_DIRECTIVES), key=len, reverse=True))
    + r")(?![\w:]))([^\n;]*+)"
)
_BULK_MIN_CHARS = 640  # about 20 lines of nvcc output
# A body up to its closing brace, with braces nested at most two deep inside (deeper: no bulk).
_BODY_END = re.compile(r"(?:[^{}]++|\{(?:[^{}]++|\{[^{}]*+\})*+\})*+\}")


@dataclass(slots=True)
class Operand:
    text: str
    pos: int


class Instruction:
    """One instruction statement. Its `operands` (with positions) are split on first use only: the
    checker's fast path works on `rest` and needs positions only to place a diagnostic."""

    __slots__ = ("_operands", "guard", "guard_pos", "opcode", "opcode_pos", "pos", "rest", "rest_pos", "text")

    def __init__(
        self,
        pos: int,
        opcode: str,
        opcode_pos: int,
        guard: str | None,
        guard_pos: int,
        rest: str,
        rest_pos: int,
        text: str,
    ) -> None:
        self.pos = pos
        self.opcode = opcode
        self.opcode_pos = opcode_pos
        self.guard = guard
        self.guard_pos = guard_pos
        self.rest = rest  # the operand text as written
        self.rest_pos = rest_pos  # where `rest` starts in the module
        self.text = text  # the whole statement as written
        self._operands: list[Operand] | None = None

    @property
    def operands(self) -> list[Operand]:
        if self._operands is None:
            rest = self.rest
            self._operands = _split_operands(rest, self.rest_pos) if rest.strip() else []
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


# A plain body's statements in bulk, column by column (row i of each is statement i; a column
# holds "" where the statement is of another kind): directive names, directive texts, guard names
# (without `!`), opcodes, operand texts, labels.
Columns = tuple[
    tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]
]


class Function:
    """One `.entry` or `.func` with a body. A body of plain statements only (see `_body_item`) is
    parsed in bulk: `rows` holds its statements as columns (no positions, see `Columns`), and
    `body` (with positions) is built on first use, by the same statement loop as any other body, so
    the checker pays for positions only in a function it has to report on."""

    __slots__ = ("_body", "_module", "header", "name", "params", "rows", "span")

    def __init__(self, header: Directive, name: str) -> None:
        self.header = header
        self.name = name
        self.params: list[str] = []
        self._body: list[Statement] | None = []
        self._module: Module | None = None
        self.rows: Columns | None = None  # bulk statements, when the body is plain
        self.span: tuple[int, int] = (0, 0)  # the body between its braces, when parsed in bulk

    @property
    def body(self) -> list[Statement]:
        if self._body is None:
            assert self._module is not None
            self._body = []
            _scan(self._module, self.span[0], self.span[1], self, bulk=False)
        return self._body

    def instructions_at(self, indices: list[int]) -> list[Instruction]:
        """The instructions of the bulk rows at `indices` (ascending), with positions, as the
        statement loop builds them, without building the rest of the body: the rows come again
        from the same pattern over the same span, this time with their positions."""
        assert self._module is not None and self.rows is not None
        text = self._module.text
        found: list[Instruction] = []
        wanted = iter(indices)
        target = next(wanted, -1)
        for index, match in enumerate(_BODY_ITEM.finditer(text, self.span[0], self.span[1])):
            if index == target:
                found.append(_matched_instruction(text, match))
                target = next(wanted, -1)
                if target < 0:
                    break
        return found

    def defer(self, module: Module, start: int, end: int, rows: Columns) -> None:
        """Keep a plain body as bulk rows; its statements are parsed when `body` is first read."""
        self._module = module
        self.span = (start, end)
        self.rows = rows
        self._body = None


class Module:
    """The parsed module; `line_col` turns a character offset into a 1-based (line, column).

    The first few `line_col` calls count newlines (a module with a diagnostic or two); the line
    table is built only for more: building it is a visible share of checking a long module."""

    __slots__ = ("_line_starts", "_lookups", "functions", "header", "stray", "text", "unbalanced")

    def __init__(self, text: str) -> None:
        self.text = text
        self.header: list[Directive] = []
        self.functions: list[Function] = []
        self.stray: list[Statement] = []  # instructions or labels outside functions
        self.unbalanced: int | None = None  # position of an unmatched brace
        self._line_starts: list[int] | None = None
        self._lookups = 0

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            # Each line's start: the running sum of the line lengths plus their `\n` (one more
            # entry past the end than the newlines give, which no position reaches).
            lengths = map((1).__add__, map(len, self.text.split("\n")))
            self._line_starts = list(accumulate(lengths, initial=0))
        return self._line_starts

    def line_col(self, pos: int) -> tuple[int, int]:
        text = self.text
        if self._line_starts is None and self._lookups < 8 and 0 <= pos <= len(text):
            # What the table gives: one line per newline before `pos`, the column from the last.
            self._lookups += 1
            return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        starts = self.line_starts
        index = bisect_right(starts, pos) - 1
        return index + 1, pos - starts[index] + 1


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    if text.startswith('"'):
        return text
    return _NOT_NEWLINE.sub(" ", text)


def _blank_line(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


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


# The last name of a declaration (before an optional `[size]`). The lookbehind makes `search` try
# only the starts of name runs, where the leftmost match begins anyway.
_PARAM_NAME = re.compile(r"(?<![%$\w])([%$\w]++)\s*+(?:\[[^\]]*+\])?\s*+$")
_PARAM_LIST = re.compile(r"\(([^()]*+)\)")


def _params(header: str) -> list[str]:
    """Names of the `.param` declarations in a function header (return and argument lists)."""
    names: list[str] = []
    for group in _PARAM_LIST.findall(header):
        for piece in group.split(","):
            match = _PARAM_NAME.search(piece.strip())
            if match and ".param" in piece:
                names.append(match.group(1))
    return names


_FUNC_NAME = re.compile(r"\.(?:entry|func)\s*(?:\([^)]*\)\s*)?([A-Za-z_$%][\w$]*)")


def parse_module(source: str, *, bulk: bool = True) -> Module:
    """Split `source` into header directives and functions (one linear scan). With `bulk`, plain
    function bodies are kept as rows and their statements parsed only when read (see `Function`);
    `bulk=False` parses every body statement by statement (the reference the bulk path must match)."""
    if "/" not in source:
        text = source
    elif '"' not in source and "/*" not in source:
        # Line comments only (nvcc's output): dropping them keeps every line and every column
        # before them, which is all a diagnostic can point at.
        text = _LINE_COMMENT.sub("", source)
    elif "/*" not in source and _QUOTE_BEFORE_COMMENT.search(source) is None:
        # Strings (`.pragma "nounroll";`) but none before a `//` on its line: each line's first
        # `//` starts its comment, as `_COMMENT` finds it; blanked the same way, far faster.
        text = _LINE_COMMENT.sub(_blank_line, source)
    else:
        text = _COMMENT.sub(_blank, source)
    module = Module(text)
    _scan(module, 0, len(text), None, bulk=bulk)
    return module


_NO_ROWS: Columns = ((), (), (), (), (), ())


def _bulk_rows(text: str, start: int) -> tuple[int, Columns] | None:
    """The end (its closing brace) and the rows (as `Columns`) of a function body that starts at
    `start`, when the statement loop would read it as plain statements, labels and balanced
    braces only: no row is junk, and the braces the loop counts never close the body early.

    Why the rows are the loop's statements: each alternative of `_body_item` is the loop's own
    pattern for that statement kind (the two `_FAST_STATEMENT` branches minus line directives and
    `.section`, which the loop handles apart, `_LABEL`, a brace, a `;`), tried in an order in which
    at most one can match, and each ends at the same character with or without the end bound."""
    close = text.find("}", start)
    if close == -1 or text.find("{", start, close) != -1:
        # Braces inside (vector operands, nested blocks): the pattern finds the matching one.
        end = _BODY_END.match(text, start)
        if end is None:
            return None
        close = end.end() - 1
    if close - start < _BULK_MIN_CHARS:
        return None  # a short body: parsing it statement by statement costs no more
    rows = _BODY_ROW.findall(text, start, close)
    if not rows:
        return close, _NO_ROWS
    columns = tuple(zip(*rows, strict=True))
    if any(columns[_JUNK]):
        return None
    braces = "".join(columns[_BRACE]).replace(";", "")
    if braces:
        depth = 0
        for c in braces:
            depth += 1 if c == "{" else -1
            if depth < 0:
                return None
        if depth:
            return None
    return close, columns[:6]  # type: ignore[return-value]


def _scan(module: Module, pos: int, n: int, function: Function | None, *, bulk: bool) -> None:
    """The statement loop over `module.text[pos:n]`, inside `function` (a body being built) or at
    the top level (`function` None)."""
    text = module.text
    find = text.find
    depth = 0 if function is None else 1
    pending: Function | None = None
    skip = _SKIP.match
    fast_statement = _FAST_STATEMENT.match
    line_directive = _LINE_DIRECTIVE.match
    append_stray = module.stray.append
    while True:
        if function is None:
            # Module level: line directives first (the fast pattern never takes them, and
            # failing on one costs a scan to the next `;` or `{`).
            line = line_directive(text, pos)
            if line is not None:
                module.header.append(Directive(line.start(1), line[1], line[2].strip()))
                pos = line.end() + 1
                continue
            fast = fast_statement(text, pos)
            if fast is not None:
                name, body, _, _, _, opcode, _ = fast.groups()
                semi = fast.end() - 1
                if opcode is not None:
                    append_stray(_matched_instruction(text, fast))
                    pos = semi + 1
                    continue
                if name not in _LINE_DIRECTIVES and name != ".section":
                    module.header.append(Directive(semi - len(body) - len(name), name, body.strip()))
                    pos = semi + 1
                    continue
        else:
            # In a body: the common statements in a tight loop, until one the fast pattern does
            # not take (or a line directive). The body is read only once a statement matched: a
            # body kept in bulk must not be built here.
            fast = fast_statement(text, pos)
            if fast is not None:
                append = function.body.append
                while fast is not None:
                    name, body, _, _, _, opcode, _ = fast.groups()
                    if opcode is not None:
                        append(_matched_instruction(text, fast))
                    elif name in _LINE_DIRECTIVES or name == ".section":
                        break
                    else:
                        semi = fast.end() - 1
                        append(Directive(semi - len(body) - len(name), name, body.strip()))
                    pos = fast.end()
                    fast = fast_statement(text, pos)
        pos = skip(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            break
        c = text[pos]
        if c == "{":
            depth += 1
            pos += 1
            if pending is not None and depth == 1:
                function, pending = pending, None
                found = _bulk_rows(text, pos) if bulk else None
                if found is not None:
                    function.defer(module, pos, found[0], found[1])
                    pos = found[0]  # its closing brace, read below
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


def _matched_instruction(text: str, match: re.Match[str]) -> Instruction:
    """The instruction of a `_FAST_STATEMENT` or `_BODY_ITEM` match (groups 3-7 of both: guard
    text, `!`, guard name, opcode, operand text; the match ends at the `;`)."""
    guard_text, bang, guard_name, opcode, rest = match.group(3, 4, 5, 6, 7)
    semi = match.end() - 1
    rest_pos = semi - len(rest)
    opcode_pos = rest_pos - len(opcode)
    start = opcode_pos if guard_text is None else opcode_pos - len(guard_text)
    return Instruction(
        start,
        opcode,
        opcode_pos,
        None if guard_name is None else bang + guard_name,
        start if guard_name is None else match.start(5),
        rest,
        rest_pos,
        text[start:semi],
    )


def _instruction(text: str, pos: int, end: int) -> Instruction:
    """An instruction statement the fast pattern did not take (unusual shapes, a missing `;`)."""
    statement = text[pos:end]
    match = _INSTRUCTION.match(statement)
    if match is None:
        opcode = statement.split(None, 1)[0] if statement.strip() else ""
        return Instruction(pos, opcode, pos, None, pos, "", end, statement)
    guard = None
    guard_off = 0
    if match.group(2) is not None:
        guard = ("!" if match.group(1) else "") + match.group(2)
        guard_off = match.start(2)
    rest_start = match.end(3)
    return Instruction(
        pos,
        match.group(3),
        pos + match.start(3),
        guard,
        pos + guard_off,
        statement[rest_start:],
        pos + rest_start,
        statement,
    )
