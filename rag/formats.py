"""Chunk any supported file: what a heading and a code block look like in each format.

All formats go through the one packer of `rag.lexical.split_outline`, so they share its guarantees:
a code block is never cut, every chunk knows its heading path, and its line range is 1-based,
inclusive and exact. Formats differ only in their detectors:

- Markdown: `#` headings, fenced blocks (the lexical index's own splitter).
- reStructuredText: underlined (and over-and-underlined) titles, levels in order of first use as
  docutils assigns them; `.. code-block::`/`.. code::` bodies and `::` literal blocks are atomic.
- HTML: single-line `<h1>`..`<h6>` headings, `<pre>` blocks atomic; chunk text is the readable
  text of its lines (tags stripped) while the line range still points into the raw file.
- Source files (C, C++, CUDA, Python, PTX): top-level definitions are the headings, so a hit says
  which function it is in; there are no atomic blocks (a long function is cut at blank lines).
- Plain text: paragraphs. PDF (with `pypdf`): the text of each page, heading `page N`; its line
  numbers count lines of the extracted text, as no line numbering exists in a PDF.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from kernelwright.errors import UserError
from rag.lexical import (
    MAX_CHUNK_LINES,
    BlockFinder,
    Chunk,
    HeadingFinder,
    split_markdown,
    split_outline,
    split_text,
)

__all__ = [
    "CODE_SUFFIXES",
    "DOCUMENT_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "chunk_file",
    "chunk_text",
    "split_code",
    "split_html",
    "split_rst",
]

DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".html", ".htm", ".pdf"})
CODE_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".cu", ".cuh", ".py", ".ptx"})
SUPPORTED_SUFFIXES = DOCUMENT_SUFFIXES | CODE_SUFFIXES

# --- reStructuredText ----------------------------------------------------------------------------

_RST_ADORNMENT = re.compile(r"""^([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1{2,}\s*$""")
_RST_CODE_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(?:code-block|code|sourcecode|highlight)::")
_RST_LITERAL_MARK = re.compile(r"^(\s*)(?!\.\.\s).*::\s*$")


def _rst_heading_finder() -> HeadingFinder:
    """Titles are levelled by the order in which their adornment styles first appear, as in docutils;
    the finder remembers the styles it has seen, so make one per document."""
    styles: list[tuple[str, bool]] = []

    def level_of(style: tuple[str, bool]) -> int:
        if style not in styles:
            styles.append(style)
        return styles.index(style) + 1

    def find(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
        line = lines[i]
        over = _RST_ADORNMENT.match(line)
        if over and i + 2 < len(lines):
            title, under = lines[i + 1], _RST_ADORNMENT.match(lines[i + 2])
            if under and under.group(1) == over.group(1) and title.strip() and not _is_adornment(title):
                return level_of((over.group(1), True)), title.strip(), 3
        if i + 1 < len(lines) and line.strip() and not line[0].isspace() and not _is_adornment(line):
            under = _RST_ADORNMENT.match(lines[i + 1])
            if under and len(lines[i + 1].rstrip()) >= min(len(line.rstrip()), 3):
                if i > 0 and lines[i - 1].strip() and not lines[i - 1].startswith(".."):
                    return None  # a paragraph's last line over a transition, not a title
                return level_of((under.group(1), False)), line.strip(), 2
        return None

    return find


def _is_adornment(line: str) -> bool:
    return _RST_ADORNMENT.match(line) is not None


def _indented_end(lines: Sequence[str], start: int, indent: int) -> int:
    """One past the last line, after `start`, of the block indented deeper than `indent` (blank lines
    inside it included, trailing blank lines not)."""
    end = start + 1
    last = start
    while end < len(lines):
        line = lines[end]
        if line.strip():
            if len(line) - len(line.lstrip()) <= indent:
                break
            last = end
        end += 1
    return last + 1


def _rst_block(lines: Sequence[str], i: int) -> int | None:
    line = lines[i]
    directive = _RST_CODE_DIRECTIVE.match(line)
    literal = None if directive else _RST_LITERAL_MARK.match(line)
    match = directive or literal
    if match is None:
        return None
    indent = len(match.group(1))
    end = _indented_end(lines, i, indent)
    return end if end > i + 1 else None


_RST_LABEL = re.compile(r"^\s*\.\.\s+_[^:]+:\s*$")


def split_rst(text: str, source: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of a reStructuredText document (see the module docstring). Chunks holding only link
    targets (`.. _name:`, which precede titles) are dropped: alone they tell a reader nothing."""
    chunks = split_outline(
        text, source, heading_at=_rst_heading_finder(), block_at=_rst_block, max_lines=max_lines
    )
    return [c for c in chunks if not all(_RST_LABEL.match(x) or not x.strip() for x in c.text.split("\n"))]


# --- HTML ----------------------------------------------------------------------------------------

_HTML_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.IGNORECASE)
_HTML_PRE = re.compile(r"<(pre|script|style)\b", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]+>")
_HTML_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _html_heading(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
    match = _HTML_HEADING.search(lines[i])
    if match is None:
        return None
    title = html.unescape(_HTML_TAG.sub("", match.group(2))).strip()
    return (int(match.group(1)), title, 1) if title else None


def _html_block(lines: Sequence[str], i: int) -> int | None:
    match = _HTML_PRE.search(lines[i])
    if match is None:
        return None
    closing = re.compile(rf"</{match.group(1)}\s*>", re.IGNORECASE)
    for j in range(i, len(lines)):
        if closing.search(lines[j]):
            return j + 1
    return len(lines)


def _html_text(raw: str) -> str:
    text = html.unescape(_HTML_TAG.sub("", _HTML_DROP.sub("", raw)))
    kept = [line.rstrip() for line in text.split("\n")]
    return "\n".join(kept).strip("\n")


def split_html(text: str, source: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of an HTML page: lines ranges in the raw file, text with the tags stripped."""
    chunks = split_outline(text, source, heading_at=_html_heading, block_at=_html_block, max_lines=max_lines)
    cleaned = [Chunk(c.source, c.heading, c.start_line, c.end_line, _html_text(c.text)) for c in chunks]
    return [c for c in cleaned if c.text.strip()]


# --- source code ---------------------------------------------------------------------------------

_PY_DEFINITION = re.compile(r"^(\s*)(?:async\s+)?(def|class)\s+([A-Za-z_]\w*)")
_PTX_FUNCTION = re.compile(
    r"^\s*(?:\.visible\s+|\.weak\s+|\.extern\s+)?\.(entry|func)\s+(?:\([^)]*\)\s*)?([\w$]+)"
)
_C_TYPE = re.compile(r"^(?:struct|class|union|namespace|enum)\s+([A-Za-z_]\w*)")
_C_FUNCTION = re.compile(r"^[A-Za-z_][\w:<>,*&\s\"]*?\b([A-Za-z_~][\w:~]*)\s*\(")
_C_NOT_DEFINITION = frozenset({"if", "for", "while", "switch", "return", "sizeof", "else", "do"})


def _python_heading(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
    match = _PY_DEFINITION.match(lines[i])
    if match is None:
        return None
    level = len(match.group(1).expandtabs(4)) // 4 + 1
    return level, f"{match.group(2)} {match.group(3)}", 1


def _ptx_heading(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
    match = _PTX_FUNCTION.match(lines[i])
    return (1, f".{match.group(1)} {match.group(2)}", 1) if match else None


def _c_heading(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
    """A definition starts at column 0 and is not a declaration (`;`), a directive or a comment."""
    line = lines[i]
    if not line or line[0].isspace() or line.startswith(("#", "//", "/*", "*", "}", "{")):
        return None
    stripped = line.rstrip()
    if stripped.endswith((";", ",")):
        return None
    kind = _C_TYPE.match(line)
    if kind is not None:
        return 1, f"{line.split()[0]} {kind.group(1)}", 1
    function = _C_FUNCTION.match(line)
    if function is None or function.group(1) in _C_NOT_DEFINITION:
        return None
    return 1, function.group(1), 1


def _no_block(lines: Sequence[str], i: int) -> int | None:
    return None


def split_code(text: str, source: str, suffix: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of a source file, with the enclosing top-level definition as the heading."""
    finder: HeadingFinder
    if suffix == ".py":
        finder = _python_heading
    elif suffix == ".ptx":
        finder = _ptx_heading
    else:
        finder = _c_heading
    block: BlockFinder = _no_block
    return split_outline(text, source, heading_at=finder, block_at=block, max_lines=max_lines)


# --- dispatch ------------------------------------------------------------------------------------


def chunk_text(text: str, source: str, suffix: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of a text document whose format is given by its file suffix (`.md`, `.rst`, ...)."""
    suffix = suffix.lower()
    if suffix in (".md", ".markdown"):
        return split_markdown(text, source, max_lines)
    if suffix == ".rst":
        return split_rst(text, source, max_lines)
    if suffix in (".html", ".htm"):
        return split_html(text, source, max_lines)
    if suffix in CODE_SUFFIXES:
        return split_code(text, source, suffix, max_lines)
    return split_text(text, source, max_lines)


def chunk_file(path: Path, source: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of one file; `source` is the name its hits will cite. Empty chunks are dropped."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        chunks = _split_pdf(path, source, max_lines)
    else:
        chunks = chunk_text(path.read_text(encoding="utf-8", errors="replace"), source, suffix, max_lines)
    return [c for c in chunks if c.text.strip()]


def _split_pdf(path: Path, source: str, max_lines: int) -> list[Chunk]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency; kept for slim installs
        raise UserError(f"cannot read {path}: PDF support needs `pip install pypdf`") from exc
    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise UserError(f"cannot read PDF {path}: {exc}") from exc
    chunks: list[Chunk] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        text = page.replace("\r\n", "\n").replace("\r", "\n")
        for chunk in split_text(text, source, max_lines):
            chunks.append(
                Chunk(
                    source=source,
                    heading=f"page {number}",
                    start_line=chunk.start_line + offset,
                    end_line=chunk.end_line + offset,
                    text=chunk.text,
                )
            )
        offset += len(text.split("\n"))
    return chunks
