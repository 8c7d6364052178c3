"""A small BM25 index over Markdown and text files: the built-in, dependency-free retriever.

Lexical rather than embedding search because kernel questions hinge on exact tokens
(`cvta.to.global`, `%tid.x`, `tl.program_id`, `__syncthreads`) that embeddings blur; a tokeniser
that keeps such tokens whole, and also splits them on dots and underscores, finds them reliably,
offline and in milliseconds. Plain English words are stemmed (Snowball), so "floating point" finds
"block float" and "configured" finds "configuration"; question words ("how", "what", "much") are
stop-words, since they say nothing about where an answer is.

Files are cut into chunks at Markdown headings, never inside a fenced code block (half an example
misleads more than it helps), and at most about `MAX_CHUNK_LINES` lines each, so a hit fits in a
prompt. Every chunk keeps its exact 1-based inclusive line range: a citation `file:start-end` points
at precisely the text the model saw.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import snowballstemmer

from kernelwright.domain import Hit

__all__ = [
    "MAX_CHUNK_LINES",
    "TEXT_SUFFIXES",
    "BlockFinder",
    "Chunk",
    "HeadingFinder",
    "LexicalIndex",
    "clean_query",
    "split_markdown",
    "split_outline",
    "split_text",
    "stem",
    "tokenize",
]

MAX_CHUNK_LINES = 60
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst"})
"""Suffixes picked up when a folder is indexed (files named explicitly are indexed whatever theirs)."""

_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_TOKEN = re.compile(r"%?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_STOPWORD_TEXT = (
    "a an and are as at be but by can do does for from has have if in into is it its not of on or so "
    "such than that the their then there these this those to use used uses using was we when which "
    "while will with you your how what why where who whose whom much many each did should would could "
    "i me my our"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# A compiler's location prefix: `ptxas k.ptx, line 11; error   :`, `k.cu(1): error:`, `ptxas fatal   :`.
_DIAGNOSTIC_PREFIX = re.compile(
    r"^\s*(?:ptxas\s+)?(?:\S+?(?:,\s*line\s+\d+;|\(\d+\):)\s*)?(?:error|fatal|warning)\s*:\s*",
    re.IGNORECASE | re.MULTILINE,
)
_DIAGNOSTIC_NOISE = re.compile(r"^\s*ptxas fatal\s*:\s*Ptx assembly aborted due to errors\s*$", re.MULTILINE)


def clean_query(query: str) -> str:
    """The query without compiler boilerplate: a pasted diagnostic's file, line and severity (and
    ptxas's closing "assembly aborted" line) match every page about errors and nothing specific, so
    they are dropped; the message itself, with its quoted names, is what finds the answer."""
    text = _DIAGNOSTIC_NOISE.sub("", query)
    return _DIAGNOSTIC_PREFIX.sub("", text).strip() or query


@dataclass(frozen=True)
class Chunk:
    """A piece of a file: `text` is exactly lines `start_line`..`end_line` (1-based, inclusive)."""

    source: str
    heading: str | None
    start_line: int
    end_line: int
    text: str


_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A plain English word reduced to its Snowball (Porter 2) stem, so that inflections and
    derivations meet: `floating` and `float`, `configured` and `configuration`, `masks` and
    `masking`. Only alphabetic words of four letters or more: identifiers, numbers and mnemonics
    with digits (`bfp8`, `sm_90`) pass unchanged, and short words have no suffix worth removing.
    Query and index go through the same function, so a stem need not be a word."""
    if len(word) < 4 or not word.isalpha():
        return word
    return str(_STEMMER.stemWord(word))


