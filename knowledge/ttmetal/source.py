"""A small C++ scanner for TT-Metal projects: enough structure for the checks, no compiler needed.

TT-Metal kernels and host programs are written in a narrow, regular style (calls with literal or
`constexpr` arguments, `for` loops over tiles), so a scanner that knows comments, string literals,
balanced brackets and `for` loops recovers what the checks need: every call with its arguments,
line and enclosing loops, every `name = value` declaration, every `#include`. Anything it cannot
resolve stays unresolved (None), and the checks stay silent about it rather than guess.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property

__all__ = [
    "Call",
    "Loop",
    "SourceFile",
    "cb_index_value",
    "evaluate_int",
    "normalise",
    "split_top_level",
]

_IDENT_CALL = re.compile(r"\b([A-Za-z_][\w:]*)\s*(<[^;(){}]*?>)?\s*\(")
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"]+)[>"]', re.MULTILINE)
_DECL = re.compile(
    r"(?:^|[;{}()])\s*(?:static\s+)?(?:constexpr\s+|const\s+)*"
    r"(?:auto|u?int(?:8|16|32|64)?_t|uint|int|unsigned|bool|size_t|float|(?:tt::)?CBIndex|(?:tt::)?DataFormat)"
    r"\s+(?P<body>[A-Za-z_]\w*\s*(?:=|\{)[^;]*);",
    re.MULTILINE,
)
_KEYWORDS = frozenset(
    {"if", "for", "while", "switch", "return", "sizeof", "static_assert", "catch", "decltype"}
)
_CB_ENUM = re.compile(r"^(?:::)?(?:tt::)?CBIndex::c_(\d+)$")
_CB_LEGACY = re.compile(r"^(?:::)?(?:tt::)?CB::(c_in|dataflow|c_out|c_intermed)(\d)$")
_CB_LEGACY_BASE = {"c_in": 0, "dataflow": 8, "c_out": 16, "c_intermed": 24}
_CAST = re.compile(r"static_cast<[^<>]*>|\((?:u?int(?:8|16|32|64)?_t|uint|unsigned|int)\)")
_INT = re.compile(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]*\b")


def normalise(text: str) -> str:
    """An expression's text without whitespace (how expressions from different files are compared)."""
    return re.sub(r"\s+", "", text)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at `separator` outside (), [], {} and string literals."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    tail = "".join(current).strip()
    if tail or parts:
        parts.append(tail)
    return parts


def cb_index_value(text: str) -> int | None:
    """`tt::CBIndex::c_16` -> 16, `tt::CB::c_out0` -> 16 (the legacy enum), else None."""
    token = normalise(text)
    if match := _CB_ENUM.match(token):
        return int(match.group(1))
    if match := _CB_LEGACY.match(token):
        return _CB_LEGACY_BASE[match.group(1)] + int(match.group(2))
    return None


def evaluate_int(text: str, env: dict[str, str], depth: int = 0) -> int | None:
    """The integer value of a constant expression, following `env` (name -> expression text)."""
    if depth > 12:
        return None
    expr = normalise(text)
    if not expr:
        return None
    cb = cb_index_value(expr)
    if cb is not None:
        return cb
    expr = _CAST.sub("", expr)
    while expr.startswith("(") and expr.endswith(")") and _balanced(expr[1:-1]):
        expr = expr[1:-1]
    if re.fullmatch(r"[A-Za-z_][\w:]*", expr):
        if expr in env:
            return evaluate_int(env[expr], env, depth + 1)
        short = expr.rsplit("::", 1)[-1]
        return evaluate_int(env[short], env, depth + 1) if short in env and short != expr else None
    cb_free = re.sub(r"(?:::)?(?:tt::)?CBIndex::c_(\d+)", r"\1", expr)
    names = set(re.findall(r"[A-Za-z_][\w]*", _INT.sub("0", cb_free)))
    values: dict[str, int] = {}
    for name in names:
        value = evaluate_int(name, env, depth + 1)
        if value is None:
            return None
        values[name] = value
    python = _INT.sub(lambda m: str(int(m.group(1), 0)), cb_free).replace("/", "//")
    try:
        tree = ast.parse(python, mode="eval")
    except SyntaxError:
        return None
    return _eval_node(tree.body, values)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _eval_node(node: ast.expr, values: dict[str, int]) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.BinOp):
        left, right = _eval_node(node.left, values), _eval_node(node.right, values)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.FloorDiv) and right:
            return left // right
        if isinstance(node.op, ast.LShift):
            return left << right
    return None


