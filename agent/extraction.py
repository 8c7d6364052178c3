"""Pull the candidate module out of a model's reply.

Real replies are untidy: prose around the code, several fenced blocks (a sketch, the module, a usage
example), fences tagged ```py, ```Python or not at all, ~~~ fences, replies with no fence whatsoever,
replies cut off by the length limit, kernels put in their own ```ptx / ```cuda block instead of a
string inside the module. This module turns any of them into either the module text or diagnostics
that tell the model what to send instead. It never raises: a reply is model output, and a malformed
one is data for the next prompt, not a crash of the run.

Rules, in order:
1. Empty or binary replies give `extract.no_code`. Closed `<think>...</think>` sections (reasoning
   models put drafts there, sometimes with unclosed fences) are dropped when an answer follows.
2. A reply cut off by the length limit (`truncated=True`) or ending inside an unclosed fence gives
   `extract.incomplete_reply`: a partial module may still parse, so it is never compiled.
3. Among fenced blocks, the ones defining `class ModelNew` are candidates; Python-tagged or untagged
   blocks win over blocks tagged with another language; among those, the last one that parses wins,
   else the last one (models put their final answer last, and a later snippet may be a fragment).
4. Without fences, the reply is accepted as a bare module if a span of it, from its first import to
   the end (trailing prose trimmed), parses and defines `ModelNew`.
5. No candidate gives `extract.no_model_new`.
6. For `ptx` and `cuda`, if the module passes an undefined name to `load_ptx`/`load_cuda` (or uses one
   undefined UPPER_CASE name) and the reply has a separate kernel block, that block is injected as
   `NAME = r\"\"\"...\"\"\"` after the module docstring and `__future__` imports (an info diagnostic
   says so). Python blocks are never joined: guessing how fragments combine causes more harm than a
   clear request for the complete module.
7. A module that does not parse is still returned, with a `python.syntax` diagnostic whose line and
   column refer to the returned module.
"""

from __future__ import annotations

import ast
import builtins
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from kernelwright.domain import Diagnostic, Severity, Target

__all__ = ["MODULE_FILE", "Extraction", "extract_candidate_code"]

MODULE_FILE = "candidate.py"
"""The file name syntax diagnostics use for the extracted module."""

_SOURCE = "extract"
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3", "ipython", "pycon", "python-repl"})
_KERNEL_TAGS: dict[Target, frozenset[str]] = {
    Target.PTX: frozenset({"ptx", "nvptx", "asm", "assembly"}),
    Target.CUDA: frozenset({"cuda", "cu", "cpp", "c++", "cxx", "cc", "c", "h", "hpp", "cuh"}),
}
_LOADERS = frozenset({"load_ptx", "load_cuda"})
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FENCE_CLOSE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")
_MODEL_NEW = re.compile(r"^[ \t]*class[ \t]+ModelNew\b", re.MULTILINE)
_MODULE_START = re.compile(r"^(?:import[ \t]|from[ \t]+[\w.]+[ \t]+import[ \t]|class[ \t]+ModelNew\b)")
_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MAX_TRIM_TRIES = 400
_THINKING = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_HINT_RESEND = "Reply with one complete ```python block that defines `class ModelNew(torch.nn.Module)`."


@dataclass(frozen=True)
class Extraction:
    """What was found: the module (or None), diagnostics about it, and how many fenced blocks the
    reply had (0 for a bare module). Only ERROR diagnostics mean failure; INFO ones explain repairs."""

    code: str | None
    diagnostics: tuple[Diagnostic, ...]
    blocks: int

    @property
    def ok(self) -> bool:
        """A module was found and nothing about it is an error (it may still fail to compile)."""
        return self.code is not None and not any(d.is_error for d in self.diagnostics)


@dataclass(frozen=True)
class _Block:
    language: str
    text: str
    closed: bool
    info: str = ""  # the whole fence info string (tt-metal replies put the file path there)
    before: str = ""  # the last non-blank line above the fence (or a path written as a heading)

    @property
    def blank(self) -> bool:
        return not self.text.strip()


