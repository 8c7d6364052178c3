"""Chunking of every ingestible format: headings, atomic code blocks, exact 1-based line ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.formats import chunk_file, chunk_text, split_code, split_html, split_rst
from rag.lexical import Chunk

RST = """.. _Loopback:

DRAM Loopback
=============

Intro paragraph about the example.

Device setup
------------

Create a device first.

.. code-block:: cpp

   auto device = CreateDevice(0);

   // a blank line above stays inside the block
   CloseDevice(device);

Literal example::

    x = 1
    y = 2

Buffers
-------

Text about buffers.
Transition below is not a title.
"""


def _check_exact(chunks: list[Chunk], text: str) -> None:
    lines = text.split("\n")
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)


def test_rst_titles_levels_and_atomic_code_blocks() -> None:
    chunks = split_rst(RST, "loop.rst")
    _check_exact(chunks, RST)
    headings = [c.heading for c in chunks]
    assert headings == ["DRAM Loopback", "DRAM Loopback > Device setup", "DRAM Loopback > Buffers"]
    setup = chunks[1].text
    assert "CreateDevice(0);" in setup and "CloseDevice(device);" in setup and "y = 2" in setup
    assert all(c.text != ".. _Loopback:" for c in chunks)  # label-only chunk dropped


def test_rst_code_block_never_split_even_when_long() -> None:
    body = "\n".join(f"   line_{i}();" for i in range(100))
    text = f"Title\n=====\n\n.. code-block:: cpp\n\n{body}\n\nAfter.\n"
    chunks = split_rst(text, "long.rst", max_lines=20)
    _check_exact(chunks, text)
    holder = [c for c in chunks if "line_0();" in c.text]
    assert len(holder) == 1 and "line_99();" in holder[0].text


def test_html_headings_pre_blocks_and_stripped_text() -> None:
    page = (
        "<html><body>\n<h1>Kernels</h1>\n<p>Use &lt;grid&gt; launch.</p>\n\n"
        "<h2 id='x'>Example</h2>\n<pre>\nint a = 1;\n\nint b = 2;\n</pre>\n</body></html>\n"
    )
    chunks = split_html(page, "k.html")
    assert [c.heading for c in chunks] == ["Kernels", "Kernels > Example"]
    assert "Use <grid> launch." in chunks[0].text and "<p>" not in chunks[0].text
    example = chunks[1]
    assert "int a = 1;" in example.text and "int b = 2;" in example.text
    assert (example.start_line, example.end_line) == (5, 11)  # the <h2> line through </html>


def test_code_chunks_are_headed_by_their_definitions() -> None:
    cuda = (
        "#include <cuda.h>\n\n__global__ void add(float* a, const float* b, int n) {\n"
        "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) a[i] += b[i];\n}\n\n"
        "static int helper(int x);\n\nint host_main(int argc) {\n  return 0;\n}\n"
    )
    chunks = split_code(cuda, "k.cu", ".cu")
    _check_exact(chunks, cuda)
    assert [c.heading for c in chunks] == [None, "add", "host_main"]
    python = (
        "import x\n\nclass Model:\n    def forward(self):\n        return 1\n\n"
        "def get_inputs():\n    return []\n"
    )
    headings = [c.heading for c in chunk_text(python, "p.py", ".py")]
    assert "class Model > def forward" in headings and "def get_inputs" in headings
    ptx = ".version 8.0\n.target sm_90\n\n.visible .entry add_kernel(\n  .param .u64 a\n)\n{\n  ret;\n}\n"
    assert any(c.heading == ".entry add_kernel" for c in chunk_text(ptx, "k.ptx", ".ptx"))


def _pdf_bytes(lines: list[str]) -> bytes:
    """A minimal one-page PDF with Helvetica text (built here: no binary fixtures in the repo)."""
    ops = " ".join(f"({t}) Tj 0 -16 Td" for t in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_pages_become_chunks(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(_pdf_bytes(["Shared memory banks", "avoid bank conflicts"]))
    chunks = chunk_file(pdf, "manual.pdf")
    assert chunks and chunks[0].heading == "page 1"
    assert "bank conflicts" in " ".join(c.text for c in chunks)
