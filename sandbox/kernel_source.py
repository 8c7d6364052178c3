"""Finding the PTX / CUDA C++ sources inside a candidate module, statically (nothing is executed).

A `ptx`/`cuda` candidate keeps its kernel in a string that it hands to `load_ptx(...)` /
`load_cuda(...)`. The service must compile that string before any worker runs the module, so we read
it from the syntax tree: a string literal argument, or a name bound at module level to one (plain,
raw, implicitly concatenated, joined with `+`, wrapped in `textwrap.dedent` or `.strip()`). Anything
that would need running code to know (f-strings, `.format`, function results) is reported as an
error diagnostic: the contract asks for a constant.

Every character of an extracted source remembers where it came from in the Python file, so that a
compiler's "line 12" can be reported at the right line of the candidate (a source starting with a
newline, escape sequences like `\\n` in concatenated one-line strings and dedenting all included).
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Literal, NamedTuple

from kernelwright.domain import Diagnostic, Severity, Target

__all__ = [
    "CANDIDATE_FILE",
    "KernelKind",
    "KernelScan",
    "KernelSource",
    "find_kernel_sources",
]

CANDIDATE_FILE = "candidate.py"
KernelKind = Literal["ptx", "cuda"]

_LOADERS: dict[str, KernelKind] = {"load_ptx": "ptx", "load_cuda": "cuda"}
_MAX_DEPTH = 32
_CONTRACT_HINT = (
    "keep the kernel in a module-level string constant, e.g. PTX = r'''...''' (or CUDA_SRC = r'''...''' "
    'with extern "C" __global__ kernels), load it in ModelNew.__init__ with '
    "`from sandbox.runtime import load_ptx, load_cuda` and "
    '`self.kernel = load_ptx(PTX).get_function("name")`, '
    "and launch it in forward with `self.kernel(grid=..., block=..., args=(...))`"
)
_PTX_ENTRY = re.compile(r"\.entry\s+([A-Za-z_$][\w$]*)")
_LAUNCH_BOUNDS = re.compile(r"__launch_bounds__\s*\([^)]*\)")
_CUDA_GLOBAL = re.compile(r"__global__\b[^;{(]*?\b([A-Za-z_]\w*)\s*\(")
_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


@dataclass(frozen=True)
class KernelSource:
    """One kernel source found in a candidate.

    `line_map[i]` is the Python line of kernel line `i + 1`, `column_map[i]` the 0-based Python
    column where that kernel line starts (None where escapes make it unknowable). `start_line` is the
    Python line of kernel line 1: for `PTX = r\"\"\"` followed by a newline, kernel line 1 is the
    empty rest of the opening line, and kernel line 2 the next Python line.
    """

    kind: KernelKind
    text: str
    name: str | None  # the module-level variable, or None for a literal passed directly
    call_line: int  # where load_ptx/load_cuda is called
    line_map: tuple[int, ...]
    column_map: tuple[int | None, ...]
    options: tuple[str, ...] | None = ()  # load_cuda(options=...); None when not readable statically

    @property
    def start_line(self) -> int:
        return self.line_map[0]

    @property
    def label(self) -> str:
        """How diagnostics name this source: `PTX string PTX` / `CUDA source (literal)`."""
        what = "PTX string" if self.kind == "ptx" else "CUDA source"
        return f"{what} {self.name}" if self.name else f"{what} (literal)"

    def python_line(self, kernel_line: int) -> int:
        """The Python line of 1-based `kernel_line` (clamped into the source's range)."""
        index = min(max(kernel_line, 1), len(self.line_map)) - 1
        return self.line_map[index]

    def python_column(self, kernel_line: int, kernel_column: int) -> int | None:
        """1-based Python column of a 1-based kernel (line, column), when it is known."""
        if not 1 <= kernel_line <= len(self.column_map):
            return None
        start = self.column_map[kernel_line - 1]
        return None if start is None else start + kernel_column


class KernelScan(NamedTuple):
    """What the scan found: the sources, and diagnostics about the candidate (errors mean: fix it)."""

    sources: list[KernelSource]
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


# One decoded character and where it came from. `literal_newline`: it is a real line break of the file.
@dataclass(frozen=True)
class _Char:
    line: int
    column: int | None
    literal_newline: bool = False


@dataclass(frozen=True)
class _Text:
    text: str
    chars: tuple[_Char, ...]


class _Unsupported(Exception):
    """Internal signal: an expression cannot be read statically (never escapes this module)."""

    def __init__(self, node: ast.AST, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


class _Scanner:
    def __init__(self, source: str, tree: ast.Module, filename: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.filename = filename
        self.bindings: dict[str, ast.expr] = {}
        self.loader_names = dict(_LOADERS)
        self.dedent_names = {"dedent"}
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.bindings[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.bindings[node.target.id] = node.value
        for item in ast.walk(tree):
            if isinstance(item, ast.ImportFrom):
                for alias in item.names:
                    if alias.name in _LOADERS and alias.asname:
                        self.loader_names[alias.asname] = _LOADERS[alias.name]
                    if alias.name == "dedent" and alias.asname:
                        self.dedent_names.add(alias.asname)

    # -- positions ---------------------------------------------------------------------------------
    def _char_column(self, line: int, byte_offset: int) -> int:
        """ast columns count UTF-8 bytes; turn one into a character column."""
        if not 1 <= line <= len(self.lines):
            return byte_offset
        return len(self.lines[line - 1].encode()[:byte_offset].decode(errors="replace"))

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, node: ast.expr, depth: int = 0, seen: frozenset[str] = frozenset()) -> _Text:
        if depth > _MAX_DEPTH:
            raise _Unsupported(node, "is nested too deeply to be read statically")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return self._constant(node)
            kind = "bytes" if isinstance(node.value, bytes) else type(node.value).__name__
            raise _Unsupported(node, f"is a {kind} constant, not a str")
        if isinstance(node, ast.JoinedStr):
            raise _Unsupported(
                node,
                "is an f-string; its text is only known when the module runs, so it cannot be compiled "
                "ahead: write the kernel as a plain (raw) string constant with the values spelled out",
            )
        if isinstance(node, ast.Name):
            if node.id in seen or node.id not in self.bindings:
                raise _Unsupported(
                    node, f"is the name {node.id!r}, which is not bound to a string at module level"
                )
            return self.evaluate(self.bindings[node.id], depth + 1, seen | {node.id})
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.evaluate(node.left, depth + 1, seen)
            right = self.evaluate(node.right, depth + 1, seen)
            return _Text(left.text + right.text, left.chars + right.chars)
        if isinstance(node, ast.Call):
            return self._call(node, depth, seen)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            raise _Unsupported(node, "uses %-formatting, which is only known at run time")
        expression = ast.unparse(node)
        if len(expression) > 60:
            expression = expression[:57] + "..."
        raise _Unsupported(
            node, f"is `{expression}`, which is only known at run time (not a module-level string)"
        )

    def _call(self, node: ast.Call, depth: int, seen: frozenset[str]) -> _Text:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("strip", "lstrip", "rstrip") and not node.args:
            inner = self.evaluate(func.value, depth + 1, seen)
            text = inner.text
            start = len(text) - len(text.lstrip()) if func.attr in ("strip", "lstrip") else 0
            end = len(text.rstrip()) if func.attr in ("strip", "rstrip") else len(text)
            end = max(end, start)
            return _Text(text[start:end], inner.chars[start:end])
        is_dedent = (isinstance(func, ast.Attribute) and func.attr == "dedent") or (
            isinstance(func, ast.Name) and func.id in self.dedent_names
        )
        if is_dedent and len(node.args) == 1 and not node.keywords:
            return _dedent(self.evaluate(node.args[0], depth + 1, seen))
        if isinstance(func, ast.Attribute) and func.attr == "format":
            raise _Unsupported(node, "uses str.format, which is only known at run time")
        raise _Unsupported(node, "is the result of a function call, which is only known at run time")

    def _constant(self, node: ast.Constant) -> _Text:
        value = str(node.value)
        segment = ast.get_source_segment(self.source, node)
        line0 = node.lineno
        col0 = self._char_column(node.lineno, node.col_offset)
        if segment is None:
            return _Text(value, tuple(_Char(line0, None) for _ in value))
        chars: list[_Char] = []
        text: list[str] = []
        # Parenthesised so that tokenize ignores line breaks and indentation between implicit pieces.
        try:
            for token in tokenize.generate_tokens(io.StringIO("(" + segment + ")").readline):
                if token.type != tokenize.STRING:
                    continue
                line = line0 + token.start[0] - 1
                column = token.start[1] - 1 + col0 if token.start[0] == 1 else token.start[1]
                piece_text, piece_chars = _decode_string_token(token.string, line, column)
                text.append(piece_text)
                chars.extend(piece_chars)
        except (tokenize.TokenError, SyntaxError, ValueError):
            text, chars = [], []
        joined = "".join(text)
        if joined != value:  # should not happen; keep the true value with coarse positions
            return _Text(value, tuple(_Char(line0, None) for _ in value))
        return _Text(joined, tuple(chars))


def _decode_string_token(token: str, line: int, column: int) -> tuple[str, list[_Char]]:
    """Decode one string literal token, recording each resulting character's source position."""
    prefix_length = len(token) - len(token.lstrip("rRuUbBfF"))
    prefix = token[:prefix_length].lower()
    body = token[prefix_length:]
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    inner = body[len(quote) : len(body) - len(quote)]
    line_, col = line, column + prefix_length + len(quote)
    text: list[str] = []
    chars: list[_Char] = []
    raw = "r" in prefix
    index = 0
    while index < len(inner):
        ch = inner[index]
        if ch == "\\" and not raw and index + 1 < len(inner):
            decoded, length = _escape(inner, index)
            for out in decoded:
                text.append(out)
                chars.append(_Char(line_, col))
            consumed = inner[index : index + length]
            newlines = consumed.count("\n")
            if newlines:
                line_ += newlines
                col = len(consumed) - consumed.rfind("\n") - 1
            else:
                col += length
            index += length
            continue
        text.append(ch)
        chars.append(_Char(line_, col, literal_newline=ch == "\n"))
        if ch == "\n":
            line_, col = line_ + 1, 0
        else:
            col += 1
        index += 1
    return "".join(text), chars


def _escape(inner: str, index: int) -> tuple[str, int]:
    """(decoded text, source length) of the escape sequence starting at `inner[index]` (a backslash)."""
    nxt = inner[index + 1]
    if nxt == "\n":
        return "", 2
    if nxt in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[nxt], 2
    if nxt in "01234567":
        match = re.match(r"[0-7]{1,3}", inner[index + 1 :])
        digits = match.group(0) if match else nxt
        return chr(int(digits, 8)), 1 + len(digits)
    widths = {"x": 2, "u": 4, "U": 8}
    if nxt in widths:
        digits = inner[index + 2 : index + 2 + widths[nxt]]
        return chr(int(digits, 16)), 2 + widths[nxt]
    if nxt == "N":
        end = inner.find("}", index)
        sequence = inner[index : end + 1]
        value: str = ast.literal_eval('"' + sequence + '"')
        return value, len(sequence)
    return "\\" + nxt, 2


def _dedent(value: _Text) -> _Text:
    """`textwrap.dedent` that keeps each remaining character's position (dedent only drops line heads)."""
    before = value.text.split("\n")
    after = textwrap.dedent(value.text).split("\n")
    if len(before) != len(after):  # defensive: dedent never changes the number of lines
        return _Text(textwrap.dedent(value.text), tuple(_Char(value.chars[0].line, None) for _ in after))
    text: list[str] = []
    chars: list[_Char] = []
    offset = 0
    for number, (old, new) in enumerate(zip(before, after, strict=True)):
        removed = len(old) - len(new)
        text.append(new)
        chars.extend(value.chars[offset + removed : offset + len(old)])
        offset += len(old)
        if number < len(before) - 1:
            text.append("\n")
            chars.append(value.chars[offset])
            offset += 1
    return _Text("\n".join(after), tuple(chars))


def _line_maps(value: _Text, fallback_line: int) -> tuple[tuple[int, ...], tuple[int | None, ...]]:
    """Python (line, start column) of every kernel line of `value` (escaped newlines count too)."""
    lines: list[int] = []
    columns: list[int | None] = []
    starts = [0] + [i + 1 for i, ch in enumerate(value.text) if ch == "\n"]
    for start in starts:
        if start < len(value.chars):
            char = value.chars[start]
            lines.append(char.line)
            columns.append(char.column)
        elif value.chars:  # the empty line after a trailing newline
            last = value.chars[-1]
            lines.append(last.line + 1 if last.literal_newline else last.line)
            columns.append(0 if last.literal_newline else None)
        else:
            lines.append(fallback_line)
            columns.append(None)
    return tuple(lines), tuple(columns)


def _loader_kind(call: ast.Call, scanner: _Scanner) -> KernelKind | None:
    func = call.func
    if isinstance(func, ast.Name):
        return scanner.loader_names.get(func.id)
    if isinstance(func, ast.Attribute):
        return _LOADERS.get(func.attr)
    return None


def _source_argument(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    for keyword in call.keywords:
        if keyword.arg == "source":
            return keyword.value
    return None


def _read_options(call: ast.Call, scanner: _Scanner) -> tuple[str, ...] | None:
    for keyword in call.keywords:
        if keyword.arg != "options":
            continue
        node: ast.expr = keyword.value
        if isinstance(node, ast.Name) and node.id in scanner.bindings:
            node = scanner.bindings[node.id]
        if isinstance(node, ast.List | ast.Tuple) and all(
            isinstance(item, ast.Constant) and isinstance(item.value, str) for item in node.elts
        ):
            return tuple(str(item.value) for item in node.elts if isinstance(item, ast.Constant))
        return None
    return ()


def _function_names(tree: ast.Module) -> list[tuple[str, int]]:
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_function"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append((node.args[0].value, node.lineno))
    return names


def _diag(
    code: str,
    message: str,
    filename: str,
    line: int | None = None,
    *,
    hint: str | None = None,
    severity: Severity = Severity.ERROR,
) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, severity=severity, file=filename, line=line, hint=hint, source="check"
    )


def _check_names(tree: ast.Module, sources: list[KernelSource], filename: str) -> list[Diagnostic]:
    """Warn about get_function names that no extracted source defines, and mangled CUDA kernels."""
    found: list[Diagnostic] = []
    defined: set[str] = set()
    warned: set[str] = set()
    for source in sources:
        if source.kind == "ptx":
            defined.update(_PTX_ENTRY.findall(source.text))
        else:
            defined.update(_CUDA_GLOBAL.findall(_LAUNCH_BOUNDS.sub(" ", source.text)))
        mangled = "__global__" in source.text and 'extern "C"' not in source.text
        if source.kind == "cuda" and mangled and source.text not in warned:
            warned.add(source.text)
            found.append(
                _diag(
                    "check.cuda_not_extern_c",
                    f'the kernels in {source.label} are not declared extern "C"; their names get C++-mangled '
                    "and get_function('name') will not find them",
                    filename,
                    source.start_line,
                    severity=Severity.WARNING,
                    hint='write `extern "C" __global__ void name(...)`',
                )
            )
    for name, line in _function_names(tree):
        if name not in defined:
            known = ", ".join(sorted(defined)) or "none"
            found.append(
                _diag(
                    "check.unknown_kernel_name",
                    f"get_function({name!r}): no kernel of that name in the kernel source(s) "
                    f"(found: {known})",
                    filename,
                    line,
                    severity=Severity.WARNING,
                    hint='use the exact .entry name (PTX) or the extern "C" __global__ function name (CUDA)',
                )
            )
    return found


def find_kernel_sources(
    module_source: str, target: Target | str, *, filename: str = CANDIDATE_FILE
) -> KernelScan:
    """Every kernel source the candidate passes to `load_ptx` / `load_cuda`, plus diagnostics.

    Only meaningful for the `ptx` and `cuda` targets; for the others the scan is empty. Unpacks as
    `(sources, diagnostics)`.
    """
    target = Target(target)
    if target not in (Target.PTX, Target.CUDA):
        return KernelScan([], [])
    try:
        tree = ast.parse(module_source)
    except SyntaxError as exc:
        return KernelScan(
            [],
            [
                Diagnostic(
                    code="python.syntax",
                    message=exc.msg or "invalid syntax",
                    file=filename,
                    line=exc.lineno,
                    column=exc.offset,
                    source="python",
                )
            ],
        )
    scanner = _Scanner(module_source, tree, filename)
    sources: list[KernelSource] = []
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, str, tuple[str, ...] | None]] = set()
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _loader_kind(n, scanner) is not None]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    wanted: KernelKind = "ptx" if target == Target.PTX else "cuda"
    for call in calls:
        kind = _loader_kind(call, scanner)
        assert kind is not None
        loader = f"load_{kind}"
        if kind != wanted:
            diagnostics.append(
                _diag(
                    "check.wrong_kernel_kind",
                    f"{loader}(...) loads a {kind} kernel, but this candidate's target is {target.value}",
                    filename,
                    call.lineno,
                    hint=f"write the kernel in {target.value} and load it with load_{wanted}",
                )
            )
        argument = _source_argument(call)
        if argument is None:
            diagnostics.append(
                _diag(
                    "check.dynamic_kernel_source",
                    f"{loader}() is called without a source",
                    filename,
                    call.lineno,
                    hint=_CONTRACT_HINT,
                )
            )
            continue
        try:
            value = scanner.evaluate(argument)
        except _Unsupported as exc:
            where = getattr(exc.node, "lineno", call.lineno)
            diagnostics.append(
                _diag(
                    "check.dynamic_kernel_source",
                    f"the source passed to {loader} {exc.reason}",
                    filename,
                    where,
                    hint=_CONTRACT_HINT,
                )
            )
            continue
        if not value.text.strip():
            diagnostics.append(
                _diag(
                    "check.empty_kernel_source",
                    f"the source passed to {loader} is empty",
                    filename,
                    call.lineno,
                    hint=_CONTRACT_HINT,
                )
            )
            continue
        options = _read_options(call, scanner) if kind == "cuda" else ()
        if options is None:
            diagnostics.append(
                _diag(
                    "check.dynamic_compile_options",
                    f"the options of {loader} are not a literal list of strings; the service "
                    "compiled without them and the worker will compile again",
                    filename,
                    call.lineno,
                    severity=Severity.WARNING,
                    hint="write options=('-use_fast_math', ...) as a literal tuple",
                )
            )
        identity = (kind, value.text, options)
        if identity in seen:
            continue
        seen.add(identity)
        lines, columns = _line_maps(value, getattr(argument, "lineno", call.lineno))
        name = argument.id if isinstance(argument, ast.Name) else None
        sources.append(
            KernelSource(
                kind=kind,
                text=value.text,
                name=name,
                call_line=call.lineno,
                line_map=lines,
                column_map=columns,
                options=options,
            )
        )
    if not calls:
        diagnostics.append(
            _diag(
                "check.no_kernel_source",
                f"no load_{wanted}(...) call found: a {target.value} candidate must hand its kernel "
                f"source to sandbox.runtime.load_{wanted}",
                filename,
                hint=_CONTRACT_HINT,
            )
        )
    elif sources and not any(d.is_error for d in diagnostics):
        diagnostics.extend(_check_names(tree, sources, filename))
    return KernelScan(sources, diagnostics)