def extract_candidate_code(reply: str, target: Target, *, truncated: bool = False) -> Extraction:
    """The candidate module in `reply`; `truncated` is true when the provider stopped at its length
    limit (finish_reason "length"). Never raises."""
    try:
        return _extract(reply, target, truncated)
    except Exception as exc:  # noqa: BLE001 - the contract is to never raise on model output
        return _failure(
            0,
            "extract.no_code",
            f"the reply could not be read ({type(exc).__name__})",
            _HINT_RESEND,
        )


def _extract(reply: object, target: Target, truncated: bool) -> Extraction:
    if isinstance(reply, bytes | bytearray):
        reply = bytes(reply).decode("utf-8", errors="replace")
    if not isinstance(reply, str) or not reply.strip():
        return _failure(0, "extract.no_code", "the reply is empty", _HINT_RESEND)
    text = reply.replace("\r\n", "\n").replace("\r", "\n")
    if _looks_binary(text):
        return _failure(0, "extract.no_code", "the reply is not readable text", _HINT_RESEND)
    answer = _THINKING.sub("", text)
    if answer.strip():
        text = answer
    blocks = [b for b in _scan_blocks(text) if not (b.blank and not b.closed)]
    count = len(blocks)
    if truncated or any(not b.closed for b in blocks):
        why = (
            "the reply was cut off by the output length limit"
            if truncated
            else "the reply ends inside an unclosed code block"
        )
        return _failure(
            count,
            "extract.incomplete_reply",
            f"{why}, so the module is incomplete",
            "Send the complete module again in one ```python block, and keep it shorter: "
            "brief reasoning, few comments, no repeated code.",
        )
    if target == Target.TT_METAL:
        return _ttmetal_project(blocks)
    if blocks:
        chosen = _choose_block(blocks)
        if chosen is None:
            return _failure(
                count,
                "extract.no_model_new",
                f"none of the reply's {count} code block(s) defines `class ModelNew`",
                _HINT_RESEND,
            )
        code = _normalise(chosen.text)
    else:
        bare = _bare_module(text)
        if bare is None:
            return _failure(
                0, "extract.no_model_new", "the reply has no code defining `class ModelNew`", _HINT_RESEND
            )
        code = bare
    diagnostics: list[Diagnostic] = []
    if target in _KERNEL_TAGS and blocks:
        code, injected = _inject_kernel_source(code, blocks, target)
        if injected is not None:
            diagnostics.append(
                Diagnostic(
                    code="extract.injected_kernel_source",
                    message=f"`{injected}` was not defined in the module; the reply's separate "
                    f'{target.value} block was inserted as `{injected} = r"""..."""`',
                    severity=Severity.INFO,
                    hint="Keep the kernel source as a string constant inside the Python module.",
                    source=_SOURCE,
                )
            )
    syntax = _syntax_diagnostic(code)
    if syntax is not None:
        diagnostics.append(syntax)
    return Extraction(code=code, diagnostics=tuple(diagnostics), blocks=count)


def _failure(blocks: int, code: str, message: str, hint: str) -> Extraction:
    diagnostic = Diagnostic(code=code, message=message, hint=hint, source=_SOURCE)
    return Extraction(code=None, diagnostics=(diagnostic,), blocks=blocks)


def _looks_binary(text: str) -> bool:
    """Control characters (other than whitespace) or U+FFFD in more than 5% of the text."""
    bad = sum(
        1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\t\f\v")
    )
    return bad * 20 > len(text)


def _language(info: str) -> str:
    """The fence's language: first word of the info string, lower-cased (`{.python}` -> python)."""
    word = info.strip().lstrip("{.").split(maxsplit=1)
    if not word:
        return ""
    match = re.match(r"[\w+#-]*", word[0].lower())
    return match.group(0) if match else ""


