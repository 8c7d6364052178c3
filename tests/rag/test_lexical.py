"""Lexical retrieval: tokenising kernel vocabulary, chunking Markdown exactly, BM25 search, queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.domain import Diagnostic, Problem, Severity, Target
from knowledge import guides_dir
from rag.lexical import MAX_CHUNK_LINES, LexicalIndex, split_markdown, split_text, tokenize
from rag.queries import build_query, problem_operations
from rag.retriever import Retriever, builtin_retriever


def _lines(text: str) -> list[str]:
    return text.split("\n")


def test_tokenize_keeps_ptx_tokens_whole_and_split() -> None:
    tokens = tokenize("ld.global.nc.f32 %f1, [%rd4]; cvta.to.global.u64 and mov.u32 %r1, %tid.x")
    for expected in ("ld.global.nc.f32", "ld.global.nc", "ld.global", "ld", "global", "nc", "f32"):
        assert expected in tokens
    for expected in ("cvta.to.global.u64", "cvta.to.global", "cvta", "u64", "%tid.x", "tid.x", "tid"):
        assert expected in tokens
    assert "and" not in tokens  # stopword


def test_tokenize_identifiers() -> None:
    tokens = tokenize("pid = tl.program_id(axis=0); __syncthreads(); sm_90 The Matmul")
    for expected in ("tl.program_id", "program_id", "program", "id", "tl", "__syncthreads", "syncthreads"):
        assert expected in tokens
    assert "sm_90" in tokens and "sm" in tokens and "90" in tokens
    assert "matmul" in tokens and "the" not in tokens


DOC = """Preamble line.

# Title

Intro paragraph
continues here.

## Section A

Text of A.

```python
# not a heading
x = 1

y = 2
```

### Sub A1

More text.

## Section B
"""


def test_markdown_chunks_follow_headings_and_keep_exact_lines() -> None:
    chunks = split_markdown(DOC, "doc.md")
    lines = _lines(DOC)
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.text == chunk.text.strip("\n")  # no blank lines at the edges
        assert chunk.source == "doc.md"
    headings = [c.heading for c in chunks]
    assert headings == [None, "Title", "Title > Section A", "Title > Section A > Sub A1", "Title > Section B"]
    section_a = chunks[2]
    assert "# not a heading" in section_a.text and "y = 2\n```" in section_a.text
    assert section_a.start_line == lines.index("## Section A") + 1
    assert chunks[0].text == "Preamble line."


def test_code_blocks_are_never_split() -> None:
    code = "\n".join(f"line {i}" if i % 7 else "" for i in range(150))
    doc = (
        "# Big\n\nSome intro.\n\n```c\n"
        + code
        + "\n```\n\nAfter the code.\n"
        + "\n".join(f"para {i}\n" for i in range(80))
    )
    chunks = split_markdown(doc, "big.md")
    lines = _lines(doc)
    fence_chunks = [c for c in chunks if "```c" in c.text]
    assert len(fence_chunks) == 1
    block = fence_chunks[0]
    assert block.text.count("```") == 2  # opening and closing fence in one chunk
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        if chunk is not block:
            assert chunk.end_line - chunk.start_line + 1 <= MAX_CHUNK_LINES
        assert chunk.text.count("```") % 2 == 0
    # chunks cover every non-blank line exactly once
    covered = [i for c in chunks for i in range(c.start_line, c.end_line + 1)]
    assert len(covered) == len(set(covered))
    assert all(i in set(covered) for i, line in enumerate(lines, start=1) if line.strip())


def test_unclosed_fence_runs_to_the_end() -> None:
    doc = "# T\n\n```python\nx = 1\n## not a heading\n"
    chunks = split_markdown(doc, "t.md")
    assert len(chunks) == 1 and "## not a heading" in chunks[0].text


def test_plain_text_chunks() -> None:
    text = "\n\n".join("\n".join(f"p{p} l{i}" for i in range(25)) for p in range(5))
    chunks = split_text(text, "notes.txt")
    lines = _lines(text)
    assert all(c.heading is None for c in chunks)
    for chunk in chunks:
        assert chunk.end_line - chunk.start_line + 1 <= MAX_CHUNK_LINES
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
    assert len(chunks) >= 3


def test_from_paths_uses_relative_posix_sources(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Alpha\n\nwarp shuffle reduction\n", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Beta\n\nshared memory tiling\n", encoding="utf-8")
    (tmp_path / "sub" / "c.txt").write_text("plain notes about barriers\n", encoding="utf-8")
    (tmp_path / "sub" / "skip.bin").write_bytes(b"\x00\x01")
    index = LexicalIndex.from_paths([tmp_path], collection="mine")
    assert sorted({c.source for c in index.chunks}) == ["a.md", "sub/b.md", "sub/c.txt"]
    (hit,) = index.search("tiling", k=1)
    assert hit.source == "sub/b.md" and hit.collection == "mine" and hit.heading == "Beta"
    assert hit.citation == "sub/b.md:1-3"
    single = LexicalIndex.from_paths([tmp_path / "sub" / "b.md"])
    assert single.chunks[0].source == "b.md"
    with pytest.raises(FileNotFoundError):
        LexicalIndex.from_paths([tmp_path / "missing.md"])


def test_search_finds_cvta_in_the_ptx_guide() -> None:
    index = builtin_retriever()
    hits = index.search("cvta.to.global", k=3)
    assert hits
    assert hits[0].source == "ptx-basics.md"
    assert "cvta.to.global" in hits[0].text
    assert hits[0].collection == "builtin"
    assert hits[0].citation == f"ptx-basics.md:{hits[0].start_line}-{hits[0].end_line}"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("query", "source"),
    [
        ("%tid.x special registers", "ptx-basics.md"),
        ("Rounding modifier required for instruction 'div'", "ptx-errors.md"),
        ("tl.dot input_precision ieee", "triton-kernels.md"),
        ("__syncthreads shared memory tile", "cuda-kernels.md"),
        ("circular buffer cb_wait_front", "tt-metal-overview.md"),
    ],
)
def test_search_routes_queries_to_the_right_guide(query: str, source: str) -> None:
    # The built-in index also holds the PTX pages rendered per instruction (`ptx-isa/*.md`); a
    # diagnostic may rank its instruction's page first, so the guide must be among the first three.
    hits = builtin_retriever().search(query, k=3)
    assert source in [h.source for h in hits]
    assert hits[0].source == source or hits[0].source.startswith("ptx-isa/")


def test_search_edge_cases() -> None:
    index = builtin_retriever()
    assert index.search("", k=5) == []
    assert index.search("zzzzqqq", k=5) == []
    assert index.search("shared memory", k=0) == []
    assert len(index.search("shared memory", k=2)) == 2
    assert LexicalIndex([]).search("anything") == []


def test_builtin_chunks_match_the_guide_files_exactly() -> None:
    index = builtin_retriever()
    assert isinstance(index, Retriever)
    files = {p.name: p.read_text(encoding="utf-8").split("\n") for p in guides_dir().glob("*.md")}
    guides = [c for c in index.chunks if not c.source.startswith("ptx-isa/")]
    assert {c.source for c in guides} == set(files)
    assert len(guides) < len(index.chunks)  # the rendered PTX pages are built in too
    for chunk in guides:
        lines = files[chunk.source]
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.text.count("```") % 2 == 0


PROBLEM = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3)

    def forward(self, x, w):
        y = self.conv(x).view(x.shape[0], -1) @ w
        return torch.softmax(torch.relu(y), dim=-1)


def get_inputs():
    return [torch.randn(2, 3, 8, 8), torch.randn(108, 4)]


def get_init_inputs():
    return [3]
"""