def tokenize(text: str) -> list[str]:
    """Lower-cased search tokens. Dotted and underscored identifiers are kept whole and also split:
    `ld.global.nc` gives `ld.global.nc`, `ld.global`, `ld`, `global`, `nc`; `%tid.x` gives `%tid.x`,
    `tid.x`, `tid`; `tl.program_id` gives `tl.program_id`, `tl`, `program_id`, `program`, `id`.
    CamelCase names are also split into words: `CreateCircularBuffer` adds `create`, `circular`,
    `buffer`, so API names match prose ("circular buffer") and the reverse. Plain words and the
    words of CamelCase names are stemmed (`stem`); identifiers and their `_` parts are not
    (`__syncthreads` gives `syncthreads`)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        whole = raw.lower()
        if raw != whole and raw != raw.upper():
            words = [w.lower() for w in _CAMEL.findall(raw)]
            if len(words) > 1:
                tokens.extend(stem(w) for w in words if len(w) > 1 and w not in _STOPWORDS)
        core = whole.lstrip("%")
        parts = core.split(".")
        if len(parts) == 1 and "_" not in core and whole == core:
            if core not in _STOPWORDS and len(core) > 1:
                camel = raw[1:] != raw[1:].lower() and raw != raw.upper()
                tokens.append(core if camel else stem(core))  # a CamelCase name stays whole
            continue
        tokens.append(whole)
        if whole != core:
            tokens.append(core)
        for end in range(2, len(parts)):
            tokens.append(".".join(parts[:end]))
        for part in parts:
            if len(parts) > 1 and len(part) > 1 and part not in _STOPWORDS:
                tokens.append(part)
            pieces = [p for p in part.split("_") if len(p) > 1]
            if len(pieces) > 1 or (pieces and pieces[0] != part):
                tokens.extend(p for p in pieces if p not in _STOPWORDS)
    return tokens


@dataclass
class _Unit:
    """Consecutive lines (0-based, end exclusive) that should stay together when packing chunks."""

    start: int
    end: int
    atomic: bool  # a fenced code block: never split


@dataclass
class _Section:
    heading: str | None
    start: int
    end: int
    units: list[_Unit] = field(default_factory=list)


HeadingFinder = Callable[[Sequence[str], int], tuple[int, str, int] | None]
"""`(lines, i) -> (level, title, line count)` when a heading starts at line `i` (0-based), else None."""
BlockFinder = Callable[[Sequence[str], int], int | None]
"""`(lines, i) -> end` (0-based, exclusive) when an atomic block (code) starts at line `i`, else None."""


def split_outline(
    text: str,
    source: str,
    *,
    heading_at: HeadingFinder,
    block_at: BlockFinder,
    max_lines: int = MAX_CHUNK_LINES,
) -> list[Chunk]:
    """Chunks of any document with headings and code blocks: cut at headings and blank lines, never
    inside a block. The format only decides what a heading and a block look like (Markdown `#` and
    fences, reStructuredText underlines and `::` blocks, definitions in source files), so every
    format gets the same packing and the same exact line ranges. A heading's `heading` is the path
    of titles above it joined by " > "."""
    lines = _lines(text)
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    current = _Section(heading=None, start=0, end=0)
    paragraph_start: int | None = None
    i = 0

    def close_paragraph(end: int) -> None:
        nonlocal paragraph_start
        if paragraph_start is not None:
            current.units.append(_Unit(paragraph_start, end, atomic=False))
            paragraph_start = None

    while i < len(lines):
        block_end = block_at(lines, i)
        if block_end is not None and block_end > i:
            close_paragraph(i)
            current.units.append(_Unit(i, block_end, atomic=True))
            i = block_end
            continue
        heading = heading_at(lines, i)
        if heading is not None:
            level, title, count = heading
            close_paragraph(i)
            current.end = i
            sections.append(current)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            current = _Section(heading=" > ".join(t for _, t in stack), start=i, end=i)
            current.units.append(_Unit(i, min(i + max(count, 1), len(lines)), atomic=False))
            i += max(count, 1)
            continue
        if not lines[i].strip():
            close_paragraph(i)
        elif paragraph_start is None:
            paragraph_start = i
        i += 1
    close_paragraph(len(lines))
    current.end = len(lines)
    sections.append(current)
    chunks: list[Chunk] = []
    for section in sections:
        chunks.extend(_pack(lines, section.units, section.heading, source, max_lines))
    return chunks


def _markdown_heading(lines: Sequence[str], i: int) -> tuple[int, str, int] | None:
    match = _HEADING.match(lines[i])
    return (len(match.group(1)), match.group(2).strip(), 1) if match else None


def _markdown_block(lines: Sequence[str], i: int) -> int | None:
    fence = _FENCE.match(lines[i])
    return _fence_end(lines, i, fence.group(1)) if fence else None


def split_markdown(text: str, source: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of a Markdown document, cut at headings and blank lines, never inside a code fence."""
    return split_outline(
        text, source, heading_at=_markdown_heading, block_at=_markdown_block, max_lines=max_lines
    )


def split_text(text: str, source: str, max_lines: int = MAX_CHUNK_LINES) -> list[Chunk]:
    """Chunks of plain text: paragraphs (blank-line separated) packed up to `max_lines` lines."""
    lines = _lines(text)
    units: list[_Unit] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            units.append(_Unit(start, i, atomic=False))
            start = None
    if start is not None:
        units.append(_Unit(start, len(lines), atomic=False))
    return _pack(lines, units, None, source, max_lines)


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fence_end(lines: Sequence[str], start: int, fence: str) -> int:
    """Index one past the closing fence of the block opened at `start` (end of file if unclosed)."""
    for j in range(start + 1, len(lines)):
        closing = re.match(r"^[ \t]*(`{3,}|~{3,})[ \t]*$", lines[j])
        if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
            return j + 1
    return len(lines)