def _scan_blocks(text: str) -> list[_Block]:
    """Fenced blocks in order (CommonMark-like: a closing fence uses the opening's character and is at
    least as long). Fence indentation is removed from the block's lines."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"].expandtabs(4))
        body: list[str] = []
        closed = False
        i += 1
        start = i
        while i < len(lines):
            closing = _FENCE_CLOSE.match(lines[i])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
                closed = True
                break
            body.append(_dedent(lines[i], indent))
            i += 1
        i += 1
        before = next((ln.strip() for ln in reversed(lines[: start - 1]) if ln.strip()), "")
        blocks.append(
            _Block(
                language=_language(opening["info"]),
                text="\n".join(body),
                closed=closed,
                info=opening["info"],
                before=before,
            )
        )
    return blocks


def _dedent(line: str, indent: int) -> str:
    """Remove up to `indent` columns of leading whitespace (tabs count as 4), nothing else."""
    if indent == 0:
        return line
    rest = line.lstrip(" \t")
    lead = line[: len(line) - len(rest)].expandtabs(4)
    return lead[min(indent, len(lead)) :] + rest


def _parses(code: str) -> bool:
    return _parse(code) is not None


def _parse(code: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.parse(code, filename=MODULE_FILE)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


def _choose_block(blocks: Sequence[_Block]) -> _Block | None:
    defining = [b for b in blocks if _MODEL_NEW.search(b.text)]
    python = [b for b in defining if b.language in _PYTHON_TAGS]
    pool = python or defining
    if not pool:
        return None
    parsing = [b for b in pool if _parses(b.text)]
    return (parsing or pool)[-1]


def _normalise(code: str) -> str:
    """Drop leading blank lines and trailing whitespace; end with one newline."""
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


def _bare_module(text: str) -> str | None:
    """A module written without fences: the span from its first import (or the class) to the end,
    with trailing prose trimmed until it parses. Unparseable spans are returned as they are."""
    if not _MODEL_NEW.search(text):
        return None
    if _parses(text):
        return _normalise(text)
    lines = text.split("\n")
    class_line = next(i for i, line in enumerate(lines) if _MODEL_NEW.match(line))
    start = next(
        (i for i, line in enumerate(lines[: class_line + 1]) if _MODULE_START.match(line)), class_line
    )
    ends = range(len(lines), class_line + 1, -1)
    for tries, end in enumerate(ends):
        if tries >= _MAX_TRIM_TRIES:
            break
        candidate = "\n".join(lines[start:end])
        if _parses(candidate):
            return _normalise(candidate)
    return _normalise("\n".join(lines[start:]))


def _kernel_blocks(blocks: Sequence[_Block], target: Target) -> list[_Block]:
    tags = _KERNEL_TAGS[target]
    found = []
    for block in blocks:
        if block.blank or _MODEL_NEW.search(block.text):
            continue
        if block.language in tags or (block.language == "" and _sniff_kernel(block.text, target)):
            found.append(block)
    return found


def _sniff_kernel(text: str, target: Target) -> bool:
    if target == Target.PTX:
        return re.search(r"^\s*\.(?:version|entry|visible)\b", text, re.MULTILINE) is not None
    return "__global__" in text


def _inject_kernel_source(code: str, blocks: Sequence[_Block], target: Target) -> tuple[str, str | None]:
    tree = _parse(code)
    if tree is None:
        return code, None
    kernels = _kernel_blocks(blocks, target)
    if not kernels:
        return code, None
    undefined = _undefined_names(tree)
    if undefined is None:
        return code, None
    names = [n for n in _loader_arguments(tree) if n in undefined]
    if not names:
        names = [n for n in undefined if _CONSTANT_NAME.match(n)]
    if len(set(names)) != 1:
        return code, None
    name = names[0]
    assignment = f"{name} = {_string_literal(kernels[-1].text.strip(chr(10)).rstrip())}\n"
    lines = code.split("\n")
    at = _insertion_line(tree)
    patched = "\n".join(lines[:at]) + ("\n" if at else "") + assignment + "\n".join(lines[at:])
    return patched, name


def _string_literal(text: str) -> str:
    """A raw triple-quoted literal when that round-trips, else a plain repr (always valid)."""
    controls = any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text)
    if '"""' in text or controls:
        return repr(text + "\n")
    return f'r"""{text}\n"""'