def test_problem_operations() -> None:
    ops = problem_operations(Problem(name="p", source=PROBLEM))
    assert ops[:1] == ["conv2d"]
    for expected in ("matmul", "softmax", "relu"):
        assert expected in ops
    for ignored in ("view", "super", "conv"):
        assert ignored not in ops


def test_build_query_for_proposing() -> None:
    problem = Problem(name="p", source=PROBLEM)
    ptx = build_query(problem, Target.PTX)
    for term in ("conv2d", "convolution", "matmul", "softmax", "reduction", "cvta.to.global", "%tid.x"):
        assert term in ptx.split()
    assert "tl.dot" not in ptx
    triton = build_query(problem, Target.TRITON)
    assert "tl.dot" in triton.split() and "tl.program_id" in triton.split()


def test_build_query_for_refining_uses_diagnostic_tokens() -> None:
    problem = Problem(name="p", source=PROBLEM)
    diagnostics = [
        Diagnostic(
            code="check.style", message="kernel launch uses many registers", severity=Severity.WARNING
        ),
        Diagnostic(
            code="ptxas.error",
            message="Rounding modifier or '.approx' modifier required for instruction 'div'",
        ),
        Diagnostic(code="ptxas.error", message="Unknown symbol '%r4'"),
        Diagnostic(code="ptxas.error", message="Arguments mismatch for instruction 'ld.global.f32'"),
    ]
    query = build_query(problem, Target.PTX, diagnostics).split()
    for term in (".approx", "div", "ptxas", "rounding", "ld.global.f32", "ptx", "matmul"):
        assert term in query
    assert "%r4" not in query  # numbered registers say nothing about the cause
    assert query.index(".approx") < query.index("registers")  # errors before warnings
    assert query.index("div") < query.index("ptx")


def test_build_query_survives_odd_sources() -> None:
    odd = Problem(
        name="odd",
        source=(
            "class Model:\n    pass\n\ndef get_inputs():\n    return []\n\n"
            "def get_init_inputs():\n    return []\n"
        ),
    )
    assert build_query(odd, Target.CUDA).startswith("cuda")
