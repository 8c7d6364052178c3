"""The built-in guides: present, well-formed Markdown of a useful size, and their code is valid."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from knowledge import guides_dir

GUIDES = ["ptx-basics.md", "ptx-errors.md", "cuda-kernels.md", "triton-kernels.md", "tt-metal-overview.md"]


def _text(name: str) -> str:
    return (guides_dir() / name).read_text(encoding="utf-8")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_guides_are_packaged() -> None:
    folder = guides_dir()
    assert folder.is_dir()
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(GUIDES)


@pytest.mark.parametrize("name", GUIDES)
def test_guide_shape(name: str) -> None:
    text = _text(name)
    lines = text.splitlines()
    assert 80 <= len(lines) <= 250, f"{name} has {len(lines)} lines"
    assert lines[0].startswith("# ")
    assert sum(1 for line in lines if line.startswith("## ")) >= 4
    fences = [line for line in lines if line.lstrip().startswith(("```", "~~~"))]
    assert len(fences) % 2 == 0, "unbalanced code fences"
    assert not [i for i, line in enumerate(lines, 1) if line != line.rstrip()], "trailing whitespace"
    assert text.endswith("\n")


def test_ptx_basics_covers_the_essentials() -> None:
    text = _text("ptx-basics.md")
    for needle in (
        ".version",
        ".target",
        ".address_size 64",
        ".reg .pred",
        "ld.param",
        "cvta.to.global",
        "mad.lo.s32",
        "%ctaid.x",
        "%ntid.x",
        "%tid.x",
        "setp",
        "@%p1 bra",
        "ld.global.f32",
        "st.global.f32",
        "mul.wide.u32",
        ".shared",
        "bar.sync",
    ):
        assert needle in text, needle


def test_tt_metal_overview_warns_about_versions() -> None:
    text = _text("tt-metal-overview.md")
    assert "change between" in text
    for needle in (
        "reader",
        "writer",
        "compute",
        "cb_reserve_back",
        "cb_push_back",
        "cb_wait_front",
        "cb_pop_front",
    ):
        assert needle in text


def test_triton_guide_code_parses() -> None:
    blocks = _blocks(_text("triton-kernels.md"), "python")
    assert len(blocks) >= 4
    for block in blocks:
        ast.parse(block)


def test_complete_ptx_modules_start_with_a_header() -> None:
    modules = [b for b in _blocks(_text("ptx-basics.md"), "ptx") if ".entry" in b and "ret;" in b]
    assert modules
    for module in modules:
        assert module.splitlines()[:3] == [".version 7.0", ".target sm_80", ".address_size 64"]


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="needs ptxas (CUDA toolkit)")
def test_complete_ptx_modules_assemble(tmp_path: Path) -> None:
    ptxas = shutil.which("ptxas")
    assert ptxas is not None
    modules = [b for b in _blocks(_text("ptx-basics.md"), "ptx") if ".entry" in b and "ret;" in b]
    for index, module in enumerate(modules):
        path = tmp_path / f"m{index}.ptx"
        path.write_text(module, encoding="utf-8")
        result = subprocess.run(
            [ptxas, "-arch=sm_80", str(path), "-o", str(tmp_path / f"m{index}.cubin")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