def _insertion_line(tree: ast.Module) -> int:
    """Number of lines to keep above the injected assignment: docstring and `__future__` imports."""
    at = 0
    for index, node in enumerate(tree.body):
        is_docstring = (
            index == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (is_docstring or is_future):
            break
        at = node.end_lineno or node.lineno
    return at


def _loader_arguments(tree: ast.Module) -> list[str]:
    """Names passed as the first argument to `load_ptx(...)`/`load_cuda(...)`, in order."""
    names = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Name):
            continue
        func = node.func
        called = (
            func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        )
        if called in _LOADERS:
            names.append(node.args[0].id)
    return names


def _undefined_names(tree: ast.Module) -> list[str] | None:
    """Names read somewhere but bound nowhere in the module (scopes ignored: a deliberately loose,
    conservative check). None when a star import makes the answer unknowable."""
    bound: set[str] = set(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__builtins__"}
    loaded: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bound.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    seen: list[str] = []
    for name in loaded:
        if name not in bound and name not in seen:
            seen.append(name)
    return seen


def _syntax_diagnostic(code: str) -> Diagnostic | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(code, filename=MODULE_FILE)
        except SyntaxError as exc:
            return Diagnostic(
                code="python.syntax",
                message=exc.msg or "invalid syntax",
                file=MODULE_FILE,
                line=exc.lineno,
                column=exc.offset,
                hint="The module must be valid Python 3; fix the statement at this line.",
                source=_SOURCE,
            )
        except (ValueError, RecursionError, MemoryError) as exc:
            return Diagnostic(
                code="python.syntax",
                message=str(exc) or type(exc).__name__,
                file=MODULE_FILE,
                hint="The module must be valid Python 3 source text.",
                source=_SOURCE,
            )
    return None


_TTM_PATH = re.compile(r"((?:[\w.-]+/)*(?:[\w.-]+\.(?:cpp|cc|hpp|h)|CMakeLists\.txt))")
_TTM_HINT = (
    "Reply with one fenced block per file, the file's relative path on the fence line, e.g. "
    "```cpp kernels/dataflow/reader.cpp, ```cpp kernels/compute/compute.cpp, ```cpp host.cpp, "
    "```cmake CMakeLists.txt"
)


def _ttmetal_path(block: _Block) -> str | None:
    """The project path a tt-metal block is labelled with: on the fence line, in a `// file: PATH`
    first line, or on the line above the fence (a heading or bold path)."""
    first = block.text.lstrip().split("\n", 1)[0]
    for text in (block.info, first if first.lstrip().startswith(("//", "#")) else "", block.before):
        match = _TTM_PATH.search(text)
        if match:
            return match.group(1).removeprefix("./")
    return None


def _ttmetal_project(blocks: Sequence[_Block]) -> Extraction:
    """A tt-metal reply is a project: every labelled block is a file; the result is the bundle."""
    from knowledge.ttmetal.project import pack, valid_relpath

    files: dict[str, str] = {}
    diagnostics: list[Diagnostic] = []
    for block in blocks:
        if block.blank:
            continue
        path = _ttmetal_path(block)
        if path is None or not valid_relpath(path):
            if block.language in ("", "cpp", "c++", "cmake", "cc"):
                diagnostics.append(
                    Diagnostic(
                        code="extract.unlabelled_file",
                        message="a code block has no file path, so it is not part of the project",
                        severity=Severity.WARNING,
                        hint=_TTM_HINT,
                        source=_SOURCE,
                    )
                )
            continue
        files[path] = _normalise(block.text)
    if not files:
        return _failure(
            len(blocks), "extract.no_project", "the reply holds no labelled project files", _TTM_HINT
        )
    return Extraction(code=pack(files), diagnostics=tuple(diagnostics), blocks=len(blocks))