def _pack(
    lines: Sequence[str], units: Iterable[_Unit], heading: str | None, source: str, max_lines: int
) -> list[Chunk]:
    """Greedily group units into chunks of at most `max_lines` lines. A code block is never cut and
    keeps a short lead-in (its heading, an "Example:" line) with it, even past the limit; an
    over-long paragraph is cut at line boundaries."""
    pieces: list[_Unit] = []
    for unit in units:
        if unit.atomic or unit.end - unit.start <= max_lines:
            pieces.append(unit)
        else:
            pieces.extend(
                _Unit(s, min(s + max_lines, unit.end), atomic=False)
                for s in range(unit.start, unit.end, max_lines)
            )
    chunks: list[Chunk] = []
    group: list[_Unit] = []
    for piece in pieces:
        lead_in = piece.atomic and group[-1].end - group[0].start <= max_lines // 4 if group else False
        if group and piece.end - group[0].start > max_lines and not lead_in:
            chunks.append(_chunk(lines, group, heading, source))
            group = []
        group.append(piece)
    if group:
        chunks.append(_chunk(lines, group, heading, source))
    return chunks


def _chunk(lines: Sequence[str], group: Sequence[_Unit], heading: str | None, source: str) -> Chunk:
    start, end = group[0].start, group[-1].end
    return Chunk(
        source=source,
        heading=heading,
        start_line=start + 1,
        end_line=end,
        text="\n".join(lines[start:end]),
    )


class LexicalIndex:
    """BM25 (Okapi) over chunks. Immutable once built; `search` is safe to call from any thread."""

    def __init__(
        self, chunks: Sequence[Chunk], collection: str = "builtin", k1: float = 1.2, b: float = 0.75
    ):
        self._chunks = tuple(chunks)
        self._collection = collection
        self._k1 = k1
        self._b = b
        self._terms: list[Counter[str]] = []
        self._lengths: list[int] = []
        document_frequency: Counter[str] = Counter()
        for chunk in self._chunks:
            tokens = tokenize(chunk.text) + tokenize(chunk.heading or "")
            counts = Counter(tokens)
            self._terms.append(counts)
            self._lengths.append(len(tokens))
            document_frequency.update(counts.keys())
        total = len(self._chunks)
        self._average_length = (sum(self._lengths) / total) if total else 0.0
        self._idf = {
            term: math.log(1.0 + (total - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()
        }

    @classmethod
    def from_paths(
        cls, paths: Sequence[Path], root: Path | None = None, collection: str = "builtin"
    ) -> LexicalIndex:
        """Index files and folders (folders: every file with a `TEXT_SUFFIXES` suffix, recursively).

        Sources are posix paths relative to `root` (default: the deepest folder holding every file);
        a file outside `root` keeps its absolute path.
        """
        files = _collect(paths)
        if root is None:
            parents = [str(f.parent) for f in files]
            root = Path(os.path.commonpath(parents)) if parents else Path()
        chunks: list[Chunk] = []
        for file in files:
            source = _relative(file, root)
            text = file.read_text(encoding="utf-8", errors="replace")
            if file.suffix.lower() in _MARKDOWN_SUFFIXES:
                chunks.extend(split_markdown(text, source))
            else:
                chunks.extend(split_text(text, source))
        return cls(chunks, collection=collection)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        return self._chunks

    @property
    def collection(self) -> str:
        return self._collection

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The `k` best chunks for `query` (only chunks sharing at least one term), best first."""
        if k <= 0 or not self._chunks:
            return []
        terms = [t for t in dict.fromkeys(tokenize(clean_query(query))) if t in self._idf]
        if not terms:
            return []
        scored: list[tuple[float, int]] = []
        for index, counts in enumerate(self._terms):
            score = 0.0
            norm = self._k1 * (1.0 - self._b + self._b * self._lengths[index] / (self._average_length or 1.0))
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    score += self._idf[term] * tf * (self._k1 + 1.0) / (tf + norm)
            if score > 0.0:
                scored.append((score, index))
        scored.sort(
            key=lambda item: (-item[0], self._chunks[item[1]].source, self._chunks[item[1]].start_line)
        )
        return [self._hit(index, score) for score, index in scored[:k]]

    def _hit(self, index: int, score: float) -> Hit:
        chunk = self._chunks[index]
        return Hit(
            source=chunk.source,
            start_line=chunk.start_line,
            end_line=chunk.end_line,
            score=round(score, 4),
            text=chunk.text,
            collection=self._collection,
            heading=chunk.heading,
        )


def _collect(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"cannot index {path}: no such file or folder")
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return unique


def _relative(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.as_posix()