@dataclass(frozen=True)
class Loop:
    """A `for` loop: its header and the span of its body (offsets into the stripped text)."""

    header: str
    start: int
    end: int
    line: int

    @cached_property
    def trip(self) -> str | None:
        """The trip count as an expression text (`n_tiles`, `end-start`), when the header is simple."""
        parts = split_top_level(self.header, ";")
        if len(parts) != 3:
            return None
        init, cond, _ = parts
        var = re.search(r"([A-Za-z_]\w*)\s*=\s*(.+)$", init)
        bound = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(<=?)\s*(.+?)\s*", cond)
        if var is None or bound is None or var.group(1) != bound.group(1):
            return None
        first, limit = normalise(var.group(2)), normalise(bound.group(3))
        if bound.group(2) == "<=":
            limit = f"{limit}+1"
        if first in ("0", "0u", "0U"):
            return limit
        if limit.startswith(first + "+"):
            return limit[len(first) + 1 :]
        return f"{limit}-{first}"


@dataclass(frozen=True)
class Call:
    """A call `name<template>(args)` with its position; `loops` are the enclosing loops, outermost first."""

    name: str
    template: str | None
    args: tuple[str, ...]
    line: int
    start: int
    end: int
    loops: tuple[Loop, ...] = ()

    @property
    def base(self) -> str:
        """The name without namespace qualifiers (`tt::tt_metal::CreateKernel` -> `CreateKernel`)."""
        return self.name.rsplit("::", 1)[-1]


@dataclass
class SourceFile:
    """One file of a project: its text, with comments blanked out (lines and columns kept)."""

    path: str
    text: str
    code: str = field(init=False)

    def __post_init__(self) -> None:
        self.code = _strip_comments(self.text)

    def line_of(self, offset: int) -> int:
        return self.code.count("\n", 0, offset) + 1

    @cached_property
    def includes(self) -> list[tuple[str, int]]:
        return [(m.group(1), self.line_of(m.start())) for m in _INCLUDE.finditer(self.code)]

    @cached_property
    def loops(self) -> list[Loop]:
        found: list[Loop] = []
        for match in re.finditer(r"\bfor\s*\(", self.code):
            close = _matching(self.code, match.end() - 1)
            if close is None:
                continue
            header = self.code[match.end() : close]
            rest = close + 1
            while rest < len(self.code) and self.code[rest].isspace():
                rest += 1
            if rest < len(self.code) and self.code[rest] == "{":
                end = _matching(self.code, rest)
                if end is None:
                    continue
            else:
                end = self.code.find(";", rest)
                if end < 0:
                    continue
            found.append(Loop(header=header, start=rest, end=end, line=self.line_of(match.start())))
        return found

    @cached_property
    def calls(self) -> list[Call]:
        found: list[Call] = []
        for match in _IDENT_CALL.finditer(self.code):
            name = match.group(1)
            if name in _KEYWORDS:
                continue
            open_at = match.end() - 1
            close = _matching(self.code, open_at)
            if close is None:
                continue
            inner = self.code[open_at + 1 : close]
            args = tuple(a for a in split_top_level(inner)) if inner.strip() else ()
            loops = tuple(lp for lp in self.loops if lp.start <= match.start() < lp.end)
            template = match.group(2)[1:-1].strip() if match.group(2) else None
            found.append(
                Call(name, template, args, self.line_of(match.start()), match.start(), close + 1, loops)
            )
        return found

    def calls_named(self, *names: str) -> list[Call]:
        return [c for c in self.calls if c.base in names]

    @cached_property
    def assignments(self) -> dict[str, str]:
        """`name -> expression` of every simple declaration with an initialiser (last one wins)."""
        env: dict[str, str] = {}
        for match in _DECL.finditer(self.code):
            for part in split_top_level(match.group("body")):
                item = re.match(r"([A-Za-z_]\w*)\s*(?:=\s*(.+)|\{(.*)\})$", part.strip(), re.DOTALL)
                if item is None:
                    continue
                value = item.group(2) if item.group(2) is not None else item.group(3)
                if value is not None and value.strip():
                    env[item.group(1)] = value.strip()
        return env

    def int_value(self, text: str) -> int | None:
        return evaluate_int(text, self.assignments)


def _matching(text: str, open_at: int) -> int | None:
    """Offset of the bracket closing the one at `open_at` (string literals skipped), or None."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    opener = text[open_at]
    closer = pairs[opener]
    depth = 0
    i = open_at
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _strip_comments(text: str) -> str:
    """Blank `//` and `/* */` comments (newlines kept, so lines and offsets stay put)."""
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch in (quote, "\n"):
                quote = None
            i += 1
            continue
        if ch in "\"'":
            quote = ch
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)
